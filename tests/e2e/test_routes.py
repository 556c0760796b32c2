"""Only the routes Corridor means to serve exist (no generated OpenAPI pages)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import MakePartner


@pytest.mark.parametrize("path", ["/schema", "/schema/openapi.json", "/schema/swagger"])
async def test_no_openapi_pages(client: AsyncTestClient[Any], path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_parse_and_validation_errors_carry_a_code(make_partner: MakePartner) -> None:
    p = await make_partner("EU")
    parse = await p.gql("{ viewer { ")
    assert parse["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    invalid = await p.gql("{ viewer { nope } }")
    assert invalid["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
