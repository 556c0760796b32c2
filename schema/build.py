"""The schema: Query and Mutation assembled from the feature modules, with hardening on.

Document limits: depth, tokens, aliases, and operations per document (a document may define
several; the request's ``operationName`` picks the one that runs, and batched requests, a JSON
array of operations, are refused by Strawberry with HTTP 400 since batching is off). An operation
running longer than the time limit is cancelled at its next await and answered with
``extensions.code = "TIMEOUT"``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from graphql.language import VisitorAction
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from opentelemetry.trace import SpanKind
from strawberry.extensions import MaskErrors, ParserCache, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from regions import coalescer, telemetry
from regions.txn import RetriesExhausted, Unavailable
from schema import accounts as acc
from schema import api_keys as key
from schema import audit as aud
from schema import beneficiaries as ben
from schema import errors
from schema import fx as fxs
from schema import incoming as inc
from schema import payout_batches as pbt
from schema import payouts as pay
from schema import policies as pol
from schema import review_cases as rvc
from schema import settlement as stl
from schema import transfers as trf
from schema import viewer as vw
from schema import virtual_ibans as vib
from schema import webhooks as whk
from schema.pagination import Connection

query_depth_max = 10
query_tokens_max = 2_000
query_aliases_max = 15
operations_per_document_max = 10
document_cache_entries_max = 1_000
timeout_code = errors.timeout_code
operation_unresolved_code = "OPERATION_RESOLUTION_FAILURE"

_log = logging.getLogger(__name__)


@strawberry.type
class Query:
    viewer: vw.Viewer = vw.viewer_field
    regions: list[vw.Region] = vw.regions_field
    account: acc.AccountResult = acc.account_field
    accounts: Connection[acc.Account] = acc.accounts_field
    transfer: trf.TransferResult = trf.transfer_field
    transfers: Connection[trf.Transfer] = trf.transfers_field
    fx_rates: list[fxs.FxRate] = fxs.fx_rates_field
    fx_quote: fxs.FxQuoteResult = fxs.fx_quote_field
    beneficiary: ben.BeneficiaryResult = ben.beneficiary_field
    beneficiaries: Connection[ben.Beneficiary] = ben.beneficiaries_field
    payout: pay.PayoutResult = pay.payout_field
    payouts: Connection[pay.Payout] = pay.payouts_field
    payout_batch: pbt.PayoutBatchResult = pbt.payout_batch_field
    webhook_endpoints: Connection[whk.WebhookEndpoint] = whk.webhook_endpoints_field
    webhook_deliveries: Connection[whk.WebhookDelivery] = whk.webhook_deliveries_field
    incoming_payments: Connection[inc.IncomingPayment] = inc.incoming_payments_field
    reconciliation_items: Connection[inc.IncomingPayment] = inc.reconciliation_items_field
    settlement_batches: Connection[stl.SettlementBatch] = stl.settlement_batches_field
    reconciliation: stl.Reconciliation = stl.reconciliation_field
    policy: pol.PolicyResult = pol.policy_field
    policy_change_requests: Connection[pol.PolicyChangeRequest] = pol.policy_changes_field
    review_cases: Connection[rvc.ReviewCase] = rvc.review_cases_field
    audit_events: Connection[aud.AuditEvent] = aud.audit_events_field
    api_keys: Connection[key.ApiKey] = key.api_keys_field


@strawberry.type
class Mutation:
    create_account: acc.CreateAccountResult = acc.create_account_field
    create_transfer: trf.CreateTransferResult = trf.create_transfer_field
    create_transfer_batch: trf.CreateTransferBatchResult = trf.create_transfer_batch_field
    create_fx_quote: fxs.CreateFxQuoteResult = fxs.create_fx_quote_field
    execute_fx_quote: fxs.ExecuteFxQuoteResult = fxs.execute_fx_quote_field
    issue_virtual_iban: vib.IssueVirtualIbanResult = vib.issue_virtual_iban_field
    create_beneficiary: ben.CreateBeneficiaryResult = ben.create_beneficiary_field
    erase_beneficiary: ben.EraseBeneficiaryResult = ben.erase_beneficiary_field
    create_payout: pay.CreatePayoutResult = pay.create_payout_field
    cancel_payout: pay.CancelPayoutResult = pay.cancel_payout_field
    create_payout_batch: pbt.CreatePayoutBatchResult = pbt.create_payout_batch_field
    register_webhook_endpoint: whk.WebhookEndpointSecretResult = (
        whk.register_webhook_endpoint_field)
    rotate_webhook_secret: whk.WebhookEndpointSecretResult = whk.rotate_webhook_secret_field
    disable_webhook_endpoint: whk.WebhookEndpointResult = whk.disable_webhook_endpoint_field
    propose_policy_change: pol.PolicyChangeResult = pol.propose_policy_change_field
    approve_policy_change: pol.PolicyChangeResult = pol.approve_policy_change_field
    reject_policy_change: pol.PolicyChangeResult = pol.reject_policy_change_field
    evaluate_policy: pol.EvaluatePolicyResult = pol.evaluate_policy_field
    resolve_review_case: rvc.ResolveReviewCaseResult = rvc.resolve_review_case_field
    create_api_key: key.CreateApiKeyResult = key.create_api_key_field
    revoke_api_key: key.RevokeApiKeyResult = key.revoke_api_key_field
    simulate_incoming_payment: inc.SimulateIncomingPaymentResult = (
        inc.simulate_incoming_payment_field)
    refund_incoming_payment: inc.RefundIncomingPaymentResult = inc.refund_incoming_payment_field
    assign_incoming_payment: inc.ResolveIncomingPaymentResult = inc.assign_incoming_payment_field
    return_incoming_payment: inc.ResolveIncomingPaymentResult = inc.return_incoming_payment_field


class PublicMaskErrors(MaskErrors):
    """Masks unexpected failures (logging them); conflicts keep their own code."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        _log.error("unexpected error in %s", error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": errors.internal_error_code}
        return masked

    def _process_errors(self, errs: list[GraphQLError]) -> list[GraphQLError]:
        out = super()._process_errors(errs)
        for error in out:
            original = error.original_error
            if isinstance(original, RetriesExhausted):
                error.extensions = {"code": errors.conflict_error_code}
            elif isinstance(original, Unavailable):
                _log.warning("%s in %s: %s", type(original).__name__, error.path,
                             original.__cause__)
                error.message = errors.unavailable_messages[type(original)]
                error.extensions = {"code": errors.unavailable_code}
        return out


