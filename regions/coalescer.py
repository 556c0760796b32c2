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
audit origin and trace context. The exception is a database that could not be reached
(``DatabaseUnavailable``, after the wrapper's reconnect attempts): nothing was written, and
running the requests one after another against the same dead database would only make the
late ones wait into their deadlines, so every request of the group is answered ``UNAVAILABLE``
at once (safe to send again with its key). A group whose commit outcome is unknown is split,
so that each request replays or runs once by its key.

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
import contextvars
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row

from payments.errors import DomainError
from payments.principal import Principal
from regions import commands, events, telemetry
from regions.policy_gate import PolicyGate
from regions.router import Router
from regions.transfer_group import Outcome, Request, create_transfers_txn
from regions.txn import DatabaseUnavailable

group_max_default = 256
group_max_limit = 1_000
queue_max_default = 10_000
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
    queue: asyncio.Queue[_Pending]
    runners: list[asyncio.Task[None]] = field(default_factory=list)
    busy: int = 0


class ShuttingDown(RuntimeError):
    """The API process is stopping: the request was not run (safe to send again)."""


class Overloaded(RuntimeError):
    """The region's queue of transfers is full: the request was not run (send it again)."""


class TransferCoalescer:
    def __init__(self, router: Router, gate: Callable[[], PolicyGate], *,
                 group_max: int = group_max_default, runners: int = runners_default,
                 window_s: float = window_s_default, queue_max: int = queue_max_default) -> None:
        assert 1 <= group_max <= group_max_limit
        assert runners >= 1
        assert window_s >= 0
        assert queue_max >= group_max
        self.router = router
        self.gate = gate
        self.group_max = group_max
        self.runners = runners
        self.window_s = window_s
        self.queue_max = queue_max
        self._regions: dict[str, _Region] = {}
        self._closed = False
        self.groups = 0
        """Groups run so far (for tests and metrics)."""

    async def submit(self, who: Principal, cmd: commands.CreateTransfer) -> Row[Any]:
        """The transfer's row, once its group committed; raises the request's domain error,
        ``Overloaded`` or ``ShuttingDown`` (nothing written), or ``TimeoutError`` (its deadline
        passed first: nothing written). Cancelling the caller before its group starts leaves
        the request out of it."""
        if self._closed:
            raise ShuttingDown("the API is shutting down")
        region = self._region(who.region)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row[Any]] = loop.create_future()
        request = Request(who, cmd, events.origin.get(), telemetry.current_context())
        given = deadline.get()
        until = given if given is not None else loop.time() + group_time_limit_s
        try:
            region.queue.put_nowait(_Pending(request, future, until))
        except asyncio.QueueFull:
            raise Overloaded(f"more than {self.queue_max} transfers are waiting in "
                             f"{who.region}") from None
        return await future

    def _region(self, code: str) -> _Region:
        found = self._regions.get(code)
        if found is None:
            found = self._regions[code] = _Region(asyncio.Queue(self.queue_max))
        # Start the runners, and replace any that died; each in a context of its own, so no
        # caller's trace, origin or deadline leaks into every group after it.
        alive = [t for t in found.runners if not t.done()]
        for i in range(len(alive), self.runners):
            alive.append(asyncio.create_task(self._run(code, found),
                                             name=f"coalescer-{code}-{i}",
                                             context=contextvars.Context()))
        found.runners = alive
        return found

    async def _run(self, code: str, region: _Region) -> None:
        while True:
            group = [await region.queue.get()]
            try:
                if self.window_s and region.busy:
                    await asyncio.sleep(self.window_s)
                while len(group) < self.group_max:
                    try:
                        group.append(region.queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
                region.busy += 1
                try:
                    await self._group(code, group)
                finally:
                    region.busy -= 1
            except Exception:  # noqa: BLE001 - a runner outlives any group
                _log.exception("a transfer group in %s failed", code)
            finally:
                # Whatever happened (the runner cancelled at shutdown included), no caller of
                # this group is left waiting.
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(ShuttingDown(
                            "the transfer's group was stopped before it answered"))

    async def _group(self, code: str, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        for p in group:
            if not p.future.done() and p.deadline <= loop.time():
                p.future.set_exception(TimeoutError("the request's deadline passed first"))
        group = [p for p in group if not p.future.done()]  # late, or the caller gave up
        if not group:
            return
        self.groups += 1
        telemetry.transfer_group_size.record(len(group), {"region": code})
        requests = [p.request for p in group]
        try:
            async with asyncio.timeout_at(min(p.deadline for p in group)):
                outcomes = await self.router.run(code, lambda conn: create_transfers_txn(
                    conn, code, self.gate(), requests))
        except TimeoutError:
            if any(p.deadline <= loop.time() for p in group):
                # The earliest deadline passed: those past theirs fail, the rest go on together.
                _log.warning("a group of %d transfers in %s ran past a deadline", len(group),
                             code)
                await self._group(code, group)
            else:  # a time-out of something else: as any failure of the group
                for p in group:
                    await self._alone(code, p)
            return
        except AssertionError:
            _log.exception("a group of %d transfers in %s broke an invariant", len(group),
                           code)
            raise
        except DatabaseUnavailable as exc:
            _log.warning("a group of %d transfers in %s: %s", len(group), code, exc)
            for p in group:
                if not p.future.done():
                    p.future.set_exception(DatabaseUnavailable(str(exc)))
            return
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
        if p.future.done():
            return
        token = events.origin.set(r.origin)
        try:
            with telemetry.span("createTransfer alone", parent=r.trace_context):
                async with asyncio.timeout_at(p.deadline):
                    _settle(p.future, await self.router.run(
                        code, lambda conn: commands.create_transfer_row_txn(
                            conn, r.who, self.gate(), r.cmd)))
        except Exception as exc:  # noqa: BLE001 - the caller gets it, whatever it is
            if not p.future.done():
                p.future.set_exception(exc)
        finally:
            events.origin.reset(token)

    async def close(self) -> None:
        """Take no more requests, stop the runners, and fail what they had not answered
        (``ShuttingDown``: nothing of those was written)."""
        self._closed = True
        for region in list(self._regions.values()):
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


def _settle(future: asyncio.Future[Row[Any]], outcome: Outcome) -> None:
    if future.done():
        return
    if isinstance(outcome, DomainError):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
