"""Sanctions lists in the control plane: each import is a new version, written in one
transaction, so screening sees the old list or the new one and never a mix. Two versions of a
list are kept (the current one and the one before), for an audit of what changed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from policies.sanctions import SanctionsEntry
from regions.tables import sanctions_entries, sanctions_lists

versions_kept = 2
insert_rows_per_statement = 5_000


async def current_versions(conn: AsyncConnection) -> dict[str, int]:
    rows = (await conn.execute(select(sanctions_lists.c.list_name,
                                      func.max(sanctions_lists.c.version))
                               .group_by(sanctions_lists.c.list_name))).all()
    return {name: int(version) for name, version in rows}


async def import_list(conn: AsyncConnection, list_name: str, fmt: str, data: bytes,
                      entries: Sequence[SanctionsEntry], actor: str) -> int:
    """Store a parsed list as the next version; returns the version number."""
    assert entries
    assert all(e.list_name == list_name for e in entries)
    version = (await current_versions(conn)).get(list_name, 0) + 1
    await conn.execute(insert(sanctions_lists).values(
        list_name=list_name, version=version, file_format=fmt,
        file_sha256=hashlib.sha256(data).digest(), entry_count=len(entries), imported_by=actor))
    rows = [{"list_name": list_name, "version": version, "entry_id": e.entry_id,
             "kind": e.kind, "names": list(e.names), "dates_of_birth": list(e.dates_of_birth),
             "programs": list(e.programs)} for e in entries]
    for start in range(0, len(rows), insert_rows_per_statement):
        await conn.execute(insert(sanctions_entries), rows[start:start + insert_rows_per_statement])
    await conn.execute(delete(sanctions_entries).where(
        sanctions_entries.c.list_name == list_name,
        sanctions_entries.c.version <= version - versions_kept))
    return version


async def load_entries(conn: AsyncConnection, list_name: str,
                       version: int) -> list[SanctionsEntry]:
    rows = (await conn.execute(select(sanctions_entries).where(
        sanctions_entries.c.list_name == list_name, sanctions_entries.c.version == version)
        .order_by(sanctions_entries.c.entry_id))).all()
    return [SanctionsEntry(list_name, r.entry_id, r.kind, tuple(r.names),
                           tuple(r.dates_of_birth), tuple(r.programs)) for r in rows]
