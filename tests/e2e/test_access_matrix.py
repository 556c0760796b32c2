"""Every role against every root field and mutation, over HTTP: a role the table in
``schema/access.py`` admits is never refused; any other gets ``FORBIDDEN`` on that field.
Each request carries made-up arguments of the right types (they may well be invalid: only the
refusal matters here)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
)

from payments.principal import Role
from schema import access
from schema.build import build_schema
from tests.e2e.conftest import MakePartner

scalars: dict[str, Any] = {"String": "x", "ID": "x", "Int": 1, "Boolean": False, "Float": 1.0,
                           "JSON": {}, "DateTime": "2030-01-01T00:00:00+00:00",
                           "Date": "2030-01-01"}
schema = build_schema(production=False)._schema


def _value(t: GraphQLInputType) -> Any:
    if isinstance(t, GraphQLNonNull):
        return _value(t.of_type)
    if isinstance(t, GraphQLList):
        return [_value(t.of_type)]
    if isinstance(t, GraphQLEnumType):
        return next(iter(t.values))
    if isinstance(t, GraphQLInputObjectType):
        return {name: _value(f.type) for name, f in t.fields.items()
                if isinstance(f.type, GraphQLNonNull)}
    assert isinstance(t, GraphQLScalarType), t
    return scalars[t.name]


def _request(kind: str, name: str, field: GraphQLField) -> dict[str, Any]:
    required = {a: arg for a, arg in field.args.items() if isinstance(arg.type, GraphQLNonNull)}
    declared = ", ".join(f"${a}: {arg.type}" for a, arg in required.items())
    passed = ", ".join(f"{a}: ${a}" for a in required)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    head = f"{kind}({declared})" if declared else kind
    call = f"{name}({passed})" if passed else name
    return {"query": f"{head} {{ {call}{selection} }}",
            "variables": {a: _value(arg.type) for a, arg in required.items()}}


fields = ([("query", n, f) for n, f in schema.query_type.fields.items()]
          + [("mutation", n, f) for n, f in schema.mutation_type.fields.items()])


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_against_every_field(make_partner: MakePartner, role: Role) -> None:
    p = await make_partner("EU", role=role)
    wrong = []
    for kind, name, field in fields:
        body = _request(kind, name, field)
        resp = await p.client.post("/graphql", json=body,
                                   headers={"Authorization": f"Bearer {p.key}"})
        assert resp.status_code == 200, (name, resp.status_code, resp.text)
        errors = resp.json().get("errors") or []
        forbidden = any(e.get("extensions", {}).get("code") == "FORBIDDEN"
                        and e.get("path") == [name] for e in errors)
        if forbidden == (role in access.matrix[name]):
            wrong.append((name, json.dumps(errors)[:200]))
    assert not wrong, wrong
