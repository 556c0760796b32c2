"""The regions file: loaded once at start-up, validated, then immutable.

A bad file fails with ``RegionsFileError`` naming the region (or cluster) and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

clouds = frozenset({"aws", "azure", "gcp", "alibaba"})
statuses = frozenset({"active", "draining", "planned"})
jurisdictions_known = frozenset({"EU", "UK", "US", "SG", "HK", "CN"})
regions_max = 64
default_path = Path(__file__).resolve().parent.parent / "regions.yaml"

_code = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+")
_env_name = re.compile(r"[A-Z][A-Z0-9_]*")
_identifier = re.compile(r"[a-z][a-z0-9-]{0,30}")
_database_region = re.compile(r"[a-z][a-z0-9-]{1,40}")


class RegionsFileError(ValueError):
    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"regions file: {where}: field {field!r}: {problem}")
        self.where = where
        self.field = field


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    database_url_env: str
    primary_region: str


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    jurisdictions: tuple[str, ...]
    cloud: str
    location: str
    cluster: str
    sovereign: bool
    amqp_vhost: str
    status: str
    database_region: str


@dataclass(frozen=True, slots=True)
class Topology:
    control_cluster: str
    control_database_url_env: str
    clusters: tuple[Cluster, ...]
    regions: tuple[Region, ...]

    def region(self, code: str) -> Region:
        for r in self.regions:
            if r.code == code:
                return r
        raise KeyError(code)

    def has_region(self, code: str) -> bool:
        return any(r.code == code for r in self.regions)

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)

    def regions_of(self, cluster: str) -> list[Region]:
        return [r for r in self.regions if r.cluster == cluster]

    def database_regions(self, cluster: str) -> dict[str, str]:
        """Region code -> the name the cluster's database knows the region by."""
        return {r.code: r.database_region for r in self.regions_of(cluster)}

    def regions_for(self, jurisdiction: str) -> list[Region]:
        return [r for r in self.regions if jurisdiction in r.jurisdictions]


def load(path: Path = default_path) -> Topology:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RegionsFileError(str(path), "-", f"not valid YAML: {exc}") from exc
    return parse(raw)


def parse(raw: Any) -> Topology:
    if not isinstance(raw, dict):
        raise RegionsFileError("file", "-", "must be a mapping")
    version = raw.get("version")
    if type(version) is not int or version != 1:
        raise RegionsFileError("file", "version", "must be 1")
    clusters = tuple(_cluster(c, i) for i, c in enumerate(_list(raw, "clusters", "file")))
    regions = tuple(_region(r, i) for i, r in enumerate(_list(raw, "regions", "file")))
    control = raw.get("control")
    if not isinstance(control, dict):
        raise RegionsFileError("control", "control", "must be a mapping")
    topo = Topology(
        control_cluster=_str(control, "cluster", "control", _identifier),
        control_database_url_env=_str(control, "database_url_env", "control", _env_name),
        clusters=clusters,
        regions=regions,
    )
    _check_references(topo)
    return topo


def _list(raw: dict[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise RegionsFileError(where, key, "must be a non-empty list")
    if len(value) > regions_max:
        raise RegionsFileError(where, key, f"at most {regions_max} entries")
    return value


def _str(raw: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise RegionsFileError(where, key, "must be a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise RegionsFileError(where, key, f"{value!r} does not match {pattern.pattern}")
    return value


def _cluster(raw: Any, index: int) -> Cluster:
    if not isinstance(raw, dict):
        raise RegionsFileError(f"cluster #{index + 1}", "-", "must be a mapping")
    name = _str(raw, "name", f"cluster #{index + 1}", _identifier)
    return Cluster(
        name=name,
        database_url_env=_str(raw, "database_url_env", f"cluster {name}", _env_name),
        primary_region=_str(raw, "primary_region", f"cluster {name}", _code),
    )


def _region(raw: Any, index: int) -> Region:
    if not isinstance(raw, dict):
        raise RegionsFileError(f"region #{index + 1}", "-", "must be a mapping")
    code = _str(raw, "code", f"region #{index + 1}", _code)
    where = f"region {code}"
    jurisdictions = raw.get("jurisdictions")
    if not isinstance(jurisdictions, list) or not jurisdictions:
        raise RegionsFileError(where, "jurisdictions", "must be a non-empty list")
    for j in jurisdictions:
        if j not in jurisdictions_known:
            raise RegionsFileError(where, "jurisdictions",
                                   f"{j!r} is not one of {sorted(jurisdictions_known)}")
    cloud = _str(raw, "cloud", where)
    if cloud not in clouds:
        raise RegionsFileError(where, "cloud", f"{cloud!r} is not one of {sorted(clouds)}")
    status = _str(raw, "status", where)
    if status not in statuses:
        raise RegionsFileError(where, "status", f"{status!r} is not one of {sorted(statuses)}")
    sovereign = raw.get("sovereign")
    if not isinstance(sovereign, bool):
        raise RegionsFileError(where, "sovereign", "must be true or false")
    return Region(
        code=code,
        jurisdictions=tuple(jurisdictions),
        cloud=cloud,
        location=_str(raw, "location", where),
        cluster=_str(raw, "cluster", where, _identifier),
        sovereign=sovereign,
        amqp_vhost=_str(raw, "amqp_vhost", where),
        status=status,
        database_region=(code if raw.get("database_region") is None
                         else _str(raw, "database_region", where, _database_region)),
    )


def _check_references(topo: Topology) -> None:
    _unique([c.name for c in topo.clusters], "cluster", "name")
    _unique([r.code for r in topo.regions], "region", "code")
    _unique([c.database_url_env for c in topo.clusters], "cluster", "database_url_env")
    cluster_names = {c.name for c in topo.clusters}
    if topo.control_cluster not in cluster_names:
        raise RegionsFileError("control", "cluster", f"unknown cluster {topo.control_cluster!r}")
    for r in topo.regions:
        if r.cluster not in cluster_names:
            raise RegionsFileError(f"region {r.code}", "cluster", f"unknown cluster {r.cluster!r}")
        if r.sovereign and len(topo.regions_of(r.cluster)) > 1:
            raise RegionsFileError(f"region {r.code}", "sovereign",
                                   f"a sovereign region needs a cluster of its own, "
                                   f"{r.cluster!r} is shared")
        if r.sovereign and r.cluster == topo.control_cluster:
            raise RegionsFileError(f"region {r.code}", "cluster",
                                   "a sovereign region cannot share the control-plane cluster")
    for c in topo.clusters:
        members = [r.code for r in topo.regions_of(c.name)]
        if not members:
            raise RegionsFileError(f"cluster {c.name}", "name", "no region uses this cluster")
        _unique([r.database_region for r in topo.regions_of(c.name)],
                 f"cluster {c.name}: database region", "database_region")
        if c.primary_region not in members:
            raise RegionsFileError(f"cluster {c.name}", "primary_region",
                                   f"{c.primary_region!r} is not one of its regions {members}")


def _unique(values: list[str], where: str, field: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise RegionsFileError(f"{where} {v}", field, "appears twice")
        seen.add(v)
