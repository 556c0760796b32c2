"""Role checks on every field: each Query and Mutation field declares the roles it admits."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from payments.principal import Principal, Role


def principal(info: Info[Any, Any]) -> Principal:
    who = info.context.principal
    assert who is not None, "permission classes run before resolvers"
    return who  # type: ignore[no-any-return]


def allow(*roles: Role) -> type[BasePermission]:
    """A permission class admitting the given roles."""
    admitted = frozenset(roles)

    class Allowed(BasePermission):
        message = "Your API key's role may not use this field."
        error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 - read by Strawberry

        def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
            who = info.context.principal
            return who is not None and who.role in admitted

    Allowed.__name__ = "Allow_" + "_".join(sorted(r.value for r in roles))
    return Allowed


anyone = allow(*Role)
readers = allow(Role.PARTNER_ADMIN, Role.PARTNER_READONLY, Role.AUDITOR)
writers = allow(Role.PARTNER_ADMIN)
