from __future__ import annotations

from tests.e2e.conftest import MakePartner

TRANSFER = """
mutation($input: CreateTransferInput!) {
  createTransfer(input: $input) {
    __typename
    ... on Transfer { id amount { amount currency } status }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}"""


async def test_transfer_over_http(make_partner: MakePartner) -> None:
    p = await make_partner("EU", funded={"EUR": 100_00}, extra={"EUR": 1})
    out = await p.gql(TRANSFER, {"input": {
        "fromAccountId": p.accounts[0], "toAccountId": p.accounts[1], "amount": "10.50",
        "currency": "EUR", "idempotencyKey": "smoke-1"}})
    assert out["data"]["createTransfer"]["__typename"] == "Transfer", out
    assert out["data"]["createTransfer"]["amount"] == {"amount": "10.50", "currency": "EUR"}
