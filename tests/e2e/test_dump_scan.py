"""A ``pg_dump`` of every database holds no personal value in clear.

Tenants in eu-central (the global cluster) and cn-east (the sovereign CN cluster) run a full
scenario over HTTP: beneficiaries with names, addresses and account numbers; payouts, a payout
batch and a refund taken to the sandbox rails, one of them held for review and released by an
officer; incoming payments credited and in suspense; webhook endpoints, a secret rotated and
the events relayed. Then the control plane and every cluster database the test setup made are
dumped, schema and data, as plain text. No seeded personal value or webhook secret is in any
dump, in any case, as text or as the hex of a bytea. Values stored in clear by design (payment
references, tenant ids) are, so the scan cannot pass on an empty dump; and the API and the rails
get every personal value back, so the values were really stored.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

from schwifty import IBAN
from sqlalchemy.engine import make_url

from payments.payouts import rails as rail_table
from payments.principal import Role
from regions.payouts import Instruction, RailOutcome
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology
from tests.e2e.conftest import MakePartner, Partner
from tests.integration.helpers import rows
from tests.payouts_helpers import BENEFICIARY, PAYOUT, de_iban, sandbox_sealer
from workers.payouts import process_batch, process_payout
from workers.rails import Rails, SimulatedRail
from workers.webhooks import enqueue_event

pg_dump = "/usr/bin/pg_dump"
pg_dump_timeout_s = 120
dump_bytes_min = 10_000
"""The smallest dump, the control plane's, is about 20 KB (its schema and a few rows): a dump
under this is not of the database the test wrote to."""

gate = PolicyGate()
"""Policies at their defaults."""

ISSUE = """mutation($i: IssueVirtualIbanInput!) { issueVirtualIban(input: $i) { __typename
  ... on VirtualIban { iban bankCode accountNumber } ... on Error { code message } } }"""
SIMULATE = """mutation($i: SimulateIncomingPaymentInput!) { simulateIncomingPayment(input: $i) {
  __typename ... on IncomingPayment { id status senderName senderAccountMasked suspenseReason }
  ... on Error { code message } ... on ValidationError { field } } }"""
REFUND = """mutation($i: RefundIncomingPaymentInput!) { refundIncomingPayment(input: $i) {
  __typename ... on Payout { id status beneficiary { name } } ... on Error { code message } } }"""
BATCH = """mutation($i: CreatePayoutBatchInput!) { createPayoutBatch(input: $i) { __typename
  ... on PayoutBatch { id itemCount rejected { index code } } ... on Error { code message } } }"""
CASES = """{ reviewCases(status: "OPEN") { edges { node { id subjectId } } } }"""
RESOLVE = """mutation($i: ResolveReviewCaseInput!) { resolveReviewCase(input: $i) {
  __typename ... on ReviewCase { status } ... on Error { code message } } }"""
GET_BENEFICIARY = """query($id: ID!) { beneficiary(id: $id) { ... on Beneficiary {
  name address accountNumberMasked } } }"""
REGISTER = """mutation($i: RegisterWebhookEndpointInput!) { registerWebhookEndpoint(input: $i) {
  __typename ... on WebhookEndpointSecret { secret endpoint { id } } ... on Error { code } } }"""
ROTATE = """mutation($i: WebhookEndpointActionInput!) { rotateWebhookSecret(input: $i) {
  __typename ... on WebhookEndpointSecret { secret } ... on Error { code } } }"""


@dataclass(frozen=True)
class Payee:
    name: str
    country: str
    currency: str
    address: str
    iban: str | None = None
    bank_code: str | None = None
    account_number: str | None = None

    @property
    def account(self) -> str:
        account = self.iban or self.account_number
        assert account is not None
        return account


@dataclass(frozen=True)
class Sender:
    name: str
    iban: str | None = None


# Distinctive values that cannot be in a dump by chance; the IBANs pass their national checks.
eu_payee = Payee("Добрыня Дампсканов", "DE", "EUR", "Zxqvander Allee 17, 10999 Dumpscanheim",
                 iban="DE61370400447301039485")
eu_batch_payee = Payee("Quillon Vextrabury", "FR", "EUR", "41 Rue Jorvaquet, 69002 Lyon",
                       iban="FR7620041010057391046280038")
cn_payee = Payee("诸葛转储", "CN", "CNY", "上海市浦东新区转储路88号",
                 bank_code="102100099996", account_number="6217730194628501")
eu_sender = Sender("Ysolde Krämerwirth", "GB98NWBK60161347296100")
eu_stray_sender = Sender("Thaddeus Oxblume", "GB22NWBK60161358302700")
cn_sender = Sender("司马扫描")
cn_stray_sender = Sender("欧阳迷途", "GB44NWBK60161347296102")
cn_unknown_address = "CN:102100099996:6200000000000000000"

references = {"EUR": "dumpscan clear reference eu 4711",
              "CNY": "dumpscan clear reference cn 4712"}
"""Payment references are partner text, stored in clear by design: a positive control."""


@dataclass(frozen=True)
class Seeded:
    partner: Partner
    secrets: list[str]
    ids: list[str]
    """Ids of rows with sealed columns (beneficiaries, webhook endpoints), stored in clear."""


class RecordingRail(SimulatedRail):
    """A sandbox rail that keeps each instruction: proof the worker opened the sealed values."""

    def __init__(self, name: str, seen: list[Instruction]) -> None:
        super().__init__(name, return_after_s=0)
        self.seen = seen

    async def submit(self, instruction: Instruction) -> RailOutcome:
        self.seen.append(instruction)
        return await super().submit(instruction)


async def _beneficiary(p: Partner, payee: Payee, key: str) -> str:
    got = await p.gql(BENEFICIARY, {"i": {
        "name": payee.name, "country": payee.country, "currency": payee.currency,
        "iban": payee.iban, "bankCode": payee.bank_code, "accountNumber": payee.account_number,
        "address": payee.address, "idempotencyKey": key}})
    ben = got["data"]["createBeneficiary"]
    assert ben["__typename"] == "Beneficiary", got
    read = await p.gql(GET_BENEFICIARY, {"id": ben["id"]})
    assert read["data"]["beneficiary"] == {"name": payee.name, "address": payee.address,
                                           "accountNumberMasked": f"••••{payee.account[-4:]}"}
    return str(ben["id"])


async def _payout(p: Partner, ben: str, amount: str, currency: str, key: str) -> dict[str, Any]:
    got = await p.gql(PAYOUT, {"i": {"accountId": p.accounts[0], "beneficiaryId": ben,
                                     "amount": amount, "currency": currency,
                                     "reference": references[currency], "idempotencyKey": key}})
    payout: dict[str, Any] = got["data"]["createPayout"]
    assert payout["__typename"] == "Payout", got
    return payout


async def _incoming(p: Partner, address: str, sender: Sender, amount: str, currency: str,
                    key: str) -> dict[str, Any]:
    got = await p.gql(SIMULATE, {"i": {"iban": address, "amount": amount, "currency": currency,
                                       "senderName": sender.name, "senderIban": sender.iban,
                                       "reference": references[currency],
                                       "idempotencyKey": key}})
    received: dict[str, Any] = got["data"]["simulateIncomingPayment"]
    assert received["senderName"] == sender.name, got
    masked = f"••••{sender.iban[-4:]}" if sender.iban else None
    assert received["senderAccountMasked"] == masked, got
    return received


async def _release(officer: Partner, payout_id: str) -> None:
    got = await officer.gql(CASES)
    [case] = [e["node"]["id"] for e in got["data"]["reviewCases"]["edges"]
              if e["node"]["subjectId"] == payout_id]
    got = await officer.gql(RESOLVE, {"i": {"caseId": case, "decision": "RELEASE",
                                            "idempotencyKey": "release"}})
    assert got["data"]["resolveReviewCase"]["status"] == "RELEASED", got


async def _virtual_address(p: Partner, country: str) -> str:
    got = await p.gql(ISSUE, {"i": {"accountId": p.accounts[0], "country": country,
                                    "idempotencyKey": "vib"}})
    issued = got["data"]["issueVirtualIban"]
    assert issued["__typename"] == "VirtualIban", got
    return str(issued["iban"] or f"{country}:{issued['bankCode']}:{issued['accountNumber']}")


async def _webhook_endpoint(p: Partner, rotate: bool) -> tuple[str, list[str]]:
    """An endpoint (refused at delivery: a private address) and every secret it was given."""
    got = await p.gql(REGISTER, {"i": {"url": "http://127.0.0.1:9/dumpscan", "events": ["*"],
                                       "idempotencyKey": "hook"}})
    created = got["data"]["registerWebhookEndpoint"]
    assert created["__typename"] == "WebhookEndpointSecret", got
    secrets = [created["secret"]]
    if rotate:
        got = await p.gql(ROTATE, {"i": {"endpointId": created["endpoint"]["id"],
                                         "idempotencyKey": "rotate"}})
        secrets.append(got["data"]["rotateWebhookSecret"]["secret"])
    assert all(s and s.startswith("whsec_") for s in secrets), secrets
    return created["endpoint"]["id"], secrets


async def _relay_events(router: Router, p: Partner) -> None:
    """What the relay does with the tenant's events: each becomes a stored delivery body."""
    made = 0
    for e in await rows(router, p.region, "SELECT id, tenant_id, topic, payload, created_at "
                        "FROM outbox WHERE region = :r AND tenant_id = :t ORDER BY created_at",
                        r=p.region, t=p.tenant_id):
        made += await enqueue_event(router, sandbox_sealer(), p.region, e.tenant_id, e.id,
                                    e.topic, e.created_at.isoformat(), dict(e.payload),
                                    allow_private=False)
    assert made > 0


