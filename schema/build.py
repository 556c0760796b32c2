"""The schema: Query and Mutation assembled from the feature modules, with hardening on."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from regions.txn import RetriesExhausted
from schema import accounts as acc
from schema import audit as aud
from schema import beneficiaries as ben
from schema import errors
from schema import fx as fxs
from schema import incoming as inc
from schema import payout_batches as pbt
from schema import payouts as pay
from schema import policies as pol
from schema import review_cases as rvc
from schema import transfers as trf
from schema import viewer as vw
from schema import virtual_ibans as vib
from schema import webhooks as whk
from schema.pagination import Connection

query_depth_max = 10
query_tokens_max = 2_000
query_aliases_max = 15
document_cache_entries_max = 1_000

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
    policy: pol.PolicyResult = pol.policy_field
    policy_change_requests: Connection[pol.PolicyChangeRequest] = pol.policy_changes_field
    review_cases: Connection[rvc.ReviewCase] = rvc.review_cases_field
    audit_events: Connection[aud.AuditEvent] = aud.audit_events_field


@strawberry.type
class Mutation:
    create_account: acc.CreateAccountResult = acc.create_account_field
    create_transfer: trf.CreateTransferResult = trf.create_transfer_field
    create_transfer_batch: trf.CreateTransferBatchResult = trf.create_transfer_batch_field
    create_fx_quote: fxs.CreateFxQuoteResult = fxs.create_fx_quote_field
    execute_fx_quote: fxs.ExecuteFxQuoteResult = fxs.execute_fx_quote_field
    issue_virtual_iban: vib.IssueVirtualIbanResult = vib.issue_virtual_iban_field
    create_beneficiary: ben.CreateBeneficiaryResult = ben.create_beneficiary_field
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
            if isinstance(error.original_error, RetriesExhausted):
                error.extensions = {"code": errors.conflict_error_code}
        return out


def build_schema(*, production: bool) -> strawberry.Schema:
    # Factories, not instances: Strawberry builds fresh extensions for every request. The
    # validation rules are built once, so ValidationCache (keyed by the rule classes) hits;
    # MaxAliasesLimiter and QueryDepthLimiter would make new rule classes per request.
    rules: list[type[ASTValidationRule]] = [
        aliases_rule(query_aliases_max), depth_rule(query_depth_max, None)]
    if production:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Any] = [
        partial(ParserCache, maxsize=document_cache_entries_max),
        partial(MaxTokensLimiter, max_token_count=query_tokens_max),
        partial(AddValidationRules, rules),
        partial(ValidationCache, maxsize=document_cache_entries_max),
        partial(PublicMaskErrors, should_mask_error=lambda e: not errors.is_public(e)),
    ]
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)
