"""Per-process state of the workers: configuration, and a router bound to the actors' loop.

dramatiq runs async actors on one event-loop thread; the router's engines are created on first
use inside that loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from regions.keyring import provider_from_settings
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.sealing import Sealer
from workers.config import WorkerConfig
from workers.fx.providers import RateProvider
from workers.fx.providers import provider_from_settings as fx_provider
from workers.rails import Rails, sandbox_rails


@dataclass
class Runtime:
    config: WorkerConfig
    provider: RateProvider
    rails: Rails
    router: Router | None = None
    _sealer: Sealer | None = None
    _gate: PolicyGate | None = None

    def db(self) -> Router:
        if self.router is None:
            self.router = Router(self.config.topology, self.config.urls, pool_size=4)
        return self.router

    def sealer(self) -> Sealer:
        """Opened on first use, so a worker that never touches personal data needs no keys."""
        if self._sealer is None:
            keys = provider_from_settings(self.config.key_provider, self.config.keyring_path,
                                          [r.code for r in self.config.topology.regions],
                                          self.config.key_providers)
            self._sealer = Sealer(keys)
        return self._sealer


    async def policies(self) -> PolicyGate:
        """The policy gate, refreshed (at most once a second) before each use."""
        if self._gate is None:
            self._gate = PolicyGate()
        await self._gate.refresh(self.db())
        return self._gate


_runtime: Runtime | None = None


def configure(config: WorkerConfig) -> Runtime:
    global _runtime
    _runtime = Runtime(config, fx_provider(config.fx_provider, config.fx_url),
                       sandbox_rails(config.sandbox_return_after_s))
    return _runtime


def runtime() -> Runtime:
    assert _runtime is not None, "workers.runtime.configure() was not called"
    return _runtime
