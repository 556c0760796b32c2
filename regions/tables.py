"""SQLAlchemy Core tables used by queries. Migrations own the DDL; a test checks the two agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

control = MetaData()
regional = MetaData()


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


regions = Table(
    "regions", control,
    Column("code", Text, primary_key=True),
    Column("jurisdictions", ARRAY(Text), nullable=False),
    Column("cloud", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("cluster", Text, nullable=False),
    Column("sovereign", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    _ts("updated_at"),
)

tenants = Table(
    "tenants", control,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("jurisdiction", Text, nullable=False),
    Column("home_region", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("status", Text, nullable=False),
    _ts("created_at"),
    Column("fx_spread_bps", Integer),
    _ts("erased_at", nullable=True),
)

api_keys = Table(
    "api_keys", control,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("key_prefix", Text, nullable=False),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    Column("jurisdictions", ARRAY(Text)),
    Column("label", Text),
    _ts("expires_at", nullable=True),
    _ts("last_used_at", nullable=True),
    Column("created_by", Text),
    Column("creation_key", Text),
)

accounts = Table(
    "accounts", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text),
    Column("kind", Text, nullable=False),
    Column("purpose", Text),
    Column("currency", Text, nullable=False),
    Column("label", Text),
    Column("status", Text, nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("entry_seq", BigInteger, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

journals = Table(
    "journals", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text),
    Column("kind", Text, nullable=False),
    _ts("created_at"),
)

transfers = Table(
    "transfers", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("journal_id", Text, nullable=False),
    Column("tenant_id", Text),
    Column("debit_account_id", Text, nullable=False),
    Column("credit_account_id", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("reference", Text),
    _ts("created_at"),
    _ts("updated_at"),
)

entries = Table(
    "entries", regional,
    Column("region", Text, primary_key=True),
    Column("account_id", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("transfer_id", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("phase", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    _ts("created_at"),
)

idempotency_keys = Table(
    "idempotency_keys", regional,
    Column("region", Text, primary_key=True),
    Column("tenant_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("operation", Text, nullable=False),
    Column("request_hash", LargeBinary, nullable=False),
    Column("response", JSONB, nullable=False),
    _ts("created_at"),
)

outbox = Table(
    "outbox", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text),
    Column("topic", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    _ts("created_at"),
    _ts("published_at", nullable=True),
    Column("trace_context", Text),
)

def _trail(name: str, metadata: MetaData) -> Table:
    """An audit trail: a region's (``audit_events``) or the control plane's."""
    return Table(
        name, metadata,
        Column("region", Text, primary_key=True),
        Column("id", Text, primary_key=True),
        Column("tenant_id", Text),
        Column("actor", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("target", Text),
        Column("detail", JSONB, nullable=False),
        _ts("created_at"),
        Column("origin", Text),
    )


def _chain(name: str, metadata: MetaData) -> Table:
    """The hash chain over a trail (``regions.audit_chain``)."""
    return Table(
        name, metadata,
        Column("region", Text, primary_key=True),
        Column("seq", BigInteger, primary_key=True),
        Column("event_id", Text, nullable=False),
        _ts("event_created_at"),
        Column("prev_hash", LargeBinary, nullable=False),
        Column("hash", LargeBinary, nullable=False),
        _ts("chained_at"),
    )


audit_events = _trail("audit_events", regional)

fx_rates = Table(
    "fx_rates", control,
    Column("base", Text, primary_key=True),
    Column("quote", Text, primary_key=True),
    Column("rate", Numeric, nullable=False),
    _ts("as_of"),
    Column("source", Text, nullable=False),
    _ts("refreshed_at"),
)

fx_rates_held = Table(
    "fx_rates_held", control,
    Column("base", Text, primary_key=True),
    Column("quote", Text, primary_key=True),
    Column("rate", Numeric, nullable=False),
    Column("previous_rate", Numeric, nullable=False),
    _ts("as_of"),
    Column("source", Text, nullable=False),
    _ts("held_at"),
)

fx_refreshes = Table(
    "fx_refreshes", control,
    Column("id", Text, primary_key=True),
    Column("message_id", Text),
    Column("source", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("rates_written", Integer, nullable=False),
    Column("rates_held", Integer, nullable=False),
    Column("error", Text),
    _ts("created_at"),
)

inbox = Table(
    "inbox", control,
    Column("consumer", Text, primary_key=True),
    Column("message_id", Text, primary_key=True),
    _ts("processed_at"),
)

scheduler_leases = Table(
    "scheduler_leases", control,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    _ts("expires_at"),
    _ts("last_fired_at", nullable=True),
)

fx_quotes = Table(
    "fx_quotes", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("sell_currency", Text, nullable=False),
    Column("buy_currency", Text, nullable=False),
    Column("sell_minor", BigInteger, nullable=False),
    Column("buy_minor", BigInteger, nullable=False),
    Column("mid_rate", Numeric, nullable=False),
    Column("rate", Numeric, nullable=False),
    Column("spread_bps", Integer, nullable=False),
    _ts("rates_as_of"),
    _ts("expires_at"),
    Column("status", Text, nullable=False),
    Column("journal_id", Text),
    _ts("executed_at", nullable=True),
    _ts("created_at"),
)

account_directory = Table(
    "account_directory", control,
    Column("routing_digest", LargeBinary, primary_key=True),
    Column("region", Text, nullable=False),
    _ts("created_at"),
)

virtual_accounts = Table(
    "virtual_accounts", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("scheme", Text, nullable=False),
    Column("iban", Text),
    Column("bic", Text),
    Column("bank_code", Text),
    Column("branch_code", Text),
    Column("account_number", Text, nullable=False),
    Column("routing_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    _ts("created_at"),
)

data_keys = Table(
    "data_keys", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("kek_id", Text, nullable=False),
    Column("wrapped_key", LargeBinary),
    _ts("created_at"),
    _ts("destroyed_at", nullable=True),
    Column("seals", BigInteger, nullable=False),
    _ts("retired_at", nullable=True),
)

beneficiaries = Table(
    "beneficiaries", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("bic", Text),
    Column("bank_code", Text),
    Column("account_mask", Text, nullable=False),
    Column("data_key_id", Text, nullable=False),
    Column("name_sealed", LargeBinary, nullable=False),
    Column("iban_sealed", LargeBinary),
    Column("account_number_sealed", LargeBinary),
    Column("address_sealed", LargeBinary),
    Column("status", Text, nullable=False),
    _ts("created_at"),
)

payouts = Table(
    "payouts", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("beneficiary_id", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("reference", Text),
    Column("purpose_code", Text),
    Column("rail", Text, nullable=False),
    Column("rail_region", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("hold_transfer_id", Text, nullable=False),
    Column("fee_transfer_id", Text),
    Column("return_transfer_id", Text),
    Column("rail_reference", Text),
    Column("failure_code", Text),
    Column("failure_message", Text),
    _ts("return_due_at", nullable=True),
    Column("batch_id", Text),
    Column("external_id", Text),
    _ts("created_at"),
    _ts("updated_at"),
    Column("review_case_id", Text),
)

payout_batches = Table(
    "payout_batches", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("rejected_count", Integer, nullable=False),
    Column("status", Text, nullable=False),
    _ts("created_at"),
    _ts("completed_at", nullable=True),
)

incoming_payments = Table(
    "incoming_payments", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("bank_reference", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("routing_key", Text, nullable=False),
    Column("tenant_id", Text),
    Column("account_id", Text),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("data_key_id", Text, nullable=False),
    Column("sender_name_sealed", LargeBinary),
    Column("sender_iban_sealed", LargeBinary),
    Column("reference", Text),
    Column("value_date", Date, nullable=False),
    Column("status", Text, nullable=False),
    Column("suspense_reason", Text),
    Column("transfer_id", Text),
    Column("resolution_transfer_id", Text),
    Column("refund_payout_id", Text),
    _ts("created_at"),
    _ts("updated_at"),
)

webhook_endpoints = Table(
    "webhook_endpoints", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("events", ARRAY(Text), nullable=False),
    Column("data_key_id", Text, nullable=False),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("previous_secret_sealed", LargeBinary),
    _ts("previous_expires_at", nullable=True),
    Column("status", Text, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("endpoint_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    _ts("next_attempt_at"),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    _ts("created_at"),
    _ts("delivered_at", nullable=True),
)

message_inbox = Table(
    "message_inbox", regional,
    Column("region", Text, primary_key=True),
    Column("consumer", Text, primary_key=True),
    Column("message_id", Text, primary_key=True),
    _ts("processed_at"),
)

policy_versions = Table(
    "policy_versions", control,
    Column("jurisdiction", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("parameters", JSONB, nullable=False),
    _ts("effective_from"),
    Column("change_id", Text, nullable=False),
    _ts("created_at"),
)

policy_changes = Table(
    "policy_changes", control,
    Column("id", Text, primary_key=True),
    Column("jurisdiction", Text, nullable=False),
    Column("base_version", Integer, nullable=False),
    Column("changes", JSONB, nullable=False),
    _ts("effective_from", nullable=True),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("proposed_by", Text, nullable=False),
    Column("proposal_key", Text, nullable=False),
    _ts("proposed_at"),
    Column("decided_by", Text),
    _ts("decided_at", nullable=True),
    Column("decision_note", Text),
    Column("decision_key", Text),
    Column("version", Integer),
)

sanctions_lists = Table(
    "sanctions_lists", control,
    Column("list_name", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("file_format", Text, nullable=False),
    Column("file_sha256", LargeBinary, nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("imported_by", Text, nullable=False),
    _ts("imported_at"),
)

sanctions_entries = Table(
    "sanctions_entries", control,
    Column("list_name", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("entry_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("names", JSONB, nullable=False),
    Column("dates_of_birth", JSONB, nullable=False),
    Column("programs", JSONB, nullable=False),
)

review_cases = Table(
    "review_cases", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("decision_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("subject_id", Text, nullable=False),
    Column("jurisdictions", ARRAY(Text), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("resolved_by", Text),
    _ts("resolved_at", nullable=True),
    Column("note", Text),
    _ts("created_at"),
)

limit_usage = Table(
    "limit_usage", regional,
    Column("region", Text, primary_key=True),
    Column("tenant_id", Text, primary_key=True),
    Column("meter", Text, primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("scope_id", Text, primary_key=True),
    Column("period", Text, primary_key=True),
    Column("period_start", DateTime(timezone=True), primary_key=True),
    Column("currency", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
)

audit_chain = _chain("audit_chain", regional)

control_audit_events = _trail("control_audit_events", control)
control_audit_chain = _chain("control_audit_chain", control)

xr_streams = Table(
    "xr_streams", regional,
    Column("region", Text, primary_key=True),
    Column("peer", Text, primary_key=True),
    Column("sent_seq", BigInteger, nullable=False),
    Column("applied_seq", BigInteger, nullable=False),
    Column("acked_seq", BigInteger, nullable=False),
    Column("ack_sent_seq", BigInteger, nullable=False),
    _ts("updated_at"),
)

xr_outbox = Table(
    "xr_outbox", regional,
    Column("region", Text, primary_key=True),
    Column("peer", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("trace_context", Text),
    _ts("created_at"),
    _ts("published_at", nullable=True),
    Column("publishes", Integer, nullable=False),
)

xr_inbox = Table(
    "xr_inbox", regional,
    Column("region", Text, primary_key=True),
    Column("peer", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("message_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("trace_context", Text),
    _ts("received_at"),
    _ts("applied_at", nullable=True),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text),
)

xr_payouts = Table(
    "xr_payouts", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("origin", Text, nullable=False),
    Column("origin_tenant_id", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("rail", Text, nullable=False),
    Column("reference", Text),
    Column("purpose_code", Text),
    Column("fields", ARRAY(Text), nullable=False),
    Column("data_key_id", Text),
    Column("payee_sealed", LargeBinary),
    Column("status", Text, nullable=False),
    Column("hold_transfer_id", Text, nullable=False),
    Column("return_transfer_id", Text),
    Column("rail_reference", Text),
    Column("failure_code", Text),
    Column("failure_message", Text),
    _ts("return_due_at", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
)

settlement_obligations = Table(
    "settlement_obligations", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("peer", Text, nullable=False),
    Column("direction", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("payout_id", Text, nullable=False),
    _ts("occurred_at"),
    Column("batch_id", Text),
    _ts("created_at"),
)

settlement_batches = Table(
    "settlement_batches", regional,
    Column("region", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("peer", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("coordinator", Text, nullable=False),
    _ts("window_start"),
    _ts("window_end"),
    Column("payable_minor", BigInteger, nullable=False),
    Column("receivable_minor", BigInteger, nullable=False),
    Column("obligations", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("journal_id", Text),
    Column("dispute", Text),
    _ts("created_at"),
    _ts("settled_at", nullable=True),
)