async def _eu_scenario(router: Router, make_partner: MakePartner, rails: Rails) -> Seeded:
    p = await make_partner("EU", funded={"EUR": 100_000_00})
    endpoint, secrets = await _webhook_endpoint(p, rotate=True)
    ben = await _beneficiary(p, eu_payee, "ben-1")
    batch_ben = await _beneficiary(p, eu_batch_payee, "ben-2")
    payout = await _payout(p, ben, "120.00", "EUR", "pay-1")
    assert await process_payout(router, sandbox_sealer(), gate, rails, p.region, payout["id"],
                                "m-pay-1")
    items = [{"beneficiaryId": b, "amount": "33.00", "currency": "EUR",
              "reference": references["EUR"]} for b in (ben, batch_ben)]
    got = await p.gql(BATCH, {"i": {"accountId": p.accounts[0], "items": items,
                                    "idempotencyKey": "batch-1"}})
    batch = got["data"]["createPayoutBatch"]
    assert (batch["__typename"], batch["itemCount"], batch["rejected"]) == (
        "PayoutBatch", 2, []), got
    assert await process_batch(router, sandbox_sealer(), gate, rails, p.region, batch["id"]) == 2

    address = await _virtual_address(p, "DE")
    credited = await _incoming(p, address, eu_sender, "75.00", "EUR", "in-1")
    assert credited["status"] == "CREDITED", credited
    stray = await _incoming(p, de_iban, eu_stray_sender, "40.00", "EUR", "in-2")
    assert (stray["status"], stray["suspenseReason"]) == ("SUSPENSE", "UNKNOWN_ACCOUNT")
    got = await p.gql(REFUND, {"i": {"incomingPaymentId": credited["id"],
                                     "idempotencyKey": "refund-1"}})
    refund = got["data"]["refundIncomingPayment"]
    assert (refund["__typename"], refund["beneficiary"]) == (
        "Payout", {"name": eu_sender.name}), got
    assert await process_payout(router, sandbox_sealer(), gate, rails, p.region, refund["id"],
                                "m-refund-1")
    await _relay_events(router, p)
    return Seeded(p, secrets, [endpoint, ben, batch_ben])


