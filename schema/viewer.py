"""Who am I (``viewer``) and where Corridor runs (``regions``)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from schema.access import only
from schema.permissions import principal


@strawberry.type
class Tenant:
    id: strawberry.ID
    name: str
    jurisdiction: str
    home_region: str


@strawberry.type
class Viewer:
    tenant: Tenant
    role: str


@strawberry.type
class Region:
    code: str
    jurisdictions: list[str]
    cloud: str
    location: str
    status: str


def resolve_viewer(info: Info[Any, Any]) -> Viewer:
    who = principal(info)
    t = who.tenant
    return Viewer(tenant=Tenant(id=strawberry.ID(t.id), name=t.name, jurisdiction=t.jurisdiction,
                                home_region=t.home_region), role=who.role.value)


def resolve_regions(info: Info[Any, Any]) -> list[Region]:
    return [Region(code=r.code, jurisdictions=list(r.jurisdictions), cloud=r.cloud,
                   location=r.location, status=r.status)
            for r in info.context.router.topology.regions]


viewer_field = strawberry.field(resolver=resolve_viewer, permission_classes=[only("viewer")])
regions_field = strawberry.field(resolver=resolve_regions, permission_classes=[only("regions")])
