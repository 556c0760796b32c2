"""Expected operating errors of the domain, as values that reach partners as typed results.

Programmer errors (a journal that does not balance, a balance that breaks its account's flags
after a check said it would not) are ``assert``s instead, and stop the operation loudly.
"""

from __future__ import annotations

shown_chars_max = 64


def shown(text: str) -> str:
    """A caller's value quoted for an error message: ``repr`` escapes control and invisible
    characters, and anything past ``shown_chars_max`` is cut, so a message never carries a
    megabyte the caller sent."""
    if len(text) <= shown_chars_max:
        return repr(text)
    return f"{text[:shown_chars_max]!r}... ({len(text)} characters)"


class DomainError(Exception):
    """An expected failure that a partner can act on; ``code`` is stable API."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """Input that can never succeed, with the input field it concerns."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DomainError):
    """Absent, or belongs to another tenant: both read the same (no existence oracle)."""

    code = "NOT_FOUND"

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {shown(ident)} was not found")
        self.ident = ident


class InsufficientFunds(DomainError):
    code = "INSUFFICIENT_FUNDS"

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} has insufficient available funds")
        self.account_id = account_id


class CurrencyMismatch(DomainError):
    code = "CURRENCY_MISMATCH"

    def __init__(self, account_id: str, account_currency: str, currency: str) -> None:
        super().__init__(
            f"account {account_id!r} holds {account_currency}, the transfer is in {currency}"
        )
        self.account_id = account_id


class AccountNotActive(DomainError):
    code = "ACCOUNT_NOT_ACTIVE"

    def __init__(self, account_id: str, status: str) -> None:
        super().__init__(f"account {account_id!r} is {status.lower()}, not active")
        self.account_id = account_id


class SameAccount(InvalidInput):
    def __init__(self) -> None:
        super().__init__("a transfer needs two different accounts", field="toAccountId")


class TransferNotPending(DomainError):
    code = "TRANSFER_NOT_PENDING"

    def __init__(self, transfer_id: str, status: str) -> None:
        super().__init__(f"transfer {transfer_id!r} is {status.lower()}, not pending")
        self.transfer_id = transfer_id


class IdempotencyConflict(DomainError):
    code = "IDEMPOTENCY_CONFLICT"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used with a different request"
        )
        self.key = key


class BatchItemRejected(DomainError):
    """An atomic batch stopped at one item; nothing of the batch was written."""

    code = "BATCH_ITEM_REJECTED"

    def __init__(self, index: int, cause: DomainError) -> None:
        super().__init__(f"item {index}: {cause.message}")
        self.index = index
        self.cause = cause


class PolicyDenied(DomainError):
    """A jurisdiction's policy refuses the operation. ``trail`` is the decision's audit record,
    kept although the operation's transaction rolls back."""

    code = "POLICY_DENIED"

    def __init__(self, message: str, reasons: list[str], trail: object | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.trail = trail
