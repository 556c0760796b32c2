"""Settings from the environment, with ``.corridor/dev.json`` as the fallback for a dev machine.

| variable | meaning |
| --- | --- |
| ``CORRIDOR_ENV`` | ``development`` (default), ``test`` or ``production`` |
| ``CORRIDOR_REGIONS_FILE`` | the regions file (default: ``regions.yaml`` at the root) |
| ``CORRIDOR_API_KEY_PEPPER`` | secret for API key hashes, at least 32 characters |
| control / cluster URL variables | named in the regions file (``database_url_env``) |
| ``AMQP_URL`` | RabbitMQ for workers (default ``amqp://guest:guest@127.0.0.1:5672/%2F``) |
| ``CORRIDOR_AMQP_URL_<REGION>`` | one region's broker for settlement messages (default: |
| | ``AMQP_URL`` with its vhost replaced by the region's ``amqp_vhost``) |
| ``CORRIDOR_SETTLEMENT_WINDOW_S`` | netting window of cross-region obligations (default 3600) |
| ``CORRIDOR_COALESCE_TRANSFERS`` | ``on`` (default): concurrent ``createTransfer`` requests of a |
| | region commit together (``regions/coalescer.py``); ``off``: one transaction each |
| ``CORRIDOR_COALESCE_GROUP_MAX`` | most requests in one group (default 256) |
| ``CORRIDOR_COALESCE_WINDOW_MS`` | wait this long for company, only while a group runs (0) |
| ``CORRIDOR_DB_POOL_SIZE`` | the API's connections kept per pool (default 10; a process has |
| | ``2 * (1 + clusters)`` pools: see ``regions/router.py``) |
| ``CORRIDOR_DB_POOL_OVERFLOW`` | connections a pool may open beyond that under load (default 10) |
| ``CORRIDOR_FX_PROVIDER`` | ``fixed`` (default), ``ecb`` or ``json`` |
| ``CORRIDOR_FX_URL`` | the provider's URL (``ecb``: a URL or file; default the shipped sample) |
| ``CORRIDOR_FX_REFRESH_S`` | seconds between scheduled FX refreshes (default 60) |
| ``CORRIDOR_KEY_PROVIDER`` | key-encryption keys of every region: ``local`` (a keyring file; dev |
| | and tests, the default), ``aws-kms:<key ARN>``, ``vault-transit:<mount>/<key>``, |
| | ``azure-keyvault:https://<vault>/keys/<name>``, ``alicloud-kms:<region id>/<key id>`` |
| ``CORRIDOR_KEY_PROVIDER_<REGION>`` | one region's, e.g. ``CORRIDOR_KEY_PROVIDER_EU_CENTRAL`` |
| ``CORRIDOR_KEYRING_FILE`` | the local keyring (``corridor dev``: ``.corridor/keyring.json``) |
| ``CORRIDOR_SANDBOX_RETURN_AFTER_S`` | when sandbox rails return a ".93" payout (default 2 days) |
| ``CORRIDOR_RATE_LIMIT_PER_S`` | requests a second per API key, sustained (default 50) |
| ``CORRIDOR_RATE_LIMIT_BURST`` | requests per API key at once (default 100) |
| ``CORRIDOR_UNAUTHENTICATED_RATE_LIMIT_PER_S`` | the same per address, without a valid key (1) |
| ``CORRIDOR_UNAUTHENTICATED_RATE_LIMIT_BURST`` | (default 30); see ``api/limits.py`` |
| ``CORRIDOR_REQUEST_TIME_LIMIT_S`` | a GraphQL operation running longer is stopped (default 10) |
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from api import limits
from regions.coalescer import group_max_default, group_max_limit, window_s_default
from regions.databases import sqlalchemy_url
from regions.router import DatabaseUrls, pool_overflow_max, pool_size_default
from regions.topology import Topology, default_path, load
from workers.config import (
    WorkerConfig,
    amqp_url_default,
    fx_refresh_s_default,
    sandbox_return_after_s_default,
    settlement_window_s_default,
)
from workers.xr_transport import region_amqp_url

pepper_length_min = 32
fx_refresh_s_min = 1
fx_refresh_s_max = 86_400
dev_dir_default = Path(".corridor")
request_body_bytes_max = 4 * 1024 * 1024
sandbox_return_after_s_max = 30 * 86_400
coalesce_group_max_max = group_max_limit
coalesce_window_ms_max = 50
settlement_window_s_min = 60
settlement_window_s_max = 7 * 86_400
rate_limit_per_s_max = 100_000.0
rate_limit_burst_max = 1_000_000
request_time_limit_s_max = 300.0
db_pool_size_max = 200


class Env(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Settings:
    env: Env
    topology: Topology
    urls: DatabaseUrls
    pepper: bytes
    amqp_url: str = amqp_url_default
    fx_provider: str = "fixed"
    fx_url: str | None = None
    fx_refresh_s: int = fx_refresh_s_default
    key_provider: str = "local"
    keyring_path: Path | None = None
    key_providers: dict[str, str] = field(default_factory=dict)
    """Per-region key providers, over ``key_provider``."""
    sandbox_return_after_s: int = sandbox_return_after_s_default
    settlement_window_s: int = settlement_window_s_default
    region_amqp_urls: dict[str, str] = field(default_factory=dict)
    rate_limit_per_s: float = limits.rate_limit_per_s
    rate_limit_burst: int = limits.rate_limit_burst
    unauthenticated_rate_limit_per_s: float = limits.unauthenticated_rate_limit_per_s
    unauthenticated_rate_limit_burst: int = limits.unauthenticated_rate_limit_burst
    request_time_limit_s: float = limits.request_time_limit_s
    coalesce_transfers: bool = True
    coalesce_group_max: int = group_max_default
    coalesce_window_s: float = window_s_default
    db_pool_size: int = pool_size_default
    db_pool_overflow: int = pool_overflow_max

    @property
    def production(self) -> bool:
        return self.env is Env.PRODUCTION


def dev_file(dev_dir: Path = dev_dir_default) -> Path:
    return dev_dir / "dev.json"


def from_env(environ: dict[str, str] | None = None, dev_dir: Path = dev_dir_default) -> Settings:
    e = dict(os.environ if environ is None else environ)
    try:
        env = Env(e.get("CORRIDOR_ENV", Env.DEVELOPMENT.value))
    except ValueError:
        raise SettingsError(f"CORRIDOR_ENV must be one of {[v.value for v in Env]}") from None
    topo = load(Path(e.get("CORRIDOR_REGIONS_FILE", str(default_path))))
    dev = _dev_settings(dev_dir) if env is not Env.PRODUCTION else {}
    urls = _urls(topo, e, dev)
    pepper = e.get("CORRIDOR_API_KEY_PEPPER") or dev.get("api_key_pepper", "")
    if len(pepper) < pepper_length_min:
        raise SettingsError(
            f"CORRIDOR_API_KEY_PEPPER must be set to at least {pepper_length_min} characters")
    refresh_s = _whole(e, "CORRIDOR_FX_REFRESH_S", fx_refresh_s_default, fx_refresh_s_min,
                       fx_refresh_s_max)
    keyring = e.get("CORRIDOR_KEYRING_FILE") or dev.get("keyring_file")
    return Settings(env=env, topology=topo, urls=urls, pepper=pepper.encode(),
                    amqp_url=e.get("AMQP_URL", amqp_url_default),
                    fx_provider=e.get("CORRIDOR_FX_PROVIDER", "fixed"),
                    fx_url=e.get("CORRIDOR_FX_URL") or None, fx_refresh_s=refresh_s,
                    key_provider=e.get("CORRIDOR_KEY_PROVIDER", "local"),
                    keyring_path=Path(keyring) if keyring else None,
                    key_providers=_key_providers(topo, e),
                    sandbox_return_after_s=_whole(
                        e, "CORRIDOR_SANDBOX_RETURN_AFTER_S", sandbox_return_after_s_default,
                        0, sandbox_return_after_s_max),
                    settlement_window_s=_whole(
                        e, "CORRIDOR_SETTLEMENT_WINDOW_S", settlement_window_s_default,
                        settlement_window_s_min, settlement_window_s_max),
                    region_amqp_urls=_region_amqp_urls(
                        topo, e, e.get("AMQP_URL", amqp_url_default)),
                    db_pool_size=_whole(e, "CORRIDOR_DB_POOL_SIZE", pool_size_default, 1,
                                        db_pool_size_max, unit="connections"),
                    db_pool_overflow=_whole(e, "CORRIDOR_DB_POOL_OVERFLOW", pool_overflow_max, 0,
                                            db_pool_size_max, unit="connections"),
                    **_coalescing(e),
                    **_limits(e))


def _coalescing(e: dict[str, str]) -> dict[str, Any]:
    switch = e.get("CORRIDOR_COALESCE_TRANSFERS", "on")
    if switch not in ("on", "off"):
        raise SettingsError("CORRIDOR_COALESCE_TRANSFERS must be on or off")
    return {"coalesce_transfers": switch == "on",
            "coalesce_group_max": _whole(e, "CORRIDOR_COALESCE_GROUP_MAX", group_max_default,
                                         1, coalesce_group_max_max, unit="requests"),
            "coalesce_window_s": _whole(e, "CORRIDOR_COALESCE_WINDOW_MS", 0, 0,
                                        coalesce_window_ms_max, unit="milliseconds") / 1000}


def amqp_url_variable(region: str) -> str:
    return "CORRIDOR_AMQP_URL_" + region.upper().replace("-", "_")


def _region_amqp_urls(topo: Topology, e: dict[str, str], base: str) -> dict[str, str]:
    """Each region's settlement broker: its own variable, else ``AMQP_URL`` on its vhost."""
    return {r.code: e.get(amqp_url_variable(r.code)) or region_amqp_url(base, r.amqp_vhost)
            for r in topo.regions}


