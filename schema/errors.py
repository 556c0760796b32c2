"""Error types of mutation result unions, and public top-level errors of queries."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import errors as domain
from payments import fx, payouts
from regions import erasure, events, incoming, policy_store, review_cases
from regions.events import Event
from regions.payout_batches import PayoutBatchItemRejected
from regions.txn import CommitOutcomeUnknown, DatabaseUnavailable, RetriesExhausted, Unavailable
from regions.virtual_accounts import TooManyVirtualAccounts
from regions.webhooks import TooManyEndpoints


@strawberry.interface(description="Every error a mutation can return implements Error.")
class Error:
    code: str
    message: str


@strawberry.type
class ValidationError(Error):
    field: str | None = strawberry.field(
        description="The input field at fault, in the API's camelCase.")


@strawberry.type
class NotFound(Error):
    pass


@strawberry.type
class InsufficientFunds(Error):
    account_id: strawberry.ID


@strawberry.type
class CurrencyMismatch(Error):
    account_id: strawberry.ID


@strawberry.type
class AccountNotActive(Error):
    account_id: strawberry.ID


@strawberry.type
class IdempotencyConflict(Error):
    idempotency_key: str


@strawberry.type(description="No fresh rate for the pair; quotes resume when rates refresh.")
class RatesUnavailable(Error):
    pass


@strawberry.type
class QuoteExpired(Error):
    pass


@strawberry.type
class QuoteAlreadyExecuted(Error):
    pass


@strawberry.type(description="An atomic batch failed at one item; nothing was written.")
class TransferBatchRejected(Error):
    index: int
    reason_code: str


@strawberry.type(description="A limit on how many of something may exist was reached.")
class LimitExceeded(Error):
    pass


@strawberry.type(description="A jurisdiction's policy refuses the operation; nothing was done.")
class PolicyDenied(Error):
    reasons: list[str]


@strawberry.type
class PayoutNotCancellable(Error):
    pass


@strawberry.type(description="No payout rail carries this currency to this country (or this "
                             "amount); nothing was held.")
class RailUnavailable(Error):
    pass


@strawberry.type(description="An atomic payout batch failed at one item; nothing was written.")
class PayoutBatchRejected(Error):
    index: int
    reason_code: str
    field: str | None = strawberry.field(
        description="For a validation error, the input field at fault, e.g. items[3].amount.")


@strawberry.type
class NotRefundable(Error):
    pass


@strawberry.type
class NotInSuspense(Error):
    pass


@strawberry.type(description="Maker-checker refused: the change is not pending, was proposed "
                             "by the same officer, or a newer version was approved since.")
class ChangeNotAllowed(Error):
    pass


@strawberry.type
class CaseNotOpen(Error):
    pass


@strawberry.type(description="Erasure must wait: payouts to the subject are still on their "
                             "way (their rails need the details).")
class ErasureRefused(Error):
    pass


_plain: dict[type[domain.DomainError], type[Any]] = {
    fx.RatesUnavailable: RatesUnavailable,
    fx.QuoteExpired: QuoteExpired,
    fx.QuoteAlreadyExecuted: QuoteAlreadyExecuted,
    TooManyVirtualAccounts: LimitExceeded,
    TooManyEndpoints: LimitExceeded,
    payouts.PayoutNotCancellable: PayoutNotCancellable,
    payouts.RailUnavailable: RailUnavailable,
    incoming.NotRefundable: NotRefundable,
    incoming.NotInSuspense: NotInSuspense,
    policy_store.ChangeNotAllowed: ChangeNotAllowed,
    review_cases.CaseNotOpen: CaseNotOpen,
    erasure.ErasureRefused: ErasureRefused,
}


def to_error_type(exc: domain.DomainError) -> Any:
    """The GraphQL error type for a domain error."""
    if isinstance(exc, domain.InvalidInput):
        return ValidationError(code=exc.code, message=exc.message, field=exc.field)
    if isinstance(exc, domain.NotFound):
        return NotFound(code=exc.code, message=exc.message)
    if isinstance(exc, domain.InsufficientFunds):
        return InsufficientFunds(code=exc.code, message=exc.message,
                                 account_id=strawberry.ID(exc.account_id))
    if isinstance(exc, domain.CurrencyMismatch):
        return CurrencyMismatch(code=exc.code, message=exc.message,
                                account_id=strawberry.ID(exc.account_id))
    if isinstance(exc, domain.AccountNotActive):
        return AccountNotActive(code=exc.code, message=exc.message,
                                account_id=strawberry.ID(exc.account_id))
    if isinstance(exc, domain.IdempotencyConflict):
        return IdempotencyConflict(code=exc.code, message=exc.message, idempotency_key=exc.key)
    if isinstance(exc, PayoutBatchItemRejected):
        field = exc.cause.field if isinstance(exc.cause, domain.InvalidInput) else None
        return PayoutBatchRejected(code=exc.code, message=exc.message, index=exc.index,
                                   reason_code=exc.cause.code, field=field)
    if isinstance(exc, domain.BatchItemRejected):
        return TransferBatchRejected(code=exc.code, message=exc.message, index=exc.index,
                                     reason_code=exc.cause.code)
    if isinstance(exc, domain.PolicyDenied):
        return PolicyDenied(code=exc.code, message=exc.message, reasons=exc.reasons)
    if type(exc) in _plain:
        return _plain[type(exc)](code=exc.code, message=exc.message)
    raise AssertionError(f"no GraphQL type for {type(exc).__name__}")


R = TypeVar("R")


def typed_errors(resolver: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """A mutation resolver whose domain errors become the result union's error types.

    A refused mutation leaves an audit row (``<mutation>.refused``, with the error's code) in
    the caller's home region, written after the refused transaction rolled back. A policy's
    refusal has left its own (``policy.decided``) already."""
    @functools.wraps(resolver)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        try:
            return await resolver(*args, **kwargs)
        except domain.DomainError as exc:
            if not isinstance(exc, domain.PolicyDenied):
                await _audit_refusal(kwargs.get("info", args[0] if args else None), exc)
            return to_error_type(exc)  # type: ignore[no-any-return]

    return wrapper


async def _audit_refusal(info: Any, exc: domain.DomainError) -> None:
    who = getattr(getattr(info, "context", None), "principal", None)
    if who is None:
        return
    event = Event(f"{info.field_name}.refused", {"code": exc.code, "message": exc.message},
                  None, published=False)

    async def body(conn: AsyncConnection) -> None:
        await events.record(conn, who.region, who.tenant.id, who.actor, [event])

    await info.context.router.run(who.region, body)


class PublicError(GraphQLError):
    """A top-level error whose message and code are meant for the caller (never masked)."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})


timeout_code = "TIMEOUT"
"""The operation ran past the request time limit (``schema.build.Operation``)."""
unavailable_code = Unavailable.code
"""The request could not run, or its outcome is unknown: the process is stopping, its region's
queue is full, its region's database could not be reached (nothing was written), or the
connection was lost while committing (it may have been written). Sending it again with the same
idempotency key is safe in every case: it replays what committed or runs once."""

unavailable_messages: dict[type[Unavailable], str] = {
    DatabaseUnavailable: "The region's database could not be reached; nothing was written. "
                         "Send the request again with the same idempotency key.",
    CommitOutcomeUnknown: "The connection to the region's database was lost while committing, "
                          "so the mutation may or may not have been applied. Send it again with "
                          "the same idempotency key: it replays what was applied, or runs once.",
}


def bad_input(exc: domain.InvalidInput) -> PublicError:
    return PublicError(exc.message, "BAD_USER_INPUT", field=exc.field)


def is_public(error: GraphQLError) -> bool:
    """Errors of GraphQL itself, permissions, and our public errors keep their message."""
    original = error.original_error
    return original is None or isinstance(original, GraphQLError | RetriesExhausted | Unavailable)


internal_error_code = "INTERNAL_SERVER_ERROR"
conflict_error_code = RetriesExhausted.code
