"""Netting conserves totals, on real PostgreSQL: random obligations in both directions between
several pairs of regions and in several currencies, recorded on both sides as the cross-region
payouts record them (``due_to`` / ``due_from`` booked, the obligation mirrored), are netted by
the pairs' coordinators, carried to the peers by the settlement relay and receiver, and then:

- each batch's payable and receivable are the sums of its obligations by direction, and per pair
  and currency the batches' nets add up to the obligations' signed sum, on both sides mirrored;
- each obligation is in exactly one batch, the same on both sides, and of the window it fell in
  (an obligation of the window still open waits for the next run);
- each side's clearing journal balances, clears exactly the batch (``due_to`` debited by what
  the side owes, ``due_from`` credited by what it is owed, the net on ``settlement:<peer>``),
  and mirrors the other side's; ``due_to`` and ``due_from`` are back where they started;
- reconciliation finds no break.

Each pair is netted as the scheduler's run does it (the currencies open before the window's
end, then ``net_txn`` until nothing is left), with the default batch size or in parts of a few
obligations (as a window larger than ``batch_obligations_max`` is). The currencies are ones no
other test settles, and only they are netted, so the sums here are this test's alone;
obligations an earlier example left open (only after a failure) are netted and counted too.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from regions import netting, reconciliation
from regions.ledger_store import (
    PlannedTransfer,
    internal_account,
    pick_shard,
    post_journal,
    sharded_account,
)
from regions.router import Router
from regions.tables import settlement_obligations
from tests.integration.helpers import rows
from tests.settlement_helpers import pump

window_s = 3_600
pairs = [("ap-southeast", "eu-central"), ("ap-southeast", "uk-south"), ("cn-east", "us-east"),
         ("eu-central", "uk-south")]
"""Coordinator first (the code that sorts first)."""
currencies = ["CHF", "JPY", "KWD", "NOK"]
counter_purpose = "test:obligation_counterpart"
"""Stands for what the obligation's other leg touches in production (the customer's held money
at the origin, payout clearing at the rail's region)."""
holder = "test-netting-properties"
run_ids = itertools.count()


@dataclass(frozen=True, slots=True)
class Ob:
    """An obligation as the coordinator records it; the peer records the mirror."""

    pair: tuple[str, str]
    currency: str
    direction: str
    amount_minor: int
    late: bool
    """In the window still open at the first netting run."""
    offset_s: int


obligation_st = st.builds(
    Ob, st.sampled_from(pairs), st.sampled_from(currencies),
    st.sampled_from(["PAYABLE", "RECEIVABLE"]),
    st.integers(min_value=1, max_value=10**12) | st.integers(min_value=1, max_value=100),
    st.booleans(), st.integers(min_value=1, max_value=3 * window_s - 1))


@dataclass(frozen=True, slots=True)
class Recorded:
    """An open obligation, mine or left open before: what netting must account for."""

    id: str
    pair: tuple[str, str]
    currency: str
    direction: str
    amount_minor: int
    occurred_at: datetime


# --- recording obligations as cross-region payouts do -----------------------------------------


async def _record_side(router: Router, region: str, items: list[tuple[str, Recorded]]) -> None:
    """One region's side: its obligations (``direction`` already as this side sees it) and
    their bookings, ``due_to:<peer>`` credited by what it owes, ``due_from:<peer>`` debited by
    what it is owed."""
    async def body(conn: AsyncConnection) -> None:
        by_currency: dict[str, list[PlannedTransfer]] = defaultdict(list)
        internal: dict[str, list[str]] = defaultdict(list)
        for direction, ob in items:
            peer = ob.pair[1] if region == ob.pair[0] else ob.pair[0]
            await conn.execute(insert(settlement_obligations).values(
                region=region, id=ob.id, peer=peer, direction=direction, currency=ob.currency,
                amount_minor=ob.amount_minor, payout_id=f"pay_{ob.id}",
                occurred_at=ob.occurred_at))
            counter = await internal_account(conn, region, counter_purpose, ob.currency)
            if direction == "PAYABLE":
                owed = await sharded_account(conn, region, f"due_to:{peer}", ob.currency,
                                             pick_shard())
                leg = PlannedTransfer(counter, owed, ob.amount_minor, ob.currency, ob.id)
            else:
                claim = await sharded_account(conn, region, f"due_from:{peer}", ob.currency,
                                              pick_shard())
                leg = PlannedTransfer(claim, counter, ob.amount_minor, ob.currency, ob.id)
            by_currency[ob.currency].append(leg)
            internal[ob.currency] += [leg.debit_account_id, leg.credit_account_id]
        for code, planned in by_currency.items():
            await post_journal(conn, region, None, "test_obligations", planned,
                               internal_ids=sorted(set(internal[code])))

    await router.run(region, body)


