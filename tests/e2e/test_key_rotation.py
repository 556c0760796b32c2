"""``corridor keys rotate``: a new KEK version, every live data key rewrapped under it, data
written before and after readable through the API throughout; the rotation audited in both
trails. And the binding of a ciphertext to its row: copied into another row, it does not open.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from payments.crypto import Undecryptable
from regions.keyring import LocalKeyring
from regions.router import DatabaseUrls, Router
from regions.sealing import Place
from regions.topology import Topology
from tests.conftest import run_cli, test_keyring_file
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.payouts_helpers import BENEFICIARY, de_iban, sandbox_sealer

GET = """query($id: ID!) { beneficiary(id: $id) { ... on Beneficiary { name address } } }"""


async def _beneficiary(p: Partner, name: str) -> str:
    got = await p.gql(BENEFICIARY, {"i": {"name": name, "country": "DE", "currency": "EUR",
                                          "iban": de_iban, "address": f"{name} street 1",
                                          "idempotencyKey": name}})
    return str(got["data"]["createBeneficiary"]["id"])


async def _kek_ids(router: Router, region: str, ben_ids: list[str]) -> list[str]:
    found = await rows(router, region, """
        SELECT k.kek_id FROM beneficiaries b
        JOIN data_keys k ON k.region = b.region AND k.id = b.data_key_id
        WHERE b.region = :r AND b.id = ANY(:ids) ORDER BY b.id""", r=region, ids=ben_ids)
    return [f.kek_id for f in found]


async def test_rotate_rewraps_and_data_before_and_after_reads(
        router: Router, topo: Topology, db_urls: DatabaseUrls,
        make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    before = [await _beneficiary(p, f"Rota Before {n}") for n in range(3)]
    current = LocalKeyring(test_keyring_file, []).current_kek_id(p.region)

    done = await asyncio.to_thread(run_cli, topo, db_urls, "keys", "rotate", "--region",
                                   p.region, "--settle-s", "0")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rotated = report["to"]
    assert (report["from"], report["region"]) == (current, p.region)
    assert rotated != current
    assert report["rewrapped"] >= 3
    assert report["live_data_keys"] == {rotated: report["live_data_keys"][rotated]}
    assert await _kek_ids(router, p.region, before) == [rotated] * 3

    after = await _beneficiary(p, "Rota After")
    assert await _kek_ids(router, p.region, [after]) == [rotated]
    for ben_id, name in [*zip(before, [f"Rota Before {n}" for n in range(3)], strict=True),
                         (after, "Rota After")]:
        got = (await p.gql(GET, {"id": ben_id}))["data"]["beneficiary"]
        assert got == {"name": name, "address": f"{name} street 1"}
        fresh = sandbox_sealer()  # a process that starts after the rotation
        [row] = await rows(router, p.region, "SELECT data_key_id FROM beneficiaries "
                           "WHERE region = :r AND id = :id", r=p.region, id=ben_id)
        assert await router.run(p.region, lambda c, k=row.data_key_id, s=fresh: s.key(
            c, p.region, k)) is not None

    status = await asyncio.to_thread(run_cli, topo, db_urls, "keys", "status", "--region",
                                     p.region)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["current"] == rotated

    trails = await rows(router, p.region, "SELECT action, detail FROM audit_events "
                        "WHERE region = :r AND action LIKE 'keys.%' AND detail->>'to' = :to "
                        "ORDER BY created_at, id", r=p.region, to=rotated)
    assert [t.action for t in trails] == ["keys.rotated", "keys.rewrapped"]

    async def control(conn: Any) -> list[str]:
        from sqlalchemy import text

        return [r.action for r in await conn.execute(text(
            "SELECT action FROM control_audit_events WHERE detail->>'to' = :to "
            "ORDER BY created_at, id"), {"to": rotated})]

    assert await router.read_control(control) == ["keys.rotated", "keys.rewrapped"]


async def test_keys_written_under_an_old_version_still_open(
        router: Router, make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    ben_id = await _beneficiary(p, "Old Version")
    [row] = await rows(router, p.region, "SELECT b.data_key_id, k.kek_id FROM beneficiaries b "
                       "JOIN data_keys k ON k.region = b.region AND k.id = b.data_key_id "
                       "WHERE b.region = :r AND b.id = :id", r=p.region, id=ben_id)
    LocalKeyring(test_keyring_file, []).rotate(p.region)  # no rewrap
    fresh = sandbox_sealer()
    assert fresh.provider.current_kek_id(p.region) != row.kek_id
    assert await router.run(p.region, lambda c: fresh.key(c, p.region, row.data_key_id))
    got = (await p.gql(GET, {"id": ben_id}))["data"]["beneficiary"]
    assert got["name"] == "Old Version"


async def test_a_ciphertext_copied_to_another_row_does_not_open(
        router: Router, make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    a, b = await _beneficiary(p, "Row Alpha"), await _beneficiary(p, "Row Beta")
    found = {r.id: r for r in await rows(router, p.region, """
        SELECT id, tenant_id, data_key_id, name_sealed, address_sealed FROM beneficiaries
        WHERE region = :r AND id IN (:a, :b)""", r=p.region, a=a, b=b)}
    sealer = sandbox_sealer()
    key_a = await router.run(p.region, lambda c: sealer.key(c, p.region,
                                                            found[a].data_key_id))
    place_a, place_b = (Place(p.tenant_id, "beneficiaries", i) for i in (a, b))
    blob = bytes(found[a].name_sealed)
    assert sealer.open(key_a, place_a, "name", blob) == "Row Alpha"
    with pytest.raises(Undecryptable):
        sealer.open(key_a, place_b, "name", blob)  # the same key, another row
    with pytest.raises(Undecryptable):
        sealer.open(key_a, place_a, "address", blob)  # the same row, another column
    key_b = await router.run(p.region, lambda c: sealer.key(c, p.region,
                                                            found[b].data_key_id))
    with pytest.raises(Undecryptable):
        sealer.open(key_b, place_b, "name", blob)  # row B's key and place


def test_rotate_bad_input(topo: Topology, db_urls: DatabaseUrls) -> None:
    unknown = run_cli(topo, db_urls, "keys", "rotate", "--region", "mars-north")
    assert unknown.returncode == 2
    assert "unknown region" in unknown.stderr
    missing = run_cli(topo, db_urls, "keys", "rotate")
    assert missing.returncode == 2
    assert "--region" in missing.stderr