def key_provider_variable(region: str) -> str:
    return "CORRIDOR_KEY_PROVIDER_" + region.upper().replace("-", "_")


def _key_providers(topo: Topology, e: dict[str, str]) -> dict[str, str]:
    return {r.code: e[key_provider_variable(r.code)] for r in topo.regions
            if e.get(key_provider_variable(r.code))}


def _limits(e: dict[str, str]) -> dict[str, Any]:
    """The rate limits and the request time limit (``api/limits.py``)."""
    return {
        "rate_limit_per_s": _positive(e, "CORRIDOR_RATE_LIMIT_PER_S", limits.rate_limit_per_s,
                                      rate_limit_per_s_max),
        "rate_limit_burst": _whole(e, "CORRIDOR_RATE_LIMIT_BURST", limits.rate_limit_burst,
                                   1, rate_limit_burst_max, unit="requests"),
        "unauthenticated_rate_limit_per_s": _positive(
            e, "CORRIDOR_UNAUTHENTICATED_RATE_LIMIT_PER_S",
            limits.unauthenticated_rate_limit_per_s, rate_limit_per_s_max),
        "unauthenticated_rate_limit_burst": _whole(
            e, "CORRIDOR_UNAUTHENTICATED_RATE_LIMIT_BURST",
            limits.unauthenticated_rate_limit_burst, 1, rate_limit_burst_max, unit="requests"),
        "request_time_limit_s": _positive(e, "CORRIDOR_REQUEST_TIME_LIMIT_S",
                                          limits.request_time_limit_s, request_time_limit_s_max),
    }