async def _record(router: Router, obs: list[Recorded]) -> None:
    sides: dict[str, list[tuple[str, Recorded]]] = defaultdict(list)
    for ob in obs:
        sides[ob.pair[0]].append((ob.direction, ob))
        sides[ob.pair[1]].append((netting.mirror(ob.direction), ob))
    for region, items in sorted(sides.items()):
        await _record_side(router, region, items)


# --- reading both sides back -------------------------------------------------------------------


async def _open_left(router: Router) -> list[Recorded]:
    """Obligations of these pairs and currencies that some earlier example left open."""
    found = []
    for a, b in pairs:
        for r in await rows(router, a, """
                SELECT id, currency, direction, amount_minor, occurred_at
                FROM settlement_obligations WHERE region = :r AND peer = :p
                  AND batch_id IS NULL AND currency = ANY(:c)""", r=a, p=b, c=currencies):
            found.append(Recorded(r.id, (a, b), r.currency, r.direction, r.amount_minor,
                                  r.occurred_at))
    return found


async def _obligations(router: Router, region: str, ids: list[str]) -> dict[str, Any]:
    return {r.id: r for r in await rows(router, region, """
        SELECT id, peer, direction, currency, amount_minor, batch_id
        FROM settlement_obligations WHERE region = :r AND id = ANY(:ids)""", r=region, ids=ids)}


async def _batches(router: Router, region: str) -> dict[str, Any]:
    return {b.id: b for b in await rows(router, region, """
        SELECT * FROM settlement_batches WHERE region = :r AND currency = ANY(:c)""",
        r=region, c=currencies)}


