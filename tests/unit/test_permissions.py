"""Every root field declares the roles it admits: partner mutations admit only partner_admin,
money queries partner roles and auditors, the operators' fields only sre, and the compliance
fields compliance officers (auditors also read the policies and their changes)."""

from __future__ import annotations

from typing import Any

from payments.principal import Role
from schema.build import Mutation, Query


def _fields(root: Any) -> list[Any]:
    return list(root.__strawberry_definition__.fields)


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


def test_every_root_field_has_a_permission_class() -> None:
    for field in _fields(Query) + _fields(Mutation):
        assert field.permission_classes, field.python_name


operator_fields = {"reconciliation_items", "assign_incoming_payment",
                   "return_incoming_payment"}
compliance_fields = {"review_cases", "propose_policy_change", "approve_policy_change",
                     "reject_policy_change", "evaluate_policy", "resolve_review_case"}
policy_reading_fields = {"policy", "policy_change_requests"}
auditor_fields = {"audit_events"}
admin_fields = {"api_keys"}


def _expected_special(name: str) -> set[Role] | None:
    if name in operator_fields:
        return {Role.SRE}
    if name in compliance_fields:
        return {Role.COMPLIANCE_OFFICER}
    if name in policy_reading_fields:
        return {Role.COMPLIANCE_OFFICER, Role.AUDITOR}
    if name in auditor_fields:
        return {Role.AUDITOR}
    if name in admin_fields:
        return {Role.PARTNER_ADMIN}
    return None


def test_mutations_are_for_partner_admins_only() -> None:
    for field in _fields(Mutation):
        expected = _expected_special(field.python_name) or {Role.PARTNER_ADMIN}
        assert _admitted(field) == expected, field.python_name


def test_money_queries_exclude_compliance_and_sre() -> None:
    readers = {Role.PARTNER_ADMIN, Role.PARTNER_READONLY, Role.AUDITOR}
    for field in _fields(Query):
        expected = (set(Role) if field.python_name in {"viewer", "regions"}
                    else _expected_special(field.python_name) or readers)
        assert _admitted(field) == expected, field.python_name
