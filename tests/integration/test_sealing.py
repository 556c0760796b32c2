"""Shared data keys on a real database: usage counted in the sealing transaction, retired at
the bound (still opening what they sealed), one key for concurrent first uses, none after
erasure."""

from __future__ import annotations

import asyncio

import pytest

from payments import ids
from regions import erasure
from regions.router import Router
from regions.sealing import KeyDestroyed, Place, Sealer
from tests.integration.helpers import rows
from tests.payouts_helpers import sandbox_sealer

region = "eu-central"


def _sealer(seals_max: int) -> Sealer:
    return Sealer(sandbox_sealer().provider, seals_max=seals_max)


def _subject() -> str:
    return ids.new_id("ten", region)


async def test_a_shared_key_is_retired_at_its_bound_and_still_opens(router: Router) -> None:
    sealer, subject = _sealer(5), _subject()
    place = Place(subject, "incoming_payments", "inc_1")
    first = await router.run(region, lambda c: sealer.shared_key(c, region, subject, subject,
                                                                  seals=2))
    again = await router.run(region, lambda c: sealer.shared_key(c, region, subject, subject,
                                                                  seals=3))
    assert again.id == first.id  # 5 of 5
    blob = sealer.seal(first.key, place, "sender_name", "Retiree")
    fresh = await router.run(region, lambda c: sealer.shared_key(c, region, subject, subject,
                                                                  seals=1))
    assert fresh.id != first.id
    found = {r.id: r for r in await rows(router, region, """
        SELECT id, subject_id, seals, retired_at FROM data_keys
        WHERE region = :r AND tenant_id = :t""", r=region, t=subject)}
    assert found[first.id].seals == 5
    assert found[first.id].retired_at is not None
    assert found[first.id].subject_id == f"{subject}~retired~{first.id}"
    assert (found[fresh.id].seals, found[fresh.id].subject_id) == (1, subject)
    other_process = _sealer(5)
    old = await router.run(region, lambda c: other_process.key(c, region, first.id))
    assert Sealer.open(old, place, "sender_name", blob) == "Retiree"


async def test_a_count_over_the_bound_is_refused(router: Router) -> None:
    sealer, subject = _sealer(5), _subject()
    with pytest.raises(ValueError, match="outside"):
        await router.run(region, lambda c: sealer.shared_key(c, region, subject, subject,
                                                              seals=6))


async def test_concurrent_first_uses_share_one_key(router: Router) -> None:
    sealer, subject = _sealer(1_000), _subject()
    keys = await asyncio.gather(*(router.run(region, lambda c: sealer.shared_key(
        c, region, subject, subject, seals=1)) for _ in range(8)))
    assert len({k.id for k in keys}) == 1
    [row] = await rows(router, region, "SELECT seals FROM data_keys WHERE region = :r "
                       "AND tenant_id = :t", r=region, t=subject)
    assert row.seals == 8


async def test_an_erased_subjects_shared_key_is_not_recreated(router: Router) -> None:
    sealer, subject = _sealer(1_000), _subject()
    key = await router.run(region, lambda c: sealer.shared_key(c, region, subject, subject,
                                                                seals=1))
    assert await router.run(region, lambda c: erasure.destroy_keys(c, region, [key.id])) == 1
    assert await router.run(region, lambda c: erasure.destroy_keys(c, region, [key.id])) == 0
    with pytest.raises(KeyDestroyed):
        await router.run(region, lambda c: sealer.shared_key(c, region, subject, subject,
                                                              seals=1))