def operation_count(document: DocumentNode) -> int:
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


def operations_rule(operations_max: int) -> type[ASTValidationRule]:
    class OperationsPerDocument(ASTValidationRule):
        """Refuses a document that defines more than ``operations_max`` operations."""

        def enter_document(self, node: DocumentNode, *_: Any) -> VisitorAction:
            count = operation_count(node)
            if count > operations_max:
                self.report_error(GraphQLError(
                    f"The document defines {count} operations; at most {operations_max} "
                    "are allowed, and one of them runs per request."))
            return self.SKIP

    return OperationsPerDocument


class OperationNameRequired(SchemaExtension):
    """GraphQL's GetOperation(): in a document of several operations, the request's
    ``operationName`` picks the one that runs, and without it none runs. (Strawberry would run
    the first: its ``ExecutionContext.operation_name`` falls back to the first operation's name,
    so the name the request gave is read from ``_provided_operation_name``.)

    Runs after ValidationCache, whose cached error list it must not change in place.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if (context._provided_operation_name is None and document is not None
                and operation_count(document) > 1):
            refused = errors.PublicError(
                "Must provide operation name if query contains multiple operations.",
                operation_unresolved_code)
            context.pre_execution_errors = [*(context.pre_execution_errors or ()), refused]
        yield


class Operation(SchemaExtension):
    """Everything Corridor does around one operation, in one hook (each extension's hook costs
    a context manager per request, about 30 us here, so the hot mutation pays once):

    - the document limits: tokens (``MaxTokensLimiter``'s setting) and the validation rules;
    - one span per operation (not per field), and its latency in the
      ``corridor.graphql.duration`` histogram by operation name and type;
    - the time limit: an operation running longer than ``limit_s`` is cancelled at its next
      await. A transaction in progress rolls back (the retry wrapper lets ``CancelledError``
      through; psycopg cancels a running statement), and the answer is HTTP 200 with
      ``data: null`` and a ``TIMEOUT`` error, as GraphQL over HTTP asks once execution has
      begun. Mutation fields run one after another, each in its own transaction: those
      finished before the limit stay committed, and their idempotency keys make resending the
      request safe. Work done on the operation's behalf elsewhere (a transfer's group) keeps
      the deadline (``coalescer.deadline``).
    """

    def __init__(self, *, rules: tuple[type[ASTValidationRule], ...], tokens_max: int,
                 limit_s: float | None) -> None:
        self.rules = rules
        self.tokens_max = tokens_max
        self.limit_s = limit_s

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.tokens_max
        context.validation_rules = context.validation_rules + self.rules
        started = time.perf_counter()
        with telemetry.tracer.start_as_current_span("graphql", kind=SpanKind.SERVER) as span:
            try:
                if self.limit_s is None:
                    yield
                else:
                    async with self._time_limit(self.limit_s):
                        yield
            finally:
                name = context.operation_name or "anonymous"
                try:
                    kind = context.operation_type.value
                except RuntimeError:  # the document did not parse: there is no operation
                    kind = "invalid"
                span.update_name(f"graphql.{kind} {name}")
                span.set_attribute("graphql.operation.name", name)
                span.set_attribute("graphql.operation.type", kind)
                failed = (context.result.errors if context.result is not None
                          else context.pre_execution_errors)
                if failed:
                    span.set_attribute("graphql.errors", len(failed))
                telemetry.graphql_duration.record(
                    (time.perf_counter() - started) * 1000,
                    {"operation": name, "type": kind})

    @staticmethod
    @asynccontextmanager
    async def _time_limit(limit_s: float) -> AsyncIterator[None]:
        token = coalescer.deadline.set(asyncio.get_running_loop().time() + limit_s)
        try:
            async with asyncio.timeout(limit_s):
                yield
        except TimeoutError:
            raise errors.PublicError(
                f"The request ran longer than {limit_s:g} s and was stopped; an unfinished "
                "mutation wrote nothing.", timeout_code) from None
        finally:
            coalescer.deadline.reset(token)


def build_schema(*, production: bool, time_limit_s: float | None = None) -> strawberry.Schema:
    """The schema; a server passes ``time_limit_s`` (exporting the SDL needs none)."""
    # Factories, not instances: Strawberry builds fresh extensions for every request. The
    # validation rules are built once, so ValidationCache (keyed by the rule classes) hits;
    # MaxAliasesLimiter and QueryDepthLimiter would make new rule classes per request.
    rules: list[type[ASTValidationRule]] = [
        operations_rule(operations_per_document_max), aliases_rule(query_aliases_max),
        depth_rule(query_depth_max, None)]
    if production:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Any] = [
        partial(Operation, rules=tuple(rules), tokens_max=query_tokens_max,
                limit_s=time_limit_s),
        partial(ParserCache, maxsize=document_cache_entries_max),
        partial(ValidationCache, maxsize=document_cache_entries_max),
        OperationNameRequired,
        partial(PublicMaskErrors, should_mask_error=lambda e: not errors.is_public(e)),
    ]
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)