async def _cn_scenario(router: Router, make_partner: MakePartner, rails: Rails) -> Seeded:
    p = await make_partner("CN", funded={"CNY": 1_000_000_00})
    officer = await make_partner("CN", role=Role.COMPLIANCE_OFFICER)
    assert p.region == "cn-east"
    endpoint, secrets = await _webhook_endpoint(p, rotate=False)
    ben = await _beneficiary(p, cn_payee, "ben-1")
    payout = await _payout(p, ben, "520000.00", "CNY", "pay-1")
    assert payout["status"] == "HELD_FOR_REVIEW", payout  # a PBoC large-value report
    await _release(officer, payout["id"])
    assert await process_payout(router, sandbox_sealer(), gate, rails, p.region, payout["id"],
                                "m-pay-1")

    address = await _virtual_address(p, "CN")
    credited = await _incoming(p, address, cn_sender, "88.00", "CNY", "in-1")
    assert credited["status"] == "CREDITED", credited
    stray = await _incoming(p, cn_unknown_address, cn_stray_sender, "9.00", "CNY", "in-2")
    assert (stray["status"], stray["suspenseReason"]) == ("SUSPENSE", "UNKNOWN_ACCOUNT")
    await _relay_events(router, p)
    return Seeded(p, secrets, [endpoint, ben])


