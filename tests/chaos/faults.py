"""The fault injector: a seeded schedule that cycles through every kind of fault, each cycle in
an order of its own, with a pause between faults.

- ``kill_api``: SIGKILL one API process, then start it again. Clients fail over to the other
  and retry; a request may be cut in the middle of its transaction.
- ``kill_worker``: SIGKILL the dramatiq worker, the relay, the scheduler or a region's
  settlement process, then start it again: redelivery, leases taken over, payouts resumed.
- ``restart_broker``: ``rabbitmqctl stop_app``, a pause, ``start_app``: publishers and
  consumers reconnect, unconfirmed messages are sent again.
- ``terminate_backends``: ``pg_terminate_backend`` of the cluster's connections on both
  servers: pooled connections found dead in the middle of requests and jobs.
- ``stop_database``: ap-southeast's PostgreSQL server stopped, a pause, started again: one
  region down while the other keeps working.
"""

from __future__ import annotations

import asyncio
import random
import time

from tests import rabbit
from tests.chaos.client import Api
from tests.chaos.cluster import Cluster, api_count, workers
from tests.chaos.history import Fault, History

kinds = ("kill_api", "kill_worker", "restart_broker", "terminate_backends", "stop_database")
pause_s_min = 1.0
pause_s_max = 4.0
down_s_min = 0.5
down_s_max = 3.0


class Injector:
    def __init__(self, cluster: Cluster, api: Api, history: History, seed: int) -> None:
        self.cluster, self.api, self.history = cluster, api, history
        self.rng = random.Random(f"{seed}/faults")
        self.cycled = asyncio.Event()
        """Set once every kind of fault was injected."""

    async def run(self, stop: asyncio.Event) -> None:
        """Faults until ``stop``; the fault under way is finished (every process back up)."""
        while not stop.is_set():
            order = list(kinds)
            self.rng.shuffle(order)
            for kind in order:
                if stop.is_set():
                    return
                await self._sleep(self.rng.uniform(pause_s_min, pause_s_max), stop)
                await self.inject(kind)
            self.cycled.set()

    @staticmethod
    async def _sleep(seconds: float, stop: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def inject(self, kind: str) -> Fault:
        started_s = self.api.now_s()
        down_s = self.rng.uniform(down_s_min, down_s_max)
        target, detail = await getattr(self, f"_{kind}")(down_s)
        fault = Fault(kind, target, round(started_s, 3), round(self.api.now_s(), 3), detail)
        self.history.faults.append(fault)
        return fault

    async def _kill_api(self, down_s: float) -> tuple[str, str]:
        """Kill one API process while the other answers (never both down), and start it again
        without waiting for it: it starts slowly, and the run goes on meanwhile."""
        for other in range(api_count):
            await self.cluster.wait_api(other)
        n = self.rng.randrange(api_count)
        proc = self.cluster.processes[f"api-{n}"]
        code = proc.kill()
        await asyncio.sleep(down_s)
        proc.start()
        return f"api-{n}", f"exit {code}, down {down_s:.1f} s and its start"

    async def _kill_worker(self, down_s: float) -> tuple[str, str]:
        name = self.rng.choice(workers)
        proc = self.cluster.processes[name]
        code = proc.kill()
        await asyncio.sleep(down_s)
        proc.start()
        return name, f"exit {code}, down {down_s:.1f} s"

    async def _restart_broker(self, down_s: float) -> tuple[str, str]:
        def restart() -> None:
            with rabbit.restarted_broker():
                time.sleep(down_s)

        await asyncio.to_thread(restart)
        return "rabbitmq", f"stopped {down_s:.1f} s"

    async def _terminate_backends(self, down_s: float) -> tuple[str, str]:
        killed = await asyncio.to_thread(self.cluster.terminate_backends)
        return "both servers", f"{killed} backends terminated"

    async def _stop_database(self, down_s: float) -> tuple[str, str]:
        await asyncio.to_thread(self.cluster.second.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.cluster.second.start)
        return "ap-southeast's server", f"down {down_s:.1f} s"
