"""Request scripts for the HTTP scenarios (GraphQL documents with unique idempotency keys)."""

from __future__ import annotations

import json
from typing import Any

TRANSFER = ("mutation($i: CreateTransferInput!) { createTransfer(input: $i) "
            "{ __typename ... on Transfer { id } ... on Error { code } } }")
BATCH = ("mutation($i: CreateTransferBatchInput!) { createTransferBatch(input: $i) "
         "{ __typename ... on TransferBatch { id succeeded } ... on Error { code } } }")
BALANCE = ("query($id: ID!) { account(id: $id) { ... on Account { balance { posted { amount } "
           "available { amount } } } } }")
QUOTE = ("mutation($i: CreateFxQuoteInput!) { createFxQuote(input: $i) "
         "{ __typename ... on FxQuote { id } ... on Error { code } } }")
EXECUTE = ("mutation($i: ExecuteFxQuoteInput!) { executeFxQuote(input: $i) "
           "{ __typename ... on Conversion { id } ... on Error { code } } }")


def body(query: str, variables: dict[str, Any]) -> str:
    """A JSON request body; the literal ``{n}`` inside stays a placeholder for the generator."""
    return json.dumps({"query": query, "variables": variables})


def step(query: str, variables: dict[str, Any], ok: str,
         extract: dict[str, str] | None = None) -> dict[str, Any]:
    return {"body": body(query, variables), "ok": ok, "extract": extract or {}}
