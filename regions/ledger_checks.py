"""The ledger's invariants, checked over one region's partition (``corridor ledger verify``).

Each check is one statement, so it reads one consistent state of what it compares, whatever
traffic writes meanwhile; and every check reads the same snapshot (one read-only transaction
at REPEATABLE READ: PostgreSQL's snapshot isolation; CockroachDB runs it at REPEATABLE READ or,
where that level is not enabled, at SERIALIZABLE, a snapshot too), so the currencies counted and
the findings describe one moment. What is checked, each a kind of finding:

- ``JOURNALS_UNBALANCED``: per currency, the accounts' posted credits minus debits, or their
  pending ones, do not sum to zero (money created or lost);
- ``BALANCE_DISAGREES_WITH_TRANSFERS``: an account's four balances are not the sums of the
  transfers that name it (posted transfers for the posted columns, pending ones for the
  pending columns; voided ones count for neither);
- ``OVERDRAWN``: an account that may not go below zero has posted and pending debits above its
  posted credits;
- ``ENTRIES_NOT_DENSE``: an account's entries are not numbered 1 to its entry sequence (an
  entry lost, or a sequence bent): their count and their highest number must both equal it;
- ``PAYOUT_HOLD_MISMATCH``: a payout's hold, fee or return transfer is missing or not in the
  state its status implies (a COMPLETED payout whose hold is still pending, a FAILED one whose
  hold was posted); in the region that pays another region's payouts on its rail, the same
  for its own hold and return of each (``xr_payouts``).

The statements scan the region's accounts, transfers, entries and payouts: run it off-peak on
a large ledger. Each kind reports at most ``findings_per_kind_max`` findings; ``truncated``
says when there were more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

findings_per_kind_max = 100

_snapshot = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

_currencies = text("""
    SELECT currency, count(*) AS accounts,
           sum(credits_posted - debits_posted) AS posted,
           sum(credits_pending - debits_pending) AS pending
    FROM accounts WHERE region = :r GROUP BY currency ORDER BY currency""")

_against_transfers = text("""
    SELECT a.id, a.currency,
           a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
           coalesce(m.debits_posted, 0) AS moved_debits_posted,
           coalesce(m.credits_posted, 0) AS moved_credits_posted,
           coalesce(m.debits_pending, 0) AS moved_debits_pending,
           coalesce(m.credits_pending, 0) AS moved_credits_pending
    FROM accounts a LEFT JOIN (
        SELECT account_id,
               sum(CASE WHEN side = 'D' AND status = 'POSTED' THEN amount_minor ELSE 0 END)
                   AS debits_posted,
               sum(CASE WHEN side = 'C' AND status = 'POSTED' THEN amount_minor ELSE 0 END)
                   AS credits_posted,
               sum(CASE WHEN side = 'D' AND status = 'PENDING' THEN amount_minor ELSE 0 END)
                   AS debits_pending,
               sum(CASE WHEN side = 'C' AND status = 'PENDING' THEN amount_minor ELSE 0 END)
                   AS credits_pending
        FROM (SELECT debit_account_id AS account_id, 'D' AS side, status, amount_minor
              FROM transfers WHERE region = :r
              UNION ALL
              SELECT credit_account_id, 'C', status, amount_minor
              FROM transfers WHERE region = :r) AS t
        GROUP BY account_id) AS m ON m.account_id = a.id
    WHERE a.region = :r
      AND (a.debits_posted <> coalesce(m.debits_posted, 0)
           OR a.credits_posted <> coalesce(m.credits_posted, 0)
           OR a.debits_pending <> coalesce(m.debits_pending, 0)
           OR a.credits_pending <> coalesce(m.credits_pending, 0))
    ORDER BY a.id LIMIT :limit""")

_overdrawn = text("""
    SELECT id, currency, debits_posted, debits_pending, credits_posted FROM accounts
    WHERE region = :r AND debits_must_not_exceed_credits
      AND debits_posted + debits_pending > credits_posted
    ORDER BY id LIMIT :limit""")

_entries = text("""
    SELECT a.id, a.entry_seq, coalesce(e.entries, 0) AS entries,
           coalesce(e.highest, 0) AS highest
    FROM accounts a LEFT JOIN (
        SELECT account_id, count(*) AS entries, max(seq) AS highest FROM entries
        WHERE region = :r GROUP BY account_id) AS e ON e.account_id = a.id
    WHERE a.region = :r
      AND (a.entry_seq <> coalesce(e.entries, 0) OR a.entry_seq <> coalesce(e.highest, 0))
    ORDER BY a.id LIMIT :limit""")

# The state a payout's hold (and fee) transfer must be in for each payout status.
_hold_state = {"PENDING": "PENDING", "HELD_FOR_REVIEW": "PENDING", "PROCESSING": "PENDING",
               "COMPLETED": "POSTED", "RETURNED": "POSTED", "FAILED": "VOIDED",
               "CANCELLED": "VOIDED"}


def _expected(status_column: str, states: dict[str, str]) -> str:
    """SQL: the transfer status ``states`` expects for the status in ``status_column``."""
    whens = " ".join(f"WHEN '{status}' THEN '{hold}'" for status, hold in states.items())
    return f"(CASE {status_column} {whens} END)"


_payout_hold = _expected("p.status", _hold_state)
_payouts = text(f"""
    SELECT p.id, p.status, h.status AS hold,
           CASE WHEN p.fee_transfer_id IS NOT NULL THEN coalesce(f.status, 'missing') END
               AS fee,
           CASE WHEN p.return_transfer_id IS NOT NULL THEN coalesce(r.status, 'missing') END
               AS returned
    FROM payouts p
    LEFT JOIN transfers h ON h.region = p.region AND h.id = p.hold_transfer_id
    LEFT JOIN transfers f ON f.region = p.region AND f.id = p.fee_transfer_id
    LEFT JOIN transfers r ON r.region = p.region AND r.id = p.return_transfer_id
    WHERE p.region = :r AND (
        h.status IS DISTINCT FROM {_payout_hold}
        OR (p.fee_transfer_id IS NOT NULL AND f.status IS DISTINCT FROM {_payout_hold})
        OR (p.status = 'RETURNED') <> (r.status IS NOT DISTINCT FROM 'POSTED'))
    ORDER BY p.id LIMIT :limit""")
# Another region's payout paid on this region's rail: its hold of what the origin will owe.
_xr_hold_state = {"ACCEPTED": "PENDING", "PROCESSING": "PENDING", "COMPLETED": "POSTED",
                  "RETURNED": "POSTED", "FAILED": "VOIDED"}
_xr_payouts = text(f"""
    SELECT x.id, x.origin, x.status, h.status AS hold, NULL AS fee,
           CASE WHEN x.return_transfer_id IS NOT NULL THEN coalesce(r.status, 'missing') END
               AS returned
    FROM xr_payouts x
    LEFT JOIN transfers h ON h.region = x.region AND h.id = x.hold_transfer_id
    LEFT JOIN transfers r ON r.region = x.region AND r.id = x.return_transfer_id
    WHERE x.region = :r AND (
        h.status IS DISTINCT FROM {_expected("x.status", _xr_hold_state)}
        OR (x.status = 'RETURNED') <> (r.status IS NOT DISTINCT FROM 'POSTED'))
    ORDER BY x.id LIMIT :limit""")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    subject: str
    """The account id, payout id or currency the finding is about."""
    detail: str


@dataclass(slots=True)
class Report:
    region: str
    currencies: dict[str, int] = field(default_factory=dict)
    """Currency -> accounts checked."""
    findings: list[Finding] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    """The kinds that had more than ``findings_per_kind_max`` findings."""

    @property
    def intact(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {"region": self.region, "intact": self.intact, "currencies": self.currencies,
                "findings": [{"kind": f.kind, "subject": f.subject, "detail": f.detail}
                             for f in self.findings],
                "truncated": self.truncated}


async def verify(conn: AsyncConnection, region: str,
                 limit: int = findings_per_kind_max) -> Report:
    """Every check over ``region``'s partition, in one snapshot (the first statement of the
    transaction ``conn`` is in)."""
    await conn.execute(_snapshot)
    report = Report(region)
    params = {"r": region, "limit": limit + 1}
    for c in await conn.execute(_currencies, params):
        report.currencies[c.currency] = int(c.accounts)
        if (int(c.posted), int(c.pending)) != (0, 0):
            report.findings.append(Finding(
                "JOURNALS_UNBALANCED", c.currency,
                f"posted credits minus debits {int(c.posted):+d}, pending {int(c.pending):+d}"))
    found = [
        ("BALANCE_DISAGREES_WITH_TRANSFERS", _against_transfers, _disagreement),
        ("OVERDRAWN", _overdrawn, lambda a: (
            f"{a.currency}: debits posted {a.debits_posted} + pending {a.debits_pending} "
            f"> credits posted {a.credits_posted}")),
        ("ENTRIES_NOT_DENSE", _entries, lambda a: (
            f"entry sequence {a.entry_seq}, {a.entries} entries, the highest {a.highest}")),
        ("PAYOUT_HOLD_MISMATCH", _payouts, _hold_mismatch),
        ("PAYOUT_HOLD_MISMATCH", _xr_payouts, lambda x: (
            f"paid for {x.origin}, " + _hold_mismatch(x))),
    ]
    for kind, sql, describe in found:
        rows = list(await conn.execute(sql, params))
        if len(rows) > limit and kind not in report.truncated:
            report.truncated.append(kind)
        report.findings += [Finding(kind, r.id, describe(r)) for r in rows[:limit]]
    return report


def _hold_mismatch(p: Any) -> str:
    return (f"{p.status}: hold {p.hold or 'missing'}, fee {p.fee or '-'}, "
            f"return {p.returned or '-'}")


def _disagreement(a: Any) -> str:
    columns = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
    off = [f"{c} {getattr(a, c)} (transfers {getattr(a, 'moved_' + c)})" for c in columns
           if getattr(a, c) != getattr(a, "moved_" + c)]
    return f"{a.currency}: " + ", ".join(off)
