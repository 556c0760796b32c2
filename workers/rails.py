"""Payout rails behind one interface, chosen per rail name; sandbox simulators for now.

A rail adapter takes an ``Instruction`` and answers a ``RailOutcome``, or raises
``RailTimeout`` when the bank did not answer in time (the payout stays PROCESSING and the
worker tries again later with the same payout id as the rail reference, which a real rail
deduplicates on). Every simulator settles by the amount's last two minor-unit digits:

| amount ends in | outcome |
| --- | --- |
| .91 | FAILED, AC04 (account closed) |
| .92 | FAILED, AM05 (duplicate) |
| .93 | COMPLETED, then RETURNED (MS03) after ``return_after_s`` |
| .94 | time-out on the first try, COMPLETED on the next |
| anything else | COMPLETED |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from payments.payouts import rails as rail_table
from regions.payouts import Instruction, RailOutcome
from workers.config import sandbox_return_after_s_default

timeouts_remembered_max = 100_000


class RailTimeout(Exception):
    """The rail did not answer; whether it took the payment is unknown until it is asked again."""


class PayoutRail(Protocol):
    name: str

    async def submit(self, instruction: Instruction) -> RailOutcome: ...


_failures = {91: ("AC04", "the beneficiary's account is closed"),
             92: ("AM05", "the bank rejected the payment as a duplicate")}
_returns = 93
_timeout_once = 94


class SimulatedRail:
    """A sandbox rail whose outcome is set by the amount (see the module's table)."""

    def __init__(self, name: str, return_after_s: int = sandbox_return_after_s_default) -> None:
        self.name = name
        self.return_after_s = return_after_s
        self._timed_out: set[str] = set()

    async def submit(self, instruction: Instruction) -> RailOutcome:
        assert instruction.rail == self.name, (instruction.rail, self.name)
        pattern = instruction.amount_minor % 100
        reference = f"{self.name}-{instruction.payout_id}"
        if pattern == _timeout_once and instruction.payout_id not in self._timed_out:
            if len(self._timed_out) >= timeouts_remembered_max:
                self._timed_out.clear()
            self._timed_out.add(instruction.payout_id)
            raise RailTimeout(f"{self.name} did not answer for {instruction.payout_id}")
        if pattern in _failures:
            code, message = _failures[pattern]
            return RailOutcome(False, reference, code, message)
        return RailOutcome(True, reference,
                           return_after_s=self.return_after_s if pattern == _returns else None)


class Rails:
    """The adapter for each rail name, chosen in one place."""

    def __init__(self, adapters: Iterable[PayoutRail]) -> None:
        self._by_name = {a.name: a for a in adapters}

    def __getitem__(self, name: str) -> PayoutRail:
        return self._by_name[name]


def sandbox_rails(return_after_s: int = sandbox_return_after_s_default) -> Rails:
    return Rails(SimulatedRail(r.name, return_after_s) for r in rail_table)
