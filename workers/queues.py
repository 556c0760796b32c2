"""The workers' queues, named once: ``workers/actors.py`` declares its actors on them and
``workers/dead_letters.py`` knows them without importing the actors (which binds them to a
broker)."""

from __future__ import annotations

fx = "fx"
maintenance = "maintenance"
events = "events"
every = (events, fx, maintenance)
