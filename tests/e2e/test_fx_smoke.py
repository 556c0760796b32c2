from __future__ import annotations

from tests.e2e.conftest import MakePartner
from tests.fx_helpers import load_rates

QUOTE = """mutation($i: CreateFxQuoteInput!) { createFxQuote(input: $i) {
  __typename ... on FxQuote { id rate sell { amount currency } buy { amount currency } expiresAt }
  ... on Error { code message } ... on ValidationError { field } } }"""
EXECUTE = """mutation($i: ExecuteFxQuoteInput!) { executeFxQuote(input: $i) {
  __typename ... on Conversion { id sell { amount } buy { amount currency }
    sellTransfer { fromAccountId } buyTransfer { toAccountId } }
  ... on Error { code message } } }"""


async def test_quote_and_convert(router, make_partner: MakePartner) -> None:
    await load_rates(router)
    p = await make_partner("EU", funded={"EUR": 1_000_00}, extra={"USD": 1})
    eur, usd = p.accounts
    rates = await p.gql('{ fxRates(base: "EUR") { quote rate stale } }')
    assert {"quote": "USD", "rate": "1.053200000", "stale": False} in rates["data"]["fxRates"]
    q = (await p.gql(QUOTE, {"i": {"sellCurrency": "EUR", "buyCurrency": "USD",
                                   "sellAmount": "100.00", "idempotencyKey": "q1"}}))
    quote = q["data"]["createFxQuote"]
    assert quote["__typename"] == "FxQuote", q
    assert quote["buy"] == {"amount": "104.79", "currency": "USD"}  # 100 * 1.0532 * 0.995, floor
    done = await p.gql(EXECUTE, {"i": {"quoteId": quote["id"], "sellAccountId": eur,
                                       "buyAccountId": usd, "idempotencyKey": "x1"}})
    conv = done["data"]["executeFxQuote"]
    assert conv["__typename"] == "Conversion", done
    assert conv["buy"] == {"amount": "104.79", "currency": "USD"}
    again = await p.gql(EXECUTE, {"i": {"quoteId": quote["id"], "sellAccountId": eur,
                                        "buyAccountId": usd, "idempotencyKey": "x2"}})
    assert again["data"]["executeFxQuote"]["__typename"] == "QuoteAlreadyExecuted"
    bal = await p.gql('query($id: ID!) { account(id: $id) { ... on Account { balance { '
                      'available { amount } } } } }', {"id": usd})
    assert bal["data"]["account"]["balance"]["available"]["amount"] == "104.79"
