"""The audit log's hash chain, per region: every audit row linked to the one before it.

Writers only insert audit rows (one statement, in their own transaction; nothing waits for a
chain head). The chaining job, one per region under a scheduler lease, then takes the rows
not yet chained in (created_at, id) order and appends ``audit_chain`` entries:
``hash = SHA-256(prev_hash || canonical(row))``, starting from a per-region genesis value.
Both tables are append-only (a trigger refuses UPDATE and DELETE).

``verify`` walks the chain and names every break:

- **modified**: a chained row whose content no longer hashes to its entry;
- **deleted**: an entry whose row is gone;
- **broken_link**: an entry whose ``prev_hash`` is not the entry before it (entries reordered,
  rewritten or removed);
- **gap**: a sequence number missing;
- **inserted**: a row older than the chain's reach that was never chained (added behind the
  chain's back);
- **unchained**: the region has no chain at all, yet rows older than the grace window (the
  chaining job is not running).

The control plane has a trail of its own (``control_audit_events``, chained into
``control_audit_chain``) under the label ``control``: policy changes, failed
authentications, operators' commands. Every function here takes ``control`` as a region.

A row is chained within seconds of its commit. A transaction that commits more than
``grace_s`` after its row's ``created_at`` would look inserted; transactions are far shorter
than that. The head (``export_head``) is meant to be copied outside the database regularly:
``verify(expect=...)`` then proves the chain still holds that head, so not even a rewrite of
the whole chain goes unseen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

grace_s = 120
"""How far behind the chain's newest row the job still looks for rows committed late. Rows are
stamped when written (``clock_timestamp()``), and an audit row is among the last statements
of its transaction, whose length the request time limit (10 s) and the workers' bounded
chunks keep far below this. Each run reads this window once, so it is kept short: its cost
grows with the rows written in it (bench/audit_chain.py)."""
lag_s = 2
"""Rows younger than this are left for the next run (their transaction may be open)."""
chain_rows_per_run_max = 5_000
verify_page_rows = 5_000
inserted_reported_max = 1_000
epoch = datetime(1970, 1, 1, tzinfo=UTC)
control = "control"
"""The control plane's trail, chained like a region's."""


def _tables(region: str) -> dict[str, str]:
    if region == control:
        return {"events": "control_audit_events", "chain": "control_audit_chain"}
    return {"events": "audit_events", "chain": "audit_chain"}


def _sql(template: str, region: str) -> TextClause:
    return text(template.format(**_tables(region)))


def genesis(region: str) -> bytes:
    return hashlib.sha256(f"corridor-audit-chain:{region}".encode()).digest()


def canonical(row: Any) -> bytes:
    """The bytes of an audit row the chain commits to: every column, in a fixed form. The
    origin (added by migration 6) is appended only when present, so rows chained before it
    still hash as they did."""
    fields = [row.region, row.id, row.tenant_id, row.actor, row.action, row.target,
              row.detail, row.created_at.isoformat()]
    if row.origin is not None:
        fields.append(row.origin)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def link(prev_hash: bytes, row: Any) -> bytes:
    return hashlib.sha256(prev_hash + canonical(row)).digest()


_head = """SELECT seq, hash, event_id, event_created_at, chained_at FROM {chain}
           WHERE region = :region ORDER BY seq DESC LIMIT 1"""

_unchained = """
    SELECT a.* FROM {events} AS a
    WHERE a.region = :region AND a.created_at >= :since
      AND a.created_at < now() - make_interval(secs => :lag)
      AND NOT EXISTS (SELECT 1 FROM {chain} AS c
                      WHERE c.region = a.region AND c.event_id = a.id)
    ORDER BY a.created_at, a.id LIMIT :limit"""

_append = """
    INSERT INTO {chain} (region, seq, event_id, event_created_at, prev_hash, hash)
    SELECT :region, u.seq, u.event_id, u.created_at, u.prev_hash, u.hash
    FROM unnest(CAST(:seqs AS BIGINT[]), CAST(:event_ids AS TEXT[]),
                CAST(:created AS TIMESTAMPTZ[]), CAST(:prev AS BYTEA[]),
                CAST(:hashes AS BYTEA[])) AS u(seq, event_id, created_at, prev_hash, hash)"""


@dataclass(frozen=True, slots=True)
class Head:
    region: str
    seq: int
    hash: bytes
    event_id: str
    chained_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"region": self.region, "seq": self.seq, "hash": self.hash.hex(),
                "event_id": self.event_id, "chained_at": self.chained_at.isoformat()}


async def head(conn: AsyncConnection, region: str) -> Head | None:
    row = (await conn.execute(_sql(_head, region), {"region": region})).first()
    if row is None:
        return None
    return Head(region, row.seq, bytes(row.hash), row.event_id, row.chained_at)


async def chain_txn(conn: AsyncConnection, region: str,
                    limit: int = chain_rows_per_run_max) -> int:
    """Chain up to ``limit`` rows not yet chained; returns how many (0: caught up)."""
    last = (await conn.execute(_sql(_head, region), {"region": region})).first()
    since = last.event_created_at - timedelta(seconds=grace_s) if last is not None else epoch
    rows = (await conn.execute(_sql(_unchained, region), {
        "region": region, "since": since, "lag": lag_s, "limit": limit})).all()
    if not rows:
        return 0
    seq = last.seq if last is not None else 0
    prev = bytes(last.hash) if last is not None else genesis(region)
    seqs, prevs, hashes = [], [], []
    for row in rows:
        seq += 1
        seqs.append(seq)
        prevs.append(prev)
        prev = link(prev, row)
        hashes.append(prev)
    await conn.execute(_sql(_append, region), {"region": region, "seqs": seqs,
                                 "event_ids": [r.id for r in rows],
                                 "created": [r.created_at for r in rows],
                                 "prev": prevs, "hashes": hashes})
    if ((last.seq if last is not None else 0).bit_length() != seq.bit_length()
            and conn.dialect.name == "postgresql"):  # CockroachDB collects statistics itself
        # The chain doubled: fresh statistics keep the planner on the index probes (with
        # stale ones it scans the whole chain once per candidate row; autovacuum may be off).
        await conn.execute(_sql("ANALYZE {chain}", region))
        await conn.execute(_sql("ANALYZE {events}", region))
    return len(rows)


@dataclass(frozen=True, slots=True)
class Break:
    kind: str
    """modified, deleted, broken_link, gap, inserted, unchained or head_mismatch."""
    seq: int | None
    event_id: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "event_id": self.event_id,
                "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Report:
    region: str
    chained: int
    head: Head | None
    breaks: list[Break]

    @property
    def intact(self) -> bool:
        return not self.breaks


_entries = """
    SELECT c.seq, c.event_id, c.prev_hash, c.hash, a.region, a.id, a.tenant_id, a.actor,
           a.action, a.target, a.detail, a.created_at, a.origin
    FROM {chain} AS c
    LEFT JOIN {events} AS a ON a.region = c.region AND a.id = c.event_id
    WHERE c.region = :region AND c.seq > :after ORDER BY c.seq LIMIT :limit"""

_inserted = """
    SELECT a.id FROM {events} AS a
    WHERE a.region = :region AND a.created_at < :before
      AND NOT EXISTS (SELECT 1 FROM {chain} AS c
                      WHERE c.region = a.region AND c.event_id = a.id)
    ORDER BY a.created_at, a.id LIMIT :limit"""


async def _pages(conn: AsyncConnection, region: str) -> AsyncIterator[list[Row[Any]]]:
    after = 0
    while True:
        page = (await conn.execute(_sql(_entries, region), {"region": region, "after": after,
                                              "limit": verify_page_rows})).all()
        if not page:
            return
        yield list(page)
        after = page[-1].seq


def _check(entry: Row[Any], prev: bytes, seq: int) -> list[Break]:
    found = []
    if entry.seq != seq:
        found.append(Break("gap", entry.seq, entry.event_id,
                           f"entries {seq} to {entry.seq - 1} are missing"))
    if bytes(entry.prev_hash) != prev:
        found.append(Break("broken_link", entry.seq, entry.event_id,
                           "its previous hash is not the hash of the entry before it"))
    if entry.id is None:
        found.append(Break("deleted", entry.seq, entry.event_id, "the audit row is gone"))
    elif link(bytes(entry.prev_hash), entry) != bytes(entry.hash):
        found.append(Break("modified", entry.seq, entry.event_id,
                           "the audit row no longer matches its hash"))
    return found


async def verify(conn: AsyncConnection, region: str,
                 expect: tuple[int, bytes] | None = None) -> Report:
    """Walk the region's chain and name every break; ``expect`` (seq, hash): an exported head
    the chain must still hold."""
    prev, seq, chained = genesis(region), 1, 0
    breaks: list[Break] = []
    expected_found = expect is None
    async for page in _pages(conn, region):
        for entry in page:
            breaks += _check(entry, prev, seq)
            if expect is not None and entry.seq == expect[0]:
                expected_found = True
                if bytes(entry.hash) != expect[1]:
                    breaks.append(Break("head_mismatch", entry.seq, entry.event_id,
                                        "the exported head's hash differs: the chain was "
                                        "rewritten since"))
            prev, seq, chained = bytes(entry.hash), entry.seq + 1, chained + 1
    if not expected_found:
        assert expect is not None
        breaks.append(Break("head_mismatch", expect[0], None,
                            "the exported head is no longer in the chain"))
    top = await head(conn, region)
    if top is not None:
        reach = (await conn.execute(_sql(
            "SELECT event_created_at FROM {chain} WHERE region = :r AND seq = :s", region),
            {"r": region, "s": top.seq})).scalar_one()
        kind, why = "inserted", "an audit row older than the chain's reach was never chained"
    else:  # no chain at all: rows older than the grace window mean the job is not running
        reach = (await conn.execute(text("SELECT now()"))).scalar_one()
        kind, why = "unchained", ("the region has no chain yet, and this row is older than "
                                  "the grace window: is the chaining job running?")
    for row in await conn.execute(_sql(_inserted, region), {
            "region": region, "before": reach - timedelta(seconds=grace_s),
            "limit": inserted_reported_max}):
        breaks.append(Break(kind, None, row.id, why))
    return Report(region, chained, top, breaks)
