"""Group commit for ``createTransfer``: concurrent requests of a region share one transaction.

Each region has a queue and ``runners`` tasks that take from it. A runner takes the first
request waiting, and every other one waiting at that moment (up to ``group_max``), and runs
them as one set-based transaction (``regions.transfer_group``). There is no timer: a request
that arrives when a runner is free starts at once, alone; requests that arrive while the
runners are busy wait for the next group, so groups grow with the load (TigerBeetle's clients
batch the same way). ``window_s``, when set, lets a runner wait that long for company, but only
while another group is in flight: a lone request never waits.

A group that fails as a whole (conflicts past the retry wrapper's attempts, a key purged under
it, anything unexpected) is split: each request runs alone through the single-request path,
with its own retries, so one request's trouble is never another's. Each request keeps its
audit origin and trace context.

Deadlines: a request carries its operation's deadline (``deadline``, set by the GraphQL time
limit). A group must commit before the earliest deadline among its requests, or it is cancelled
and rolls back; its requests whose deadline has not passed then run alone, each within its own.
So a request whose caller was told it timed out wrote nothing, as the time limit promises (bar
the instant between a commit and the answer, as for any request). A caller that gives up
before its group starts is left out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from payments.errors import DomainError
from payments.principal import Principal
from regions import commands, events, ledger_queries, telemetry
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.transfer_group import Outcome, Request, create_transfers_txn

group_max_default = 256
runners_default = 2
window_s_default = 0.0
group_time_limit_s = 30.0
"""A group of requests without a deadline of their own must still commit within this."""

deadline: ContextVar[float | None] = ContextVar("corridor_operation_deadline", default=None)
"""The event-loop time by which the current GraphQL operation must be done."""

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    request: Request
    future: asyncio.Future[Row[Any]]
    deadline: float


@dataclass(slots=True)
class _Region:
    queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)
    runners: list[asyncio.Task[None]] = field(default_factory=list)
    busy: int = 0


class TransferCoalescer:
    def __init__(self, router: Router, gate: Callable[[], PolicyGate], *,
                 group_max: int = group_max_default, runners: int = runners_default,
                 window_s: float = window_s_default) -> None:
        assert 1 <= group_max <= 10_000
        assert runners >= 1
        assert window_s >= 0
        self.router = router
        self.gate = gate
        self.group_max = group_max
        self.runners = runners
        self.window_s = window_s
        self._regions: dict[str, _Region] = {}
        self.groups = 0
        """Groups run so far (for tests and metrics)."""

    async def submit(self, who: Principal, cmd: commands.CreateTransfer) -> Row[Any]:
        """The transfer's row, once its group committed; raises the request's domain error.
        Cancelling the caller before its group starts leaves the request out of it."""
        region = self._region(who.region)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row[Any]] = loop.create_future()
        request = Request(who, cmd, events.origin.get(), telemetry.current_context())
        until = deadline.get() or loop.time() + group_time_limit_s
        region.queue.put_nowait(_Pending(request, future, until))
        return await future

    def _region(self, code: str) -> _Region:
        found = self._regions.get(code)
        if found is None:
            found = self._regions[code] = _Region()
        if not found.runners:
            found.runners = [asyncio.create_task(self._run(code, found),
                                                 name=f"coalescer-{code}-{i}")
                             for i in range(self.runners)]
        return found

    async def _run(self, code: str, region: _Region) -> None:
        while True:
            group = [await region.queue.get()]
            if self.window_s and region.busy:
                await asyncio.sleep(self.window_s)
            while len(group) < self.group_max:
                try:
                    group.append(region.queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            group = [p for p in group if not p.future.done()]  # callers that gave up
            if not group:
                continue
            region.busy += 1
            try:
                await self._group(code, group)
            except Exception:  # noqa: BLE001 - a runner must outlive any group
                _log.exception("a transfer group in %s failed", code)
            finally:
                region.busy -= 1

    async def _group(self, code: str, group: list[_Pending]) -> None:
        self.groups += 1
        telemetry.transfer_group_size.record(len(group), {"region": code})
        requests = [p.request for p in group]
        try:
            async with asyncio.timeout_at(min(p.deadline for p in group)):
                outcomes = await self.router.run(code, lambda conn: create_transfers_txn(
                    conn, code, self.gate(), requests))
        except Exception:  # noqa: BLE001 - split: each request on its own, with its own retries
            _log.warning("a group of %d transfers in %s failed; running them one by one",
                         len(group), code, exc_info=True)
            for p in group:
                await self._alone(code, p)
            return
        for p, outcome in zip(group, outcomes, strict=True):
            _settle(p.future, outcome)

    async def _alone(self, code: str, p: _Pending) -> None:
        r = p.request

        async def body(conn: AsyncConnection) -> Row[Any]:
            response = await commands.create_transfer_txn(conn, r.who, self.gate(), r.cmd)
            [row] = await ledger_queries.transfer_rows(conn, code, r.who.tenant.id,
                                                       [response["id"]])
            return row

        if p.future.done():
            return
        token = events.origin.set(r.origin)
        try:
            async with asyncio.timeout_at(p.deadline):
                _settle(p.future, await self.router.run(code, body))
        except Exception as exc:  # noqa: BLE001 - the caller gets it, whatever it is
            if not p.future.done():
                p.future.set_exception(exc)
        finally:
            events.origin.reset(token)

    async def close(self) -> None:
        """Stop the runners; requests still queued fail (their callers get a retriable error,
        and nothing of theirs was written)."""
        for region in self._regions.values():
            for task in region.runners:
                task.cancel()
            for task in region.runners:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            region.runners = []
            while not region.queue.empty():
                pending = region.queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(ShuttingDown("the API is shutting down"))


class ShuttingDown(RuntimeError):
    """A request queued when the process stopped: it was not run."""


def _settle(future: asyncio.Future[Row[Any]], outcome: Outcome) -> None:
    if future.done():
        return
    if isinstance(outcome, DomainError):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
