"""``corridor statements import`` for real: a CLI process on the test databases.

Good files credit the accounts behind our virtual IBANs and send unknown addresses to the
region's suspense; a file imported twice has one effect; a malformed or hostile file fails
naming the line or element and imports nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.conftest import corridor_env
from tests.e2e import conftest as e2e
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.payouts_helpers import BALANCE, assert_ledger_consistent

client = e2e.client
make_partner = e2e.make_partner

samples = Path(__file__).resolve().parents[2] / "payments" / "samples"
header = ("bank_reference,value_date,amount,currency,creditor_iban,creditor_account,"
          "sender_name,sender_iban,reference\n")
ISSUE = """mutation($i: IssueVirtualIbanInput!) { issueVirtualIban(input: $i) {
  ... on VirtualIban { iban } } }"""


def _import(topo: Topology, urls: DatabaseUrls, path: Path, *args: str
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "statements", "import", str(path),
                           "--region", "eu-central", *args], env=corridor_env(topo, urls),
                          capture_output=True, text=True, timeout=120)


def _summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _partner_with_iban(make_partner: MakePartner) -> tuple[Partner, str]:
    p = await make_partner("EU", extra={"EUR": 1})
    got = await p.gql(ISSUE, {"i": {"accountId": p.accounts[0], "country": "DE",
                                    "idempotencyKey": "vib"}})
    return p, got["data"]["issueVirtualIban"]["iban"]


async def _posted(p: Partner) -> str:
    got = await p.gql(BALANCE, {"id": p.accounts[0]})
    return str(got["data"]["account"]["balance"]["posted"]["amount"])


async def _imported(router: Router, prefix: str) -> int:
    found = await rows(router, "eu-central", "SELECT count(*) AS n FROM incoming_payments "
                       "WHERE region = 'eu-central' AND bank_reference LIKE :p", p=f"{prefix}%")
    return int(found[0].n)


async def test_csv_credits_our_ibans_once_and_suspends_the_rest(
        topo: Topology, db_urls: DatabaseUrls, router: Router, make_partner: MakePartner,
        tmp_path: Path) -> None:
    p, iban = await _partner_with_iban(make_partner)
    path = tmp_path / "statement.csv"
    path.write_text(header
                    + f"CSV1-{p.tenant_id},2026-12-01,100.00,EUR,{iban},,Anna,,inv 1\n"
                    + f"CSV2-{p.tenant_id},2026-12-01,0.50,EUR,{iban},,\"Bo, Ltd\",,\n"
                    + f"CSV3-{p.tenant_id},2026-12-01,7.00,EUR,DE89370400440532013000,,X,,\n")
    first = _summary(_import(topo, db_urls, path))
    assert (first["entries"], first["credited"], first["suspense"], first["duplicates"]) == (
        3, 2, 1, 0)
    assert await _posted(p) == "100.50"
    again = _summary(_import(topo, db_urls, path))
    assert (again["credited"], again["suspense"], again["duplicates"]) == (0, 0, 3)
    assert await _posted(p) == "100.50"
    page = await p.gql("{ incomingPayments { edges { node { senderName amount { amount } "
                       "status } } } }")
    assert sorted((e["node"]["senderName"], e["node"]["status"])
                  for e in page["data"]["incomingPayments"]["edges"]) == [
        ("Anna", "CREDITED"), ("Bo, Ltd", "CREDITED")]
    await assert_ledger_consistent(router, "eu-central", p.tenant_id)


async def test_camt053_sample_imports_once(topo: Topology, db_urls: DatabaseUrls,
                                           router: Router, make_partner: MakePartner,
                                           tmp_path: Path) -> None:
    p, iban = await _partner_with_iban(make_partner)
    xml = (samples / "camt053-sample.xml").read_text(encoding="utf-8")
    path = tmp_path / "statement.xml"
    path.write_text(xml.replace("DE89370400440532013000", iban)
                    .replace("20240614053184", f"{p.tenant_id[-8:]}-"), encoding="utf-8")
    first = _summary(_import(topo, db_urls, path))
    # The sample's first credit (1,250.00 EUR) now goes to our IBAN; the other two are to
    # addresses nobody owns.
    assert (first["entries"], first["credited"], first["suspense"]) == (3, 1, 2)
    assert await _posted(p) == "1250.00"
    again = _summary(_import(topo, db_urls, path, "--format", "camt053"))
    assert (again["duplicates"], again["credited"]) == (3, 0)
    assert await _posted(p) == "1250.00"
    await assert_ledger_consistent(router, "eu-central", p.tenant_id)


async def test_malformed_csv_names_the_line_and_imports_nothing(
        topo: Topology, db_urls: DatabaseUrls, router: Router, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(header + "BADCSV-1,2026-12-01,1.00,EUR,DE89370400440532013000,,A,,\n"
                    + "BADCSV-2,2026-13-01,1.00,EUR,DE89370400440532013000,,A,,\n")
    done = _import(topo, db_urls, path)
    assert done.returncode == 2
    assert "line 3" in done.stderr, done.stderr
    assert await _imported(router, "BADCSV-") == 0


async def test_hostile_xml_is_refused_and_imports_nothing(
        topo: Topology, db_urls: DatabaseUrls, router: Router, tmp_path: Path) -> None:
    xml = (samples / "camt053-sample.xml").read_text(encoding="utf-8")
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n')
    path = tmp_path / "bomb.xml"
    path.write_text(bomb + xml.split("?>", 1)[1].replace("2024061405318447", "&b;"),
                    encoding="utf-8")
    done = _import(topo, db_urls, path)
    assert done.returncode == 2
    assert "DTD" in done.stderr, done.stderr
    missing = tmp_path / "absent.csv"
    gone = _import(topo, db_urls, missing)
    assert gone.returncode == 2
    assert "absent.csv" in gone.stderr


SIMULATE = """mutation($i: SimulateIncomingPaymentInput!) { simulateIncomingPayment(input: $i) {
  ... on IncomingPayment { id status } } }"""


def _reconcile(topo: Topology, urls: DatabaseUrls, path: Path, *args: str
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "statements", "reconcile",
                           str(path), "--region", "eu-central", *args],
                          env=corridor_env(topo, urls), capture_output=True, text=True,
                          timeout=120)


async def test_reconcile_matches_a_statement_to_the_payments_recorded(
        topo: Topology, db_urls: DatabaseUrls, make_partner: MakePartner,
        tmp_path: Path) -> None:
    """Payments announced as they arrived (simulated here) are found on the end-of-day
    statement by reference, amount and a value date a day off; what only one side has is a
    break, and the command exits 1."""
    p, iban = await _partner_with_iban(make_partner)
    tag = p.tenant_id[-10:]
    made = {}
    for key, amount in (("a", "12.00"), ("b", "34.50"), ("c", "56.00")):
        got = await p.gql(SIMULATE, {"i": {"iban": iban, "amount": amount, "currency": "EUR",
                                           "senderName": "Payer", "reference": f"{tag} {key}",
                                           "idempotencyKey": f"sim-{key}"}})
        made[key] = got["data"]["simulateIncomingPayment"]["id"]
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    path = tmp_path / "eod.csv"
    path.write_text(header
                    + f"EOD1-{tag},{tomorrow},12.00,EUR,{iban},,Payer,,{tag.upper()}A\n"
                    + f"EOD2-{tag},{today.isoformat()},34.50,EUR,{iban},,Payer,,{tag} b\n"
                    + f"EOD3-{tag},{today.isoformat()},99.00,EUR,{iban},,Stranger,,{tag} z\n")
    done = _reconcile(topo, db_urls, path)
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    matched = {m["payment_id"]: (m["bank_reference"], m["how"]) for m in out["matched"]}
    assert matched[made["a"]] == (f"EOD1-{tag}", "REFERENCE_AMOUNT_DATE")
    assert matched[made["b"]] == (f"EOD2-{tag}", "REFERENCE_AMOUNT_DATE")
    breaks = {(b["kind"], b["bank_reference"] or b["payment_id"]) for b in out["breaks"]}
    assert ("NOT_RECORDED", f"EOD3-{tag}") in breaks
    assert ("NOT_ON_STATEMENT", made["c"]) in breaks
    # With no tolerance the day-late entry no longer matches.
    strict = json.loads(_reconcile(topo, db_urls, path, "--tolerance-days", "0").stdout)
    assert made["a"] not in {m["payment_id"] for m in strict["matched"]}
    as_csv = _reconcile(topo, db_urls, path, "--export", "csv")
    assert as_csv.returncode == 1
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "kind,bank_reference,payment_id,amount_minor,currency,detail"
    assert any(line.startswith(f"NOT_RECORDED,EOD3-{tag},,9900,EUR,") for line in lines)


def test_reconcile_refuses_bad_arguments(topo: Topology, db_urls: DatabaseUrls,
                                        tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text(header + "R1,2026-12-01,1.00,EUR,DE89370400440532013000,,X,,\n")
    for args, problem in ((["--tolerance-days", "40"], "tolerance-days"),
                          (["--tolerance-days", "-1"], "tolerance-days")):
        done = _reconcile(topo, db_urls, path, *args)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert problem in done.stderr
    bad = subprocess.run([sys.executable, "-m", "api.cli", "statements", "reconcile",
                          str(path), "--region", "atlantis-1"], env=corridor_env(topo, db_urls),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "unknown region" in bad.stderr