def _assert_rails_got_clear_values(seen: list[Instruction]) -> None:
    """The worker opened every payee's name and account for the rail: they were stored."""
    got = {(i.payee_name, i.payee.iban or i.payee.account_number) for i in seen}
    expected: set[tuple[str, str | None]] = {
        (payee.name, payee.account) for payee in (eu_payee, eu_batch_payee, cn_payee)}
    expected.add((eu_sender.name, eu_sender.iban))  # the refund pays the sender back
    assert got == expected, got


def _personal_values(secrets: list[str]) -> list[str]:
    """Every seeded personal value and secret, with the parts a store might keep apart."""
    values = []
    for payee in (eu_payee, eu_batch_payee, cn_payee):
        values += [payee.name, *payee.name.split(), payee.address, *_account_forms(payee.account)]
    for sender in (eu_sender, eu_stray_sender, cn_sender, cn_stray_sender):
        values += [sender.name, *sender.name.split()]
        values += _account_forms(sender.iban) if sender.iban else []
    values += secrets + [s.removeprefix("whsec_") for s in secrets]
    return sorted(set(values))


def _account_forms(account: str) -> list[str]:
    """An account number; an IBAN also spaced in groups and as its bare account code."""
    if not account[:2].isalpha():
        return [account]
    iban = IBAN(account)
    return [account, iban.formatted, iban.account_code]


def _forms(value: str) -> set[str]:
    """How a value may be written in a dump, folded: as text (also JSON-escaped), or as the hex
    of its UTF-8 bytes (pg_dump writes bytea as ``\\x`` and hex)."""
    texts = {value, value.upper(), value.lower(), json.dumps(value)[1:-1]}
    return {t.casefold() for t in texts} | {t.encode().hex() for t in texts}


def _where(folded_dump: str, at: int) -> str:
    """The COPY line of the table whose data holds position ``at``, if any."""
    block = folded_dump.rfind("\ncopy ", 0, at)
    end = folded_dump.rfind("\n\\.\n", 0, at)
    if block <= end:
        return "outside table data"
    return folded_dump[block + 1:folded_dump.index("\n", block + 1)]


def _leaks(dump: str, values: list[str]) -> list[str]:
    folded = dump.casefold()
    return [f"{value!r} as {form!r}, first in {_where(folded, folded.find(form))}"
            for value in values for form in sorted(_forms(value)) if form in folded]


def _databases(urls: DatabaseUrls) -> dict[str, str]:
    """Each database the test setup made, by name: the control plane and every cluster."""
    return {"control": urls.control, **urls.clusters}


async def _dump(sqlalchemy_url: str) -> str:
    """A full plain-text dump (schema and data) of one database."""
    url = make_url(sqlalchemy_url)
    env = {**os.environ, "PGPASSWORD": url.password or "", "PGCONNECT_TIMEOUT": "10"}
    libpq_url = url.set(drivername="postgresql", password=None).render_as_string()
    proc = await asyncio.create_subprocess_exec(
        pg_dump, "--format=plain", "--encoding=UTF8", "--no-owner", f"--dbname={libpq_url}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        async with asyncio.timeout(pg_dump_timeout_s):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_dump_of_every_database_holds_no_personal_value_in_clear(
        router: Router, topo: Topology, db_urls: DatabaseUrls,
        make_partner: MakePartner) -> None:
    seen: list[Instruction] = []
    rails = Rails(RecordingRail(r.name, seen) for r in rail_table)
    eu = await _eu_scenario(router, make_partner, rails)
    cn = await _cn_scenario(router, make_partner, rails)
    _assert_rails_got_clear_values(seen)
    eu_cluster, cn_cluster = (topo.region(s.partner.region).cluster for s in (eu, cn))
    assert eu_cluster != cn_cluster
    assert topo.region(cn.partner.region).sovereign

    databases = _databases(db_urls)
    assert len(set(databases.values())) == len(databases) == 1 + len(topo.clusters)
    clear_by_design = {"control": [eu.partner.tenant_id, cn.partner.tenant_id],
                       eu_cluster: [references["EUR"], *eu.ids],
                       cn_cluster: [references["CNY"], *cn.ids]}
    values = _personal_values(eu.secrets + cn.secrets)
    leaks = {}
    for name, url in databases.items():
        dump = await _dump(url)
        size_bytes = len(dump.encode())
        assert size_bytes >= dump_bytes_min, (name, size_bytes)
        assert [v for v in clear_by_design.get(name, []) if v not in dump] == [], name
        leaks[name] = _leaks(dump, values)
    assert leaks == {name: [] for name in databases}
