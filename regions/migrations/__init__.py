"""Versioned schema migrations, frozen once released: a change is a new module, never an edit.

Each module holds ``version``, ``name``, ``control`` (tables of the global control plane) and
``regional`` (tables partitioned by region in every cluster). ``regions.ddl`` renders them for
PostgreSQL or CockroachDB; ``regions.migrate`` applies them.
"""

from __future__ import annotations

from regions.migrations import (
    m0001_initial,
    m0002_fx,
    m0003_money_out,
    m0004_policies,
    m0005_security,
    m0006_keys_and_erasure,
    m0007_settlement,
)

migrations = (m0001_initial, m0002_fx, m0003_money_out, m0004_policies, m0005_security,
              m0006_keys_and_erasure, m0007_settlement)