def _whole(e: dict[str, str], name: str, default: int, low: int, high: int, *,
           unit: str = "seconds") -> int:
    try:
        value = int(e.get(name, default))
    except ValueError:
        raise SettingsError(f"{name} must be a whole number of {unit}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be {low} to {high}")
    return value


def _positive(e: dict[str, str], name: str, default: float, high: float) -> float:
    try:
        value = float(e.get(name, default))
    except ValueError:
        raise SettingsError(f"{name} must be a number") from None
    if not 0 < value <= high:  # also refuses nan
        raise SettingsError(f"{name} must be more than 0 and at most {high:g}")
    return value


def worker_config(settings: Settings, *, in_process: bool = False) -> WorkerConfig:
    """The workers' configuration; ``in_process`` uses the stub broker (no RabbitMQ)."""
    return WorkerConfig(
        topology=settings.topology, urls=settings.urls,
        amqp_url=None if in_process else settings.amqp_url,
        fx_provider=settings.fx_provider, fx_url=settings.fx_url,
        fx_refresh_s=settings.fx_refresh_s, key_provider=settings.key_provider,
        keyring_path=settings.keyring_path, key_providers=settings.key_providers,
        sandbox_return_after_s=settings.sandbox_return_after_s,
        settlement_window_s=settings.settlement_window_s,
        region_amqp_urls={} if in_process else settings.region_amqp_urls,
        webhooks_allow_private=settings.env is not Env.PRODUCTION,
        environment=settings.env.value)


def _dev_settings(dev_dir: Path) -> dict[str, Any]:
    path = dev_file(dev_dir)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    settings = data.get("settings", {})
    return settings if isinstance(settings, dict) else {}


def _urls(topo: Topology, e: dict[str, str], dev: dict[str, Any]) -> DatabaseUrls:
    dev_urls = dev.get("database_urls", {})
    control = e.get(topo.control_database_url_env) or dev_urls.get("control")
    clusters = {}
    for c in topo.clusters:
        url = e.get(c.database_url_env) or dev_urls.get(f"cluster:{c.name}")
        if not url:
            raise SettingsError(f"set {c.database_url_env} (database of cluster {c.name!r}), "
                                "or run `corridor dev` first")
        clusters[c.name] = sqlalchemy_url(url)
    if not control:
        raise SettingsError(f"set {topo.control_database_url_env} (control-plane database), "
                            "or run `corridor dev` first")
    return DatabaseUrls(control=sqlalchemy_url(control), clusters=clusters)
