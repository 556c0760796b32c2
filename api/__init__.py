"""Litestar application, settings, authentication and the ``corridor`` command line."""
