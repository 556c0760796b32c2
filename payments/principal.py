"""Who is calling: a tenant, a role and the tenant's home region, resolved once at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    PARTNER_ADMIN = "partner_admin"
    PARTNER_READONLY = "partner_readonly"
    COMPLIANCE_OFFICER = "compliance_officer"
    SRE = "sre"
    AUDITOR = "auditor"


class Environment(StrEnum):
    TEST = "test"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    jurisdiction: str
    home_region: str
    environment: Environment
    fx_spread_bps: int | None = None
    """The tenant's own FX spread; None uses its jurisdiction's default."""


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: Tenant
    role: Role
    key_id: str
    jurisdictions: frozenset[str] = frozenset()
    """A compliance officer's scope: the jurisdictions whose policies and cases it may act on."""
    key_expires_at: datetime | None = None

    @property
    def region(self) -> str:
        return self.tenant.home_region

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"apikey:{self.key_id}"
