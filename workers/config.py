"""What a worker or scheduler process needs, built by the entry point (``corridor worker``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from regions.router import DatabaseUrls
from regions.topology import Topology

amqp_url_default = "amqp://guest:guest@127.0.0.1:5672/%2F"
fx_refresh_s_default = 60
settlement_window_s_default = 3_600
"""Cross-region obligations are netted per hour unless configured otherwise."""
sandbox_return_after_s_default = 172_800
"""Sandbox rails return a '.93' payout two days after completing it, as banks do."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    topology: Topology
    urls: DatabaseUrls
    amqp_url: str | None
    """None selects dramatiq's in-process StubBroker (``corridor dev``)."""
    fx_provider: str = "fixed"
    fx_url: str | None = None
    fx_refresh_s: int = fx_refresh_s_default
    key_provider: str = "local"
    keyring_path: Path | None = None
    key_providers: dict[str, str] = field(default_factory=dict)
    environment: str = "development"
    """``CORRIDOR_ENV``: chooses the telemetry exporters and the log format."""
    sandbox_return_after_s: int = sandbox_return_after_s_default
    settlement_window_s: int = settlement_window_s_default
    region_amqp_urls: dict[str, str] = field(default_factory=dict)
    """Each region's settlement broker (its vhost); empty in process (``corridor dev``)."""
    webhooks_allow_private: bool = False
    """Deliver webhooks to loopback and private addresses: development and tests only."""
