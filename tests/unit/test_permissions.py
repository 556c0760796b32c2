"""Every root field and mutation admits exactly the roles ``schema.access.matrix`` gives it,
every field is in the table and the table names no field the schema lacks; docs/access.md is
generated from the same table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strawberry.utils.str_converters import to_camel_case

from payments.principal import Role
from schema import access
from schema.build import Mutation, Query

docs = Path(__file__).resolve().parents[2] / "docs" / "access.md"


def _fields(root: Any) -> list[Any]:
    return list(root.__strawberry_definition__.fields)


def _name(field: Any) -> str:
    return field.graphql_name or to_camel_case(field.python_name)


def _admitted(field: Any) -> set[Role]:
    class Info:
        class context:
            principal = None

    admitted = set()
    for role in Role:
        Info.context.principal = type("P", (), {"role": role})()
        if all(p().has_permission(None, Info) for p in field.permission_classes):
            admitted.add(role)
    return admitted


def test_every_root_field_admits_exactly_the_roles_of_the_table() -> None:
    for field in _fields(Query) + _fields(Mutation):
        assert field.permission_classes, _name(field)
        assert _admitted(field) == access.matrix[_name(field)], _name(field)


def test_the_table_names_exactly_the_schemas_root_fields() -> None:
    assert {_name(f) for f in _fields(Query) + _fields(Mutation)} == set(access.matrix)


def test_partner_mutations_are_for_partner_admins_and_money_reads_exclude_operators() -> None:
    """The shape DESIGN.md §6 asks for, as a second look at the table."""
    for field in _fields(Mutation):
        admitted = access.matrix[_name(field)]
        assert Role.PARTNER_READONLY not in admitted, _name(field)
        assert Role.AUDITOR not in admitted, _name(field)
    for name in ("account", "accounts", "transfers", "payouts", "incomingPayments"):
        assert Role.SRE not in access.matrix[name]
        assert Role.COMPLIANCE_OFFICER not in access.matrix[name]


def test_access_docs_are_generated_from_the_table() -> None:
    assert docs.read_text(encoding="utf-8") == access.markdown(), (
        "docs/access.md is stale: run `corridor schema access-docs`")
