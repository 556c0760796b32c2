"""Shared by the settlement tests: carry every settlement message to its region (what the
settlement relay and RabbitMQ do in production) and read internal balances."""

from __future__ import annotations

import json
from typing import Any

import pytest_asyncio
from litestar.testing import AsyncTestClient

from regions.policy_gate import PolicyGate
from regions.router import Router
from tests.fx_helpers import load_rates, sample_rates
from tests.integration.helpers import rows
from tests.payouts_helpers import sandbox_sealer
from workers.settlement import XrRelay, receiver


async def pump(router: Router, holder: str = "test-pump") -> int:
    """Publish every region's settlement messages and deliver them, until none is left; how
    many numbered messages were delivered (bare acknowledgements are delivered, not counted)."""
    sent: list[tuple[str, bytes]] = []

    def publish(origin: str, destination: str, messages: Any) -> None:
        sent.extend((destination, body) for _, body in messages)

    relay = XrRelay(router, [r.code for r in router.topology.regions], publish, holder=holder)
    receive = receiver(router, sandbox_sealer())
    delivered = 0
    while True:
        sent.clear()
        for region in relay.regions:
            await relay.relay_region(region)
        if not sent:
            return delivered
        for destination, body in list(sent):
            await receive(destination, body)
        delivered += sum(json.loads(body)["seq"] > 0 for _, body in sent)


async def internal(router: Router, region: str, purpose: str, currency: str) -> dict[str, int]:
    """An internal account's balance summed over its shards."""
    [row] = await rows(router, region, """
        SELECT coalesce(sum(credits_posted), 0) AS cp, coalesce(sum(debits_posted), 0) AS dp,
               coalesce(sum(credits_pending), 0) AS cpe, coalesce(sum(debits_pending), 0) AS dpe
        FROM accounts WHERE region = :r AND kind = 'internal' AND purpose LIKE :p
          AND currency = :c""", r=region, p=f"{purpose}.%", c=currency)
    return {"credits_posted": int(row.cp), "debits_posted": int(row.dp),
            "credits_pending": int(row.cpe), "debits_pending": int(row.dpe)}


@pytest_asyncio.fixture(name="rates", autouse=True)
async def rates_fixture(router: Router, client: AsyncTestClient[Any]) -> None:
    """Reference rates (HKD included), so the policies can weigh payouts against their
    thresholds; import ``rates_fixture`` into a test module to use it."""
    await load_rates(router, {**sample_rates, "HKD": "8.4512"})
    await client.app.state.policies.refresh(router, force=True)


@pytest_asyncio.fixture(name="gate")
async def gate_fixture(router: Router, rates: None) -> PolicyGate:
    """A policy gate of the workers' own, refreshed after the rates."""
    g = PolicyGate()
    await g.refresh(router, force=True)
    return g
