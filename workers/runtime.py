"""Per-process state of the workers: configuration, and a router bound to the actors' loop.

dramatiq runs async actors on one event-loop thread; the router's engines are created on first
use inside that loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from regions.router import Router
from workers.config import WorkerConfig
from workers.fx.providers import RateProvider, provider_from_settings


@dataclass
class Runtime:
    config: WorkerConfig
    provider: RateProvider
    router: Router | None = None

    def db(self) -> Router:
        if self.router is None:
            self.router = Router(self.config.topology, self.config.urls, pool_size=4)
        return self.router


_runtime: Runtime | None = None


def configure(config: WorkerConfig) -> Runtime:
    global _runtime
    _runtime = Runtime(config, provider_from_settings(config.fx_provider, config.fx_url))
    return _runtime


def runtime() -> Runtime:
    assert _runtime is not None, "workers.runtime.configure() was not called"
    return _runtime
