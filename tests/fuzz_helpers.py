"""Shared by the GraphQL fuzzing tests: a populated tenant to fuzz against, the dictionaries that
steer schemathesis's arguments towards that tenant's real ids and plausible values, and the
invariants checked once the fuzzing is over."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import graphql
import schemathesis
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.graphql import nodes
from schemathesis.specs.graphql.schemas import GraphQLSchema
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.principal import Environment, Role
from payments.webhooks import event_types
from policies import catalog
from regions import commands, tenants
from regions.ledger_store import insert_account
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.topology import Topology
from schema.pagination import encode_cursor
from tests.conftest import officer_scope, test_pepper
from tests.integration.helpers import rows
from tests.payouts_helpers import assert_ledger_consistent, de_iban

schema_path = Path(__file__).parents[1] / "schema.graphql"
_sdl = graphql.build_schema(schema_path.read_text())
graphql_url = "http://testserver.local/graphql"
"""Where the in-process app answers (``AsyncTestClient``'s base URL)."""
funding_minor = {"EUR": 50_000_00, "GBP": 5_000_00, "USD": 5_000_00}
"""EUR 50,000.00: enough for payouts over EU's review threshold (EUR 15,000.00) to be held."""
dictionary_probability = 0.8
"""How often an argument the dictionaries know takes one of their values instead of a random
one: mostly real ids and plausible money, so calls get past "not found" into the resolvers."""
key_probability = 0.3
"""How often an idempotency key is one of a few shared ones: some replays and conflicts, but
mostly fresh keys, so mutations have effects."""


@dataclass
class World:
    """A funded EU tenant with a key per role and one of everything, and a stranger tenant in
    the same region whose objects a partner must never see."""

    region: str
    tenant_id: str
    keys: dict[Role, str]
    ids: list[str]
    ibans: list[str]
    stranger_tenant_id: str
    stranger_ids: list[str]
    refused_keys: list[str]
    """Keys of the tenant that no longer work: one revoked through the API, one expired."""


async def build_world(router: Router, topo: Topology, client: AsyncTestClient[Any]) -> World:
    """The world the fuzzer plays in, made through the API it fuzzes where the API can."""
    tenant_id, region, keys = await _tenant(router, topo, "Fuzz Ltd", list(Role))
    accounts = await _accounts(router, region, tenant_id, funding_minor)
    made, ibans = await _one_of_everything(client, keys[Role.PARTNER_ADMIN], accounts)
    stranger_id, stranger_region, stranger = await _tenant(
        router, topo, "Stranger Ltd", [Role.PARTNER_ADMIN, Role.COMPLIANCE_OFFICER])
    assert stranger_region == region
    theirs = await _accounts(router, region, stranger_id, funding_minor)
    their_made, their_ibans = await _one_of_everything(client, stranger[Role.PARTNER_ADMIN],
                                                       theirs)
    change = await _made(client, stranger[Role.COMPLIANCE_OFFICER], "proposePolicyChange",
                         "ProposePolicyChangeInput", {
                             "jurisdiction": "EU", "changes": {"review_threshold": "20000.00"},
                             "reason": "for another officer to decide",
                             "idempotencyKey": "w-change"}, "PolicyChangeRequest")
    cases = [r.id for r in await rows(router, region, """
        SELECT id FROM review_cases WHERE region = :r AND tenant_id IN (:mine, :theirs)""",
                                      r=region, mine=tenant_id, theirs=stranger_id)]
    assert len(cases) == 2, cases
    return World(region, tenant_id, keys,
                 ids=[*accounts, *made, *cases, change["id"], await _spare_key(router, tenant_id)],
                 ibans=[*ibans, *their_ibans, de_iban],
                 stranger_tenant_id=stranger_id, stranger_ids=[*theirs, *their_made],
                 refused_keys=[await _revoked_key(client, keys[Role.PARTNER_ADMIN]),
                               await _expired_key(router, tenant_id)])


async def _tenant(router: Router, topo: Topology, name: str,
                  roles: list[Role]) -> tuple[str, str, dict[Role, str]]:
    async def body(conn: AsyncConnection) -> tuple[str, str, dict[Role, str]]:
        t = await tenants.create_tenant(conn, topo, name, "EU", None, Environment.TEST,
                                        gate=PolicyGate())
        keys = {r: (await tenants.create_api_key(conn, test_pepper, t.id, r,
                                                 officer_scope(r, "EU"))).key for r in roles}
        return t.id, t.home_region, keys

    return await router.run_control(body)


async def _spare_key(router: Router, tenant_id: str) -> str:
    """The id of a spare key, for the fuzzer to revoke (the keys it calls with stay)."""
    async def body(conn: AsyncConnection) -> str:
        return (await tenants.create_api_key(conn, test_pepper, tenant_id,
                                             Role.PARTNER_READONLY)).id

    return await router.run_control(body)


async def _revoked_key(client: AsyncTestClient[Any], admin: str) -> str:
    made = await _made(client, admin, "createApiKey", "CreateApiKeyInput", {
        "role": "PARTNER_ADMIN", "idempotencyKey": "w-revoked"}, "ApiKeySecret",
        "key apiKey { id }")
    await _made(client, admin, "revokeApiKey", "RevokeApiKeyInput", {
        "keyId": made["apiKey"]["id"], "idempotencyKey": "w-revoke"}, "ApiKey")
    key: str = made["key"]
    return key


async def _expired_key(router: Router, tenant_id: str) -> str:
    """A key that expired yesterday (the API only makes keys that expire ahead)."""
    async def body(conn: AsyncConnection) -> str:
        return (await tenants.create_api_key(
            conn, test_pepper, tenant_id, Role.PARTNER_ADMIN,
            expires_at=datetime.now(UTC) - timedelta(days=1))).key

    return await router.run_control(body)


async def _accounts(router: Router, region: str, tenant_id: str,
                    funded: dict[str, int]) -> list[str]:
    """One funded account per currency, then an empty EUR account."""
    async def body(conn: AsyncConnection) -> list[str]:
        out = []
        for currency, minor in funded.items():
            acc = await insert_account(conn, region, tenant_id, currency, f"fuzz {currency}")
            await commands.fund_account_txn(conn, region, tenant_id, acc, minor, currency,
                                            "fuzz")
            out.append(acc)
        out.append(await insert_account(conn, region, tenant_id, "EUR", "fuzz empty"))
        return out

    return await router.run(region, body)


async def _made(client: AsyncTestClient[Any], key: str, mutation: str, input_type: str,
                input_: dict[str, Any], typename: str, selection: str = "id") -> dict[str, Any]:
    """The result of ``mutation(input: input_)``, which must be a ``typename``."""
    query = (f"mutation($i: {input_type}!) {{ {mutation}(input: $i) {{ __typename "
             f"... on {typename} {{ {selection} }} ... on Error {{ code message }} }} }}")
    resp = await client.post("/graphql", json={"query": query, "variables": {"i": input_}},
                             headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()["data"][mutation]
    assert result["__typename"] == typename, (mutation, result)
    return result


async def _one_of_everything(client: AsyncTestClient[Any], admin: str,
                             accounts: list[str]) -> tuple[list[str], list[str]]:
    """A beneficiary, payouts (one held for review), a transfer, a payout batch, an FX quote,
    a virtual IBAN with a payment in and one in suspense, a webhook endpoint: their ids, and
    the IBAN."""
    eur, empty = accounts[0], accounts[-1]
    ben = (await _made(client, admin, "createBeneficiary", "CreateBeneficiaryInput", {
        "name": "Jane Roe", "country": "DE", "currency": "EUR", "iban": de_iban,
        "address": "Unter den Linden 1, Berlin", "idempotencyKey": "w-ben"}, "Beneficiary"))["id"]
    made = [ben]
    for amount, key in (("100.00", "w-pay"), ("15000.00", "w-held")):
        made.append((await _made(client, admin, "createPayout", "CreatePayoutInput", {
            "accountId": eur, "beneficiaryId": ben, "amount": amount, "currency": "EUR",
            "idempotencyKey": key}, "Payout"))["id"])
    made.append((await _made(client, admin, "createTransfer", "CreateTransferInput", {
        "fromAccountId": eur, "toAccountId": empty, "amount": "10.00", "currency": "EUR",
        "idempotencyKey": "w-trf"}, "Transfer"))["id"])
    made.append((await _made(client, admin, "createPayoutBatch", "CreatePayoutBatchInput", {
        "accountId": eur, "items": [{"beneficiaryId": ben, "amount": "5.00", "currency": "EUR"}],
        "idempotencyKey": "w-batch"}, "PayoutBatch"))["id"])
    made.append((await _made(client, admin, "createFxQuote", "CreateFxQuoteInput", {
        "sellCurrency": "EUR", "buyCurrency": "USD", "sellAmount": "20.00",
        "idempotencyKey": "w-quote"}, "FxQuote"))["id"])
    vib = await _made(client, admin, "issueVirtualIban", "IssueVirtualIbanInput", {
        "accountId": eur, "country": "DE", "idempotencyKey": "w-vib"}, "VirtualIban", "id iban")
    made.append(vib["id"])
    for currency, key in (("EUR", "w-in"), ("GBP", "w-suspense")):
        made.append((await _made(client, admin, "simulateIncomingPayment",
                                 "SimulateIncomingPaymentInput", {
                                     "iban": vib["iban"], "amount": "25.00", "currency": currency,
                                     "senderName": "Erika Muster", "idempotencyKey": key},
                                 "IncomingPayment"))["id"])
    made.append((await _made(client, admin, "registerWebhookEndpoint",
                             "RegisterWebhookEndpointInput", {
                                 "url": "https://example.com/hook", "events": ["*"],
                                 "idempotencyKey": "w-hook"},
                             "WebhookEndpointSecret", "endpoint { id }"))["endpoint"]["id"])
    return made, [vib["iban"]]


async def close_open_cases(router: Router, client: AsyncTestClient[Any], world: World) -> None:
    """Rejects, through the API, the review cases of both tenants still open. A
    jurisdiction's case queue is shared by every test of the session and lists oldest first,
    so cases left open would push later tests' cases off its first page."""
    still_open = await rows(router, world.region, """
        SELECT id FROM review_cases
        WHERE region = :r AND tenant_id IN (:mine, :theirs) AND status = 'OPEN'""",
                            r=world.region, mine=world.tenant_id,
                            theirs=world.stranger_tenant_id)
    for case in still_open:
        await _made(client, world.keys[Role.COMPLIANCE_OFFICER], "resolveReviewCase",
                    "ResolveReviewCaseInput", {"caseId": case.id, "decision": "REJECT",
                                               "idempotencyKey": f"w-close-{case.id}"},
                    "ReviewCase")


# --- what schemathesis generates -------------------------------------------------------------

id_kinds = {
    "accountId": "acc", "fromAccountId": "acc", "toAccountId": "acc", "sellAccountId": "acc",
    "buyAccountId": "acc", "beneficiaryId": "ben", "payoutId": "pay", "quoteId": "fxq",
    "incomingPaymentId": "inc", "endpointId": "whe", "caseId": "rvc", "changeId": "pch",
    "keyId": "key", "account.id": "acc", "transfer.id": "trf", "fxQuote.id": "fxq",
    "beneficiary.id": "ben", "payout.id": "pay", "payoutBatch.id": "pbt",
}
"""The kind of id (its prefix) an ID argument or input field takes: by its name, or for an
``id`` argument by its field."""
cursor_kinds = {
    "accounts": "acc", "transfers": "trf", "beneficiaries": "ben", "payouts": "pay",
    "webhookEndpoints": "whe", "webhookDeliveries": "whd", "incomingPayments": "inc",
    "reconciliationItems": "inc", "settlementBatches": "stb", "policyChangeRequests": "pch",
    "reviewCases": "rvc", "auditEvents": "aud", "apiKeys": "key", "entries": "ent",
    "items": "pay",
}
"""The kind of cursor each list field takes as ``after``."""
by_name = {
    "currency": "currencies", "sellCurrency": "currencies", "buyCurrency": "currencies",
    "base": "currencies", "amount": "amounts", "sellAmount": "amounts", "buyAmount": "amounts",
    "country": "countries", "counterpartyCountry": "countries", "jurisdiction": "jurisdictions",
    "region": "regions", "regionA": "regions", "regionB": "regions", "iban": "ibans",
    "senderIban": "ibans", "url": "urls", "events": "events", "status": "statuses",
    "name": "names", "senderName": "names", "counterpartyName": "names",
    "idempotencyKey": "keys", "first": "counts", "count": "counts",
    "validForSeconds": "seconds",
}
"""The dictionary of any other String or Int argument or input field, by its name."""
unknown_ulid = "01M8XRG95Q7256B5C9ATGHPYJ5"


def _kind(some_id: str) -> str:
    return some_id.split("_", 1)[0]


def _elsewhere(some_id: str, region: str) -> str:
    """The id with another region in it: the same object asked for in the wrong place."""
    kind, _, rest = some_id.partition("_")
    return f"{kind}_{region}_{rest.rsplit('_', 1)[-1]}"


def _ids(world: World, regions: list[str], kind: str) -> list[str]:
    """Ids of one kind: the tenant's and the stranger's, one moved to every region, well-formed
    ones of nothing, and malformed ones."""
    ours = [i for i in [*world.ids, *world.stranger_ids] if _kind(i) == kind]
    return [*ours, *(_elsewhere(i, r) for i in ours[:1] for r in regions),
            f"{kind}_{world.region}_{unknown_ulid}", f"{kind}_mars-north-1_{unknown_ulid}",
            f"{kind}_{world.region}_0", world.ids[0], "", kind * 30]


def _cursors(world: World, kind: str) -> list[str]:
    """Cursors of one list: after each object of its kind, before and after everything, and
    ones of no list at all. (Statements page by entry number.)"""
    keys = [i for i in [*world.ids, *world.stranger_ids] if _kind(i) == kind]
    if kind == "ent":
        keys = ["1", "2", "-1", "9" * 19, "9" * 40, "x"]
    return [*(encode_cursor(kind, k) for k in [*keys, "0", "~"]),
            encode_cursor("nope", world.ids[0]), "bm90IGEgY3Vyc29y", "%%"]


def _values(world: World, topo: Topology) -> dict[str, list[str] | list[int]]:
    """The dictionaries: valid values first, then near misses and plainly bad ones."""
    regions = [r.code for r in topo.regions]
    return {
        **{f"{k}_ids": _ids(world, regions, k) for k in set(id_kinds.values())},
        **{f"{k}_cursors": _cursors(world, k) for k in set(cursor_kinds.values())},
        "currencies": ["EUR", "GBP", "USD", "JPY", "KWD", "SGD", "CNY", "XXX", "eur", "EURO", ""],
        "amounts": ["0.01", "1.00", "10.00", "100.00", "15000.00", "1000", "1.250", "0", "0.00",
                    "-1.00", "-0", "1.001", "1e3", "1E+999999999", "1e-999999999", "Infinity",
                    "NaN", " 1.00", "1_000.00", "\uff11\uff10.00", "\u0661\u0660.00",
                    "99999999999999999999999.99", "9223372036854775807", ""],
        "countries": ["DE", "FR", "GB", "US", "SG", "HK", "CN", "IR", "XX", "de", ""],
        "jurisdictions": [*catalog.codes(), "XX", "eu", ""],
        "regions": [*regions, "mars-north-1", ""],
        "ibans": [*world.ibans, "GB33BUKB20201555555555", "DE00000000000000000000", ""],
        "urls": ["https://example.com/hook", "http://example.com/hook", "https://127.0.0.1/x",
                 "ftp://example.com", "not a url", ""],
        "events": [*sorted(event_types), "*", "payout.nope", ""],
        "statuses": ["OPEN", "RELEASED", "REJECTED", "PENDING", "APPROVED", "open", ""],
        "names": ["Jane Roe", "Erika Muster", "A", " ", ""],
        "keys": ["k1", "k2", "k3"],
        "counts": [1, 2, 20, 100, 0, 101, -1],
        "seconds": [1, 30, 300, 3600, 0, -1],
    }


def _dictionary_of(path: tuple[str, ...], t: graphql.GraphQLNamedType) -> str | None:
    """The dictionary of a leaf argument or input field; ``path``: its field, then the names
    down to the leaf."""
    name = path[-1]
    if name == "after" and path[0] in cursor_kinds:
        return f"{cursor_kinds[path[0]]}_cursors"
    if t.name == "ID":
        kind = id_kinds.get(name) or id_kinds.get(f"{path[0]}.{name}")
        return f"{kind}_ids" if kind else None
    return by_name.get(name) if t.name in ("String", "Int") else None


def _bindings(owner: str, field: str, arg: str,
              t: graphql.GraphQLInputType) -> list[tuple[str, str]]:
    """(binding key, dictionary) for one argument of a field and everything inside it."""
    out: list[tuple[str, str]] = []

    def walk(t: graphql.GraphQLInputType, names: tuple[str, ...], key: str) -> None:
        while isinstance(t, graphql.GraphQLNonNull | graphql.GraphQLList):
            key += "[*]" if isinstance(t, graphql.GraphQLList) else ""
            t = t.of_type
        if isinstance(t, graphql.GraphQLInputObjectType):
            for name, f in t.fields.items():
                walk(f.type, (*names, name), f"{key}.{name}")
            return
        dictionary = _dictionary_of(names, graphql.get_named_type(t))
        if dictionary is not None:
            out.append((key, dictionary))

    walk(t, (field, arg), f"{owner}.{field}.{arg}")
    return out


def fuzz_schema(world: World, topo: Topology) -> GraphQLSchema:
    """``schema.graphql`` loaded by schemathesis, with the arguments of every field (root and
    nested) bound to the dictionaries."""
    bindings = {key: {"dictionary": dictionary, "probability": (
                      key_probability if dictionary == "keys" else dictionary_probability)}
                for owner in _sdl.type_map.values() if isinstance(owner, graphql.GraphQLObjectType)
                for field_name, field in owner.fields.items()
                for arg, a in field.args.items()
                for key, dictionary in _bindings(owner.name, field_name, arg, a.type)}
    config = SchemathesisConfig.from_dict({
        "base-url": graphql_url,
        "dictionaries": {n: {"values": v} for n, v in _values(world, topo).items()},
        "parameters": bindings,
    })
    return schemathesis.graphql.from_path(schema_path, config=config)


def _json_values() -> st.SearchStrategy[graphql.ValueNode]:
    """JSON literals: mostly objects of policy parameter names, for proposePolicyChange."""
    names = sorted({p.name for code in catalog.codes()
                    for p in catalog.jurisdiction(code).params})
    leaf = st.one_of(st.sampled_from(["12000.00", "1", "DE", "", "-5"]).map(nodes.String),
                     st.integers(-10, 10**6).map(nodes.Int), st.booleans().map(nodes.Boolean),
                     st.just(nodes.Null))
    countries = st.sampled_from(["DE", "FR", "US", "XX"]).map(nodes.String)
    value = st.one_of(leaf, st.lists(countries, max_size=3).map(lambda v: nodes.List(list(v))))
    field = st.tuples(st.sampled_from([*names, "nope"]), value).map(
        lambda kv: graphql.ObjectFieldNode(name=graphql.NameNode(value=kv[0]), value=kv[1]))
    return st.one_of(st.lists(field, max_size=3, unique_by=lambda f: f.name.value)
                     .map(nodes.Object), value)


schemathesis.graphql.scalar("JSON", _json_values())


def lifted(query: str) -> tuple[str, dict[str, Any]]:
    """The document with every argument's literal moved into a variable, as clients send
    them: variables take another way through GraphQL (coercion of JSON values, the scalars'
    ``parse_value``) than literals (``parse_literal``)."""
    document = graphql.parse(query)
    type_info = graphql.TypeInfo(_sdl)
    variables: dict[str, Any] = {}
    definitions: list[graphql.VariableDefinitionNode] = []

    class Lift(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            declared = type_info.get_input_type()
            if declared is None:  # an argument the field does not have: left as it is
                return None
            variable = graphql.VariableNode(name=graphql.NameNode(value=f"v{len(variables)}"))
            variables[variable.name.value] = graphql.value_from_ast_untyped(node.value)
            definitions.append(graphql.VariableDefinitionNode(
                variable=variable, type=graphql.parse_type(str(declared))))
            return graphql.ArgumentNode(name=node.name, value=variable)

    visited = graphql.visit(document, graphql.TypeInfoVisitor(type_info, Lift()))
    operations = tuple(replace(d, variable_definitions=tuple(definitions))
                       if isinstance(d, graphql.OperationDefinitionNode) else d
                       for d in visited.definitions)
    return graphql.print_ast(replace(visited, definitions=operations)), variables


# --- afterwards ------------------------------------------------------------------------------

tables_by_kind = {
    "acc": "accounts", "trf": "transfers", "jnl": "journals", "pay": "payouts",
    "pbt": "payout_batches", "ben": "beneficiaries", "fxq": "fx_quotes",
    "vac": "virtual_accounts", "inc": "incoming_payments", "whe": "webhook_endpoints",
    "rvc": "review_cases",
}
"""Where the object a stored response names lives, by its id's kind."""


async def assert_invariants(router: Router, topo: Topology, world: World) -> None:
    """In every region: the ledger is consistent (``assert_ledger_consistent``), every
    journal's entries sum to zero per currency and phase, no account that forbids it is
    overdrawn, and the tenants' idempotency keys are sane (``_assert_keys_sane``)."""
    for region in (r.code for r in topo.regions):
        await assert_ledger_consistent(router, region,
                                       world.tenant_id if region == world.region else "")
        unbalanced = await rows(router, region, """
            SELECT journal_id, currency, phase, net FROM (
                SELECT t.journal_id, e.currency, e.phase,
                       sum(CASE e.side WHEN 'CREDIT' THEN e.amount_minor
                                       ELSE -e.amount_minor END) AS net
                FROM entries e JOIN transfers t ON t.region = e.region AND t.id = e.transfer_id
                WHERE e.region = :r GROUP BY t.journal_id, e.currency, e.phase) AS sums
            WHERE net <> 0""", r=region)
        assert unbalanced == [], unbalanced
        overdrawn = await rows(router, region, """
            SELECT id, debits_posted, debits_pending, credits_posted FROM accounts
            WHERE region = :r AND debits_must_not_exceed_credits
              AND debits_posted + debits_pending > credits_posted""", r=region)
        assert overdrawn == [], overdrawn
        await _assert_keys_sane(router, region, world)


async def _assert_keys_sane(router: Router, region: str, world: World) -> None:
    """Each key is 1-255 characters, names a mutation, and holds the response it replays,
    whose object (by its id) exists: the key was kept with its effect, never without."""
    assert _sdl.mutation_type is not None
    mutations = set(_sdl.mutation_type.fields)
    keys = await rows(router, region, """
        SELECT key, operation, response FROM idempotency_keys
        WHERE region = :r AND tenant_id IN (:mine, :theirs)""",
                      r=region, mine=world.tenant_id, theirs=world.stranger_tenant_id)
    broken = [(k.key, k.operation) for k in keys
              if not (1 <= len(k.key) <= 255 and k.operation in mutations
                      and isinstance(k.response, dict) and k.response)]
    assert broken == [], broken
    named: dict[str, set[str]] = {}
    for object_id in (k.response.get("id") for k in keys):
        if isinstance(object_id, str):
            assert _kind(object_id) in tables_by_kind, f"where do {object_id!r}'s kind live?"
            named.setdefault(tables_by_kind[_kind(object_id)], set()).add(object_id)
    for table, wanted in named.items():
        found = {r.id for r in await rows(router, region, f"""
            SELECT id FROM {table} WHERE region = :r AND id = ANY(:ids)""",
                                          r=region, ids=sorted(wanted))}
        assert found == wanted, (table, wanted - found)