async def _balances(router: Router, region: str) -> dict[tuple[str, str], int]:
    """Per (purpose without its shard, currency): credits less debits, posted; nothing here
    is ever pending."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in await rows(router, region, """
            SELECT purpose, currency, credits_posted - debits_posted AS net,
                   credits_pending + debits_pending AS pending
            FROM accounts WHERE region = :r AND kind = 'internal' AND currency = ANY(:c)
              AND (purpose LIKE 'due\\_to:%' OR purpose LIKE 'due\\_from:%'
                   OR purpose LIKE 'settlement:%')""", r=region, c=currencies):
        assert r.pending == 0, r
        out[(r.purpose.rsplit(".", 1)[0], r.currency)] += int(r.net)
    return out


async def _journal(router: Router, region: str, journal_id: str) -> list[Any]:
    transfers = await rows(router, region, """
        SELECT t.id, t.amount_minor, t.currency, t.status, d.purpose AS debit,
               c.purpose AS credit
        FROM transfers t
        JOIN accounts d ON d.region = t.region AND d.id = t.debit_account_id
        JOIN accounts c ON c.region = t.region AND c.id = t.credit_account_id
        WHERE t.region = :r AND t.journal_id = :j""", r=region, j=journal_id)
    [entries] = await rows(router, region, """
        SELECT count(*) AS n,
               coalesce(sum(e.amount_minor) FILTER (WHERE e.side = 'DEBIT'), 0) AS debits,
               coalesce(sum(e.amount_minor) FILTER (WHERE e.side = 'CREDIT'), 0) AS credits
        FROM entries e JOIN transfers t ON t.region = e.region AND t.id = e.transfer_id
        WHERE t.region = :r AND t.journal_id = :j AND e.phase = 'POSTED'""",
        r=region, j=journal_id)
    total = sum(t.amount_minor for t in transfers)
    assert (entries.n, entries.debits, entries.credits) == (2 * len(transfers), total, total), (
        "the journal balances, one debit and one credit entry per transfer")
    return transfers


def _cleared(transfers: list[Any], peer: str, currency: str) -> tuple[int, int]:
    """What a clearing journal took off ``due_to`` and ``due_from``, checking it moved nothing
    else: every transfer posted, in the batch's currency, between the peer's accounts and its
    settlement account."""
    owed = claimed = 0
    for t in transfers:
        debit, credit = t.debit.rsplit(".", 1)[0], t.credit.rsplit(".", 1)[0]
        assert (t.status, t.currency) == ("POSTED", currency), t
        if (debit, credit) == (f"due_to:{peer}", f"settlement:{peer}"):
            owed += t.amount_minor
        else:
            assert (debit, credit) == (f"settlement:{peer}", f"due_from:{peer}"), t
            claimed += t.amount_minor
    return owed, claimed


# --- netting ------------------------------------------------------------------------------------


async def _net(router: Router, now: datetime, parts_max: int) -> list[str]:
    """Each pair's run at ``now`` as the scheduler's (``workers.settlement``) goes: the
    currencies open before the window's end, then batches until none is left; only these
    currencies, so that no other test's obligation is touched. Then the relay and receiver
    carry the batches and the answers."""
    made: list[str] = []
    end = netting.window_end(now, window_s)
    for a, b in pairs:
        async def open_(conn: AsyncConnection, a: str = a, b: str = b) -> list[str]:
            return await netting.open_currencies(conn, a, b, end)

        for currency in set(await router.run(a, open_)) & set(currencies):
            while True:
                async def one(conn: AsyncConnection, a: str = a, b: str = b,
                              currency: str = currency) -> str | None:
                    return await netting.net_txn(conn, a, b, currency, end, window_s,
                                                 obligations_max=parts_max)

                bid = await router.run(a, one)
                if bid is None:
                    break
                made.append(bid)
    await pump(router)
    return made


def _expected_batches(obs: list[Recorded], parts_max: int) -> int:
    groups = Counter((ob.pair, ob.currency) for ob in obs)
    return sum(math.ceil(n / parts_max) for n in groups.values())


# --- the property -------------------------------------------------------------------------------


async def _check_batches(router: Router, obs: list[Recorded], made: list[str],
                         end: datetime) -> None:
    """The batches ``made`` hold exactly ``obs``, add up on both sides, and are cleared by
    journals that balance and mirror each other."""
    ids = [ob.id for ob in obs]
    regions = sorted({r for pair in pairs for r in pair})
    sides = {r: await _obligations(router, r, ids) for r in regions}
    batches = {r: await _batches(router, r) for r in regions}
    members: dict[str, list[Recorded]] = defaultdict(list)
    for ob in obs:
        a, b = ob.pair
        x, y = sides[a][ob.id], sides[b][ob.id]
        assert x.batch_id is not None, ob
        assert x.batch_id == y.batch_id, (x, y)
        assert x.batch_id in made, (x.batch_id, made)
        assert (y.direction, y.amount_minor, y.currency) == (
            netting.mirror(x.direction), x.amount_minor, x.currency)
        members[x.batch_id].append(ob)
    assert sorted(members) == sorted(made), "every batch made holds some of these obligations"
    for bid, held in members.items():
        a, b = held[0].pair
        currency = held[0].currency
        assert {(ob.pair, ob.currency) for ob in held} == {((a, b), currency)}
        x, y = batches[a][bid], batches[b][bid]
        payable = sum(ob.amount_minor for ob in held if ob.direction == "PAYABLE")
        receivable = sum(ob.amount_minor for ob in held if ob.direction == "RECEIVABLE")
        assert (x.payable_minor, x.receivable_minor, x.obligations) == (
            payable, receivable, len(held))
        assert (y.payable_minor, y.receivable_minor, y.obligations) == (
            receivable, payable, len(held))
        assert (x.status, y.status) == ("SETTLED", "SETTLED"), (x, y)
        assert (x.coordinator, y.coordinator, x.peer, y.peer) == (a, a, b, a)
        assert x.window_end == y.window_end == end
        assert all(ob.occurred_at < end for ob in held)
        mine = _cleared(await _journal(router, a, x.journal_id), b, currency)
        theirs = _cleared(await _journal(router, b, y.journal_id), a, currency)
        assert mine == (payable, receivable)
        assert theirs == (receivable, payable), "the peer's journal mirrors the coordinator's"


async def _check_balances(router: Router, before: dict[str, dict[tuple[str, str], int]],
                          obs: list[Recorded], left: list[Recorded]) -> None:
    """Each ``settlement:<peer>`` moved by the net, equal and opposite on the two sides;
    ``due_to`` and ``due_from`` back where they were, but for the clearing of obligations left
    open before (booked before ``before`` was read)."""
    expected: dict[tuple[str, str, str], int] = defaultdict(int)
    for ob in [*obs, *left]:
        a, b = ob.pair
        net = ob.amount_minor * (1 if ob.direction == "PAYABLE" else -1)
        expected[(a, f"settlement:{b}", ob.currency)] += net
        expected[(b, f"settlement:{a}", ob.currency)] -= net
    for ob in left:
        for side, peer, direction in ((*ob.pair, ob.direction),
                                      (ob.pair[1], ob.pair[0], netting.mirror(ob.direction))):
            purpose = f"due_to:{peer}" if direction == "PAYABLE" else f"due_from:{peer}"
            expected[(side, purpose, ob.currency)] += (
                -ob.amount_minor if direction == "PAYABLE" else ob.amount_minor)
    for region in before:
        after = await _balances(router, region)
        mine = {(p, c) for r, p, c in expected if r == region}
        for purpose, currency in after.keys() | before[region].keys() | mine:
            change = after.get((purpose, currency), 0) - before[region].get((purpose, currency), 0)
            assert change == expected.get((region, purpose, currency), 0), (
                region, purpose, currency, change)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                   HealthCheck.too_slow])
@given(chosen=st.lists(obligation_st, min_size=1, max_size=12),
       parts_max=st.just(netting.batch_obligations_max) | st.integers(min_value=1, max_value=3))
@example(chosen=[Ob(pairs[0], "JPY", "PAYABLE", 5_000, False, 60),
                 Ob(pairs[0], "JPY", "RECEIVABLE", 5_000, False, 120)],
         parts_max=netting.batch_obligations_max)
@example(chosen=[Ob(pairs[2], "KWD", "RECEIVABLE", 10**12, False, 1),
                 Ob(pairs[2], "KWD", "RECEIVABLE", 10**12, True, 1),
                 Ob(pairs[2], "CHF", "PAYABLE", 1, True, window_s - 1)], parts_max=1)
async def test_netting_conserves_totals_on_both_sides(router: Router, chosen: list[Ob],
                                                      parts_max: int) -> None:
    regions = sorted({r for pair in pairs for r in pair})
    before = {r: await _balances(router, r) for r in regions}
    left = await _open_left(router)
    # Windows an hour ahead of the clock: the first run's window is the one the closed
    # obligations fall in, the late ones fall in the next.
    first = datetime.now(UTC) + timedelta(seconds=2 * window_s)
    end = netting.window_end(first, window_s)
    run = next(run_ids)
    obs = [Recorded(f"obl_prop_{run}_{i}_{uuid.uuid4().hex[:8]}", ob.pair, ob.currency,
                    ob.direction, ob.amount_minor,
                    end + timedelta(seconds=ob.offset_s % window_s) if ob.late
                    else end - timedelta(seconds=ob.offset_s))
           for i, ob in enumerate(chosen)]
    await _record(router, obs)

    closed = [ob for ob in [*left, *obs] if ob.occurred_at < end]
    late = [ob for ob in [*left, *obs] if ob.occurred_at >= end]
    made = await _net(router, first, parts_max)
    assert len(made) == _expected_batches(closed, parts_max)
    await _check_batches(router, closed, made, end)
    for region in regions:
        waiting = await _obligations(router, region, [ob.id for ob in late])
        assert all(r.batch_id is None for r in waiting.values()), "the open window waits"

    later = first + timedelta(seconds=window_s)
    made_later = await _net(router, later, parts_max)
    assert len(made_later) == _expected_batches(late, parts_max)
    await _check_batches(router, late, made_later, netting.window_end(later, window_s))
    await _check_balances(router, before, obs, left)
    for a, b in pairs:
        for currency in currencies:
            report = await reconciliation.reconcile(router, a, b, currency)
            assert report.breaks == [], report
            assert report.in_flight == 0
