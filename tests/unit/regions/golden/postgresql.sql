-- database: control
CREATE TABLE IF NOT EXISTS corridor_migrations (
    scope TEXT NOT NULL,
    version INT NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
);
CREATE TABLE regions (
    code TEXT NOT NULL PRIMARY KEY,
    jurisdictions TEXT[] NOT NULL,
    cloud TEXT NOT NULL,
    location TEXT NOT NULL,
    cluster TEXT NOT NULL,
    sovereign BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE tenants (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    jurisdiction TEXT NOT NULL,
    home_region TEXT NOT NULL REFERENCES regions (code),
    environment TEXT NOT NULL CHECK (environment IN ('test', 'live')),
    status TEXT NOT NULL DEFAULT 'active',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    role TEXT NOT NULL,
    key_hash BYTEA NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 1, 'initial');
CREATE TABLE fx_rates (
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    rate NUMERIC NOT NULL CHECK (rate > 0),
    as_of TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (base, quote)
);
CREATE TABLE fx_rates_held (
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    rate NUMERIC NOT NULL CHECK (rate > 0),
    previous_rate NUMERIC NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL,
    held_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (base, quote)
);
CREATE TABLE fx_refreshes (
    id TEXT NOT NULL PRIMARY KEY,
    message_id TEXT,
    source TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    rates_written INT NOT NULL DEFAULT 0,
    rates_held INT NOT NULL DEFAULT 0,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX fx_refreshes_created_idx ON fx_refreshes (created_at);
CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE TABLE scheduler_leases (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    last_fired_at TIMESTAMPTZ
);
ALTER TABLE tenants ADD COLUMN fx_spread_bps INT CHECK (fx_spread_bps BETWEEN 0 AND 1000);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 2, 'fx');
CREATE TABLE account_directory (
    routing_digest BYTEA NOT NULL PRIMARY KEY,
    region TEXT NOT NULL REFERENCES regions (code),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 3, 'money_out');
ALTER TABLE api_keys ADD COLUMN jurisdictions TEXT[];
CREATE TABLE policy_versions (
    jurisdiction TEXT NOT NULL,
    version INT NOT NULL CHECK (version > 0),
    parameters JSONB NOT NULL,
    effective_from TIMESTAMPTZ NOT NULL,
    change_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (jurisdiction, version)
);
CREATE TABLE policy_changes (
    id TEXT NOT NULL PRIMARY KEY,
    jurisdiction TEXT NOT NULL,
    base_version INT NOT NULL,
    changes JSONB NOT NULL,
    effective_from TIMESTAMPTZ,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    reason TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposal_key TEXT NOT NULL,
    proposed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_by TEXT,
    decided_at TIMESTAMPTZ,
    decision_note TEXT,
    decision_key TEXT,
    version INT,
    CHECK ((status = 'PENDING') = (decided_by IS NULL)),
    CHECK (decided_by IS NULL OR decided_by <> proposed_by),
    CHECK ((status = 'APPROVED') = (version IS NOT NULL))
);
CREATE INDEX policy_changes_status_idx ON policy_changes (status, id);
CREATE UNIQUE INDEX policy_changes_key_idx ON policy_changes (proposed_by, proposal_key);
CREATE UNIQUE INDEX policy_changes_decision_key_idx ON policy_changes (decided_by, decision_key) WHERE decision_key IS NOT NULL;
CREATE TABLE sanctions_lists (
    list_name TEXT NOT NULL CHECK (list_name IN ('ofac', 'eu', 'uk')),
    version INT NOT NULL CHECK (version > 0),
    file_format TEXT NOT NULL,
    file_sha256 BYTEA NOT NULL,
    entry_count INT NOT NULL CHECK (entry_count > 0),
    imported_by TEXT NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (list_name, version)
);
CREATE TABLE sanctions_entries (
    list_name TEXT NOT NULL,
    version INT NOT NULL,
    entry_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    names JSONB NOT NULL,
    dates_of_birth JSONB NOT NULL,
    programs JSONB NOT NULL,
    PRIMARY KEY (list_name, version, entry_id)
);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 4, 'policies');
ALTER TABLE api_keys ADD COLUMN label TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ;
ALTER TABLE api_keys ADD COLUMN created_by TEXT;
ALTER TABLE api_keys ADD COLUMN creation_key TEXT;
CREATE UNIQUE INDEX api_keys_creation_idx ON api_keys (created_by, creation_key) WHERE creation_key IS NOT NULL;
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, id);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 5, 'security');
CREATE TABLE control_audit_events (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    origin TEXT,
    PRIMARY KEY (region, id)
);
CREATE INDEX control_audit_events_time_idx ON control_audit_events (region, created_at, id);
CREATE TABLE control_audit_chain (
    region TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    event_id TEXT NOT NULL,
    event_created_at TIMESTAMPTZ NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    chained_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, seq)
);
CREATE UNIQUE INDEX control_audit_chain_event_idx ON control_audit_chain (region, event_id);
CREATE FUNCTION corridor_control_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', ERRCODE = '42501'; END $$;
CREATE TRIGGER control_audit_events_append_only BEFORE UPDATE OR DELETE ON control_audit_events FOR EACH ROW EXECUTE FUNCTION corridor_control_append_only();
CREATE TRIGGER control_audit_chain_append_only BEFORE UPDATE OR DELETE ON control_audit_chain FOR EACH ROW EXECUTE FUNCTION corridor_control_append_only();
ALTER TABLE tenants ADD COLUMN erased_at TIMESTAMPTZ;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 6, 'keys_and_erasure');
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 7, 'settlement');

-- database: cluster:global
CREATE TABLE IF NOT EXISTS corridor_migrations (
    scope TEXT NOT NULL,
    version INT NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
);
CREATE TABLE accounts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('customer', 'internal')),
    purpose TEXT,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    label TEXT,
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    debits_must_not_exceed_credits BOOLEAN NOT NULL,
    debits_posted BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending BIGINT NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending BIGINT NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    entry_seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT accounts_no_overdraft CHECK (
        NOT debits_must_not_exceed_credits
        OR debits_posted + debits_pending <= credits_posted),
    CONSTRAINT accounts_owner CHECK ((kind = 'customer') = (tenant_id IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX accounts_tenant_idx ON accounts (region, tenant_id, id);
CREATE UNIQUE INDEX accounts_internal_idx ON accounts (region, purpose, currency) WHERE kind = 'internal';
CREATE TABLE journals (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    kind TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE TABLE transfers (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    journal_id TEXT NOT NULL,
    tenant_id TEXT,
    debit_account_id TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'POSTED', 'VOIDED')),
    reference TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (debit_account_id <> credit_account_id),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX transfers_tenant_idx ON transfers (region, tenant_id, id);
CREATE TABLE entries (
    region TEXT NOT NULL,
    account_id TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    transfer_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('DEBIT', 'CREDIT')),
    phase TEXT NOT NULL CHECK (phase IN ('PENDING', 'POSTED', 'VOIDED')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, account_id, seq)
) PARTITION BY LIST (region);
CREATE TABLE idempotency_keys (
    region TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    response JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, tenant_id, key)
) PARTITION BY LIST (region);
CREATE TABLE outbox (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    topic TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX outbox_unpublished_idx ON outbox (region, id) WHERE published_at IS NULL;
CREATE TABLE audit_events (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 1, 'initial');
CREATE TABLE fx_quotes (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    sell_currency TEXT NOT NULL,
    buy_currency TEXT NOT NULL,
    sell_minor BIGINT NOT NULL CHECK (sell_minor > 0),
    buy_minor BIGINT NOT NULL CHECK (buy_minor > 0),
    mid_rate NUMERIC NOT NULL CHECK (mid_rate > 0),
    rate NUMERIC NOT NULL CHECK (rate > 0),
    spread_bps INT NOT NULL,
    rates_as_of TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'EXECUTED')),
    journal_id TEXT,
    executed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (sell_currency <> buy_currency),
    CHECK ((status = 'EXECUTED') = (journal_id IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX fx_quotes_tenant_idx ON fx_quotes (region, tenant_id, id);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 2, 'fx');
CREATE TABLE virtual_accounts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    country TEXT NOT NULL CHECK (length(country) = 2),
    scheme TEXT NOT NULL,
    iban TEXT,
    bic TEXT,
    bank_code TEXT,
    branch_code TEXT,
    account_number TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'CLOSED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((scheme = 'IBAN') = (iban IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX virtual_accounts_routing_idx ON virtual_accounts (region, routing_key);
CREATE INDEX virtual_accounts_account_idx ON virtual_accounts (region, tenant_id, account_id, id);
CREATE TABLE data_keys (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped_key BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    destroyed_at TIMESTAMPTZ,
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX data_keys_subject_idx ON data_keys (region, subject_id);
CREATE TABLE beneficiaries (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    country TEXT NOT NULL CHECK (length(country) = 2),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    bic TEXT,
    bank_code TEXT,
    account_mask TEXT NOT NULL,
    data_key_id TEXT NOT NULL,
    name_sealed BYTEA NOT NULL,
    iban_sealed BYTEA,
    account_number_sealed BYTEA,
    address_sealed BYTEA,
    status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'ERASED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX beneficiaries_tenant_idx ON beneficiaries (region, tenant_id, id);
CREATE TABLE payouts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    beneficiary_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    fee_minor BIGINT NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    reference TEXT,
    purpose_code TEXT,
    rail TEXT NOT NULL,
    rail_region TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'HELD_FOR_REVIEW', 'PROCESSING',
        'COMPLETED', 'FAILED', 'RETURNED', 'CANCELLED')),
    hold_transfer_id TEXT NOT NULL,
    fee_transfer_id TEXT,
    return_transfer_id TEXT,
    rail_reference TEXT,
    failure_code TEXT,
    failure_message TEXT,
    return_due_at TIMESTAMPTZ,
    batch_id TEXT,
    external_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((fee_minor > 0) = (fee_transfer_id IS NOT NULL)),
    CHECK (external_id IS NULL OR batch_id IS NOT NULL),
    CHECK ((status = 'RETURNED') = (return_transfer_id IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX payouts_tenant_idx ON payouts (region, tenant_id, id);
CREATE INDEX payouts_returns_due_idx ON payouts (region, return_due_at) WHERE status = 'COMPLETED' AND return_due_at IS NOT NULL;
CREATE INDEX payouts_batch_idx ON payouts (region, batch_id, id) WHERE batch_id IS NOT NULL;
CREATE UNIQUE INDEX payouts_external_idx ON payouts (region, batch_id, external_id) WHERE external_id IS NOT NULL;
CREATE TABLE payout_batches (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    item_count INT NOT NULL CHECK (item_count BETWEEN 0 AND 10000),
    rejected_count INT NOT NULL CHECK (rejected_count >= 0),
    status TEXT NOT NULL CHECK (status IN ('PROCESSING', 'COMPLETED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX payout_batches_tenant_idx ON payout_batches (region, tenant_id, id);
CREATE TABLE incoming_payments (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('SIMULATED', 'CAMT053', 'CSV')),
    routing_key TEXT NOT NULL,
    tenant_id TEXT,
    account_id TEXT,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    data_key_id TEXT NOT NULL,
    sender_name_sealed BYTEA,
    sender_iban_sealed BYTEA,
    reference TEXT,
    value_date DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('CREDITED', 'SUSPENSE', 'ASSIGNED', 'RETURNED',
        'REFUNDED')),
    suspense_reason TEXT,
    transfer_id TEXT,
    resolution_transfer_id TEXT,
    refund_payout_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'SUSPENSE') = (account_id IS NULL) OR status = 'RETURNED'),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX incoming_payments_bank_ref_idx ON incoming_payments (region, bank_reference);
CREATE INDEX incoming_payments_tenant_idx ON incoming_payments (region, tenant_id, id);
CREATE INDEX incoming_payments_suspense_idx ON incoming_payments (region, id) WHERE status = 'SUSPENSE';
CREATE TABLE webhook_endpoints (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    url TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events TEXT[] NOT NULL,
    data_key_id TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    previous_secret_sealed BYTEA,
    previous_expires_at TIMESTAMPTZ,
    status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'DISABLED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (region, tenant_id, id);
CREATE TABLE webhook_deliveries (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body BYTEA NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status_code INT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX webhook_deliveries_event_idx ON webhook_deliveries (region, endpoint_id, event_id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (region, next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_tenant_idx ON webhook_deliveries (region, tenant_id, id);
CREATE TABLE message_inbox (
    region TEXT NOT NULL,
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, consumer, message_id)
) PARTITION BY LIST (region);
CREATE INDEX outbox_relay_idx ON outbox (region, created_at, id) WHERE published_at IS NULL;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 3, 'money_out');
CREATE TABLE review_cases (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    jurisdictions TEXT[] NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reasons JSONB NOT NULL,
    status TEXT NOT NULL DEFAULT 'OPEN'
        CHECK (status IN ('OPEN', 'RELEASED', 'REJECTED', 'WITHDRAWN')),
    resolved_by TEXT,
    resolved_at TIMESTAMPTZ,
    note TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'OPEN') = (resolved_by IS NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX review_cases_status_idx ON review_cases (region, status, id);
CREATE UNIQUE INDEX review_cases_open_subject_idx ON review_cases (region, subject_id) WHERE status = 'OPEN';
CREATE TABLE limit_usage (
    region TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    count INT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (region, tenant_id, meter, scope, scope_id, period, period_start)
) PARTITION BY LIST (region);
ALTER TABLE payouts ADD COLUMN review_case_id TEXT;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 4, 'policies');
CREATE TABLE audit_chain (
    region TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    event_id TEXT NOT NULL,
    event_created_at TIMESTAMPTZ NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    chained_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, seq)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX audit_chain_event_idx ON audit_chain (region, event_id);
CREATE INDEX audit_events_time_idx ON audit_events (region, created_at, id);
CREATE FUNCTION corridor_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', ERRCODE = '42501'; END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION corridor_append_only();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain FOR EACH ROW EXECUTE FUNCTION corridor_append_only();
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 5, 'security');
ALTER TABLE audit_events ADD COLUMN origin TEXT;
ALTER TABLE outbox ADD COLUMN trace_context TEXT;
ALTER TABLE data_keys ADD COLUMN seals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE data_keys ADD COLUMN retired_at TIMESTAMPTZ;
CREATE INDEX data_keys_destroyed_idx ON data_keys (region, destroyed_at) WHERE destroyed_at IS NOT NULL;
CREATE INDEX data_keys_tenant_idx ON data_keys (region, tenant_id);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 6, 'keys_and_erasure');
CREATE TABLE xr_streams (
    region TEXT NOT NULL,
    peer TEXT NOT NULL,
    sent_seq BIGINT NOT NULL DEFAULT 0 CHECK (sent_seq >= 0),
    applied_seq BIGINT NOT NULL DEFAULT 0 CHECK (applied_seq >= 0),
    acked_seq BIGINT NOT NULL DEFAULT 0 CHECK (acked_seq >= 0),
    ack_sent_seq BIGINT NOT NULL DEFAULT 0 CHECK (ack_sent_seq >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (peer <> region::TEXT),
    PRIMARY KEY (region, peer)
) PARTITION BY LIST (region);
CREATE TABLE xr_outbox (
    region TEXT NOT NULL,
    peer TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    trace_context TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    published_at TIMESTAMPTZ,
    publishes INT NOT NULL DEFAULT 0,
    PRIMARY KEY (region, peer, seq)
) PARTITION BY LIST (region);
CREATE INDEX xr_outbox_unpublished_idx ON xr_outbox (region, peer, seq) WHERE published_at IS NULL;
CREATE TABLE xr_inbox (
    region TEXT NOT NULL,
    peer TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    trace_context TEXT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_at TIMESTAMPTZ,
    failures INT NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (region, peer, seq)
) PARTITION BY LIST (region);
CREATE INDEX xr_inbox_waiting_idx ON xr_inbox (region, peer, seq) WHERE applied_at IS NULL;
CREATE TABLE xr_payouts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    origin TEXT NOT NULL,
    origin_tenant_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    rail TEXT NOT NULL,
    reference TEXT,
    purpose_code TEXT,
    fields TEXT[] NOT NULL,
    data_key_id TEXT,
    payee_sealed BYTEA,
    status TEXT NOT NULL CHECK (status IN ('ACCEPTED', 'PROCESSING', 'COMPLETED', 'FAILED',
                                           'RETURNED')),
    hold_transfer_id TEXT NOT NULL,
    return_transfer_id TEXT,
    rail_reference TEXT,
    failure_code TEXT,
    failure_message TEXT,
    return_due_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX xr_payouts_status_idx ON xr_payouts (region, status, updated_at);
CREATE INDEX xr_payouts_return_idx ON xr_payouts (region, return_due_at) WHERE status = 'COMPLETED' AND return_due_at IS NOT NULL;
CREATE TABLE settlement_obligations (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('PAYABLE', 'RECEIVABLE')),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    payout_id TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    batch_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX settlement_obligations_open_idx ON settlement_obligations (region, peer, currency, occurred_at) WHERE batch_id IS NULL;
CREATE INDEX settlement_obligations_batch_idx ON settlement_obligations (region, batch_id) WHERE batch_id IS NOT NULL;
CREATE TABLE settlement_batches (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    peer TEXT NOT NULL,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    coordinator TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL CHECK (window_end > window_start),
    payable_minor BIGINT NOT NULL CHECK (payable_minor >= 0),
    receivable_minor BIGINT NOT NULL CHECK (receivable_minor >= 0),
    obligations INT NOT NULL CHECK (obligations >= 0),
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'SETTLED', 'DISPUTED')),
    journal_id TEXT,
    dispute TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX settlement_batches_pair_idx ON settlement_batches (region, peer, currency, window_end);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 7, 'settlement');
CREATE TABLE IF NOT EXISTS accounts__eu_central PARTITION OF accounts FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS accounts__uk_south PARTITION OF accounts FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS accounts__us_east PARTITION OF accounts FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS accounts__ap_southeast PARTITION OF accounts FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS journals__eu_central PARTITION OF journals FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS journals__uk_south PARTITION OF journals FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS journals__us_east PARTITION OF journals FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS journals__ap_southeast PARTITION OF journals FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS transfers__eu_central PARTITION OF transfers FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS transfers__uk_south PARTITION OF transfers FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS transfers__us_east PARTITION OF transfers FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS transfers__ap_southeast PARTITION OF transfers FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS entries__eu_central PARTITION OF entries FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS entries__uk_south PARTITION OF entries FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS entries__us_east PARTITION OF entries FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS entries__ap_southeast PARTITION OF entries FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS idempotency_keys__eu_central PARTITION OF idempotency_keys FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS idempotency_keys__uk_south PARTITION OF idempotency_keys FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS idempotency_keys__us_east PARTITION OF idempotency_keys FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS idempotency_keys__ap_southeast PARTITION OF idempotency_keys FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS outbox__eu_central PARTITION OF outbox FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS outbox__uk_south PARTITION OF outbox FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS outbox__us_east PARTITION OF outbox FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS outbox__ap_southeast PARTITION OF outbox FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS audit_events__eu_central PARTITION OF audit_events FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS audit_events__uk_south PARTITION OF audit_events FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS audit_events__us_east PARTITION OF audit_events FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS audit_events__ap_southeast PARTITION OF audit_events FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS fx_quotes__eu_central PARTITION OF fx_quotes FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS fx_quotes__uk_south PARTITION OF fx_quotes FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS fx_quotes__us_east PARTITION OF fx_quotes FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS fx_quotes__ap_southeast PARTITION OF fx_quotes FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS virtual_accounts__eu_central PARTITION OF virtual_accounts FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS virtual_accounts__uk_south PARTITION OF virtual_accounts FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS virtual_accounts__us_east PARTITION OF virtual_accounts FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS virtual_accounts__ap_southeast PARTITION OF virtual_accounts FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS data_keys__eu_central PARTITION OF data_keys FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS data_keys__uk_south PARTITION OF data_keys FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS data_keys__us_east PARTITION OF data_keys FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS data_keys__ap_southeast PARTITION OF data_keys FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS beneficiaries__eu_central PARTITION OF beneficiaries FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS beneficiaries__uk_south PARTITION OF beneficiaries FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS beneficiaries__us_east PARTITION OF beneficiaries FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS beneficiaries__ap_southeast PARTITION OF beneficiaries FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS payouts__eu_central PARTITION OF payouts FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS payouts__uk_south PARTITION OF payouts FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS payouts__us_east PARTITION OF payouts FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS payouts__ap_southeast PARTITION OF payouts FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS payout_batches__eu_central PARTITION OF payout_batches FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS payout_batches__uk_south PARTITION OF payout_batches FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS payout_batches__us_east PARTITION OF payout_batches FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS payout_batches__ap_southeast PARTITION OF payout_batches FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS incoming_payments__eu_central PARTITION OF incoming_payments FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS incoming_payments__uk_south PARTITION OF incoming_payments FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS incoming_payments__us_east PARTITION OF incoming_payments FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS incoming_payments__ap_southeast PARTITION OF incoming_payments FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS webhook_endpoints__eu_central PARTITION OF webhook_endpoints FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS webhook_endpoints__uk_south PARTITION OF webhook_endpoints FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS webhook_endpoints__us_east PARTITION OF webhook_endpoints FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS webhook_endpoints__ap_southeast PARTITION OF webhook_endpoints FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS webhook_deliveries__eu_central PARTITION OF webhook_deliveries FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS webhook_deliveries__uk_south PARTITION OF webhook_deliveries FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS webhook_deliveries__us_east PARTITION OF webhook_deliveries FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS webhook_deliveries__ap_southeast PARTITION OF webhook_deliveries FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS message_inbox__eu_central PARTITION OF message_inbox FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS message_inbox__uk_south PARTITION OF message_inbox FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS message_inbox__us_east PARTITION OF message_inbox FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS message_inbox__ap_southeast PARTITION OF message_inbox FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS review_cases__eu_central PARTITION OF review_cases FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS review_cases__uk_south PARTITION OF review_cases FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS review_cases__us_east PARTITION OF review_cases FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS review_cases__ap_southeast PARTITION OF review_cases FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS limit_usage__eu_central PARTITION OF limit_usage FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS limit_usage__uk_south PARTITION OF limit_usage FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS limit_usage__us_east PARTITION OF limit_usage FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS limit_usage__ap_southeast PARTITION OF limit_usage FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS audit_chain__eu_central PARTITION OF audit_chain FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS audit_chain__uk_south PARTITION OF audit_chain FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS audit_chain__us_east PARTITION OF audit_chain FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS audit_chain__ap_southeast PARTITION OF audit_chain FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS xr_streams__eu_central PARTITION OF xr_streams FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS xr_streams__uk_south PARTITION OF xr_streams FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS xr_streams__us_east PARTITION OF xr_streams FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS xr_streams__ap_southeast PARTITION OF xr_streams FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS xr_outbox__eu_central PARTITION OF xr_outbox FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS xr_outbox__uk_south PARTITION OF xr_outbox FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS xr_outbox__us_east PARTITION OF xr_outbox FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS xr_outbox__ap_southeast PARTITION OF xr_outbox FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS xr_inbox__eu_central PARTITION OF xr_inbox FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS xr_inbox__uk_south PARTITION OF xr_inbox FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS xr_inbox__us_east PARTITION OF xr_inbox FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS xr_inbox__ap_southeast PARTITION OF xr_inbox FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS xr_payouts__eu_central PARTITION OF xr_payouts FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS xr_payouts__uk_south PARTITION OF xr_payouts FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS xr_payouts__us_east PARTITION OF xr_payouts FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS xr_payouts__ap_southeast PARTITION OF xr_payouts FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS settlement_obligations__eu_central PARTITION OF settlement_obligations FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS settlement_obligations__uk_south PARTITION OF settlement_obligations FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS settlement_obligations__us_east PARTITION OF settlement_obligations FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS settlement_obligations__ap_southeast PARTITION OF settlement_obligations FOR VALUES IN ('ap-southeast');
CREATE TABLE IF NOT EXISTS settlement_batches__eu_central PARTITION OF settlement_batches FOR VALUES IN ('eu-central');
CREATE TABLE IF NOT EXISTS settlement_batches__uk_south PARTITION OF settlement_batches FOR VALUES IN ('uk-south');
CREATE TABLE IF NOT EXISTS settlement_batches__us_east PARTITION OF settlement_batches FOR VALUES IN ('us-east');
CREATE TABLE IF NOT EXISTS settlement_batches__ap_southeast PARTITION OF settlement_batches FOR VALUES IN ('ap-southeast');

-- database: cluster:cn
CREATE TABLE IF NOT EXISTS corridor_migrations (
    scope TEXT NOT NULL,
    version INT NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
);
CREATE TABLE accounts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('customer', 'internal')),
    purpose TEXT,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    label TEXT,
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    debits_must_not_exceed_credits BOOLEAN NOT NULL,
    debits_posted BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending BIGINT NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending BIGINT NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    entry_seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT accounts_no_overdraft CHECK (
        NOT debits_must_not_exceed_credits
        OR debits_posted + debits_pending <= credits_posted),
    CONSTRAINT accounts_owner CHECK ((kind = 'customer') = (tenant_id IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX accounts_tenant_idx ON accounts (region, tenant_id, id);
CREATE UNIQUE INDEX accounts_internal_idx ON accounts (region, purpose, currency) WHERE kind = 'internal';
CREATE TABLE journals (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    kind TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE TABLE transfers (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    journal_id TEXT NOT NULL,
    tenant_id TEXT,
    debit_account_id TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'POSTED', 'VOIDED')),
    reference TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (debit_account_id <> credit_account_id),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX transfers_tenant_idx ON transfers (region, tenant_id, id);
CREATE TABLE entries (
    region TEXT NOT NULL,
    account_id TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    transfer_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('DEBIT', 'CREDIT')),
    phase TEXT NOT NULL CHECK (phase IN ('PENDING', 'POSTED', 'VOIDED')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, account_id, seq)
) PARTITION BY LIST (region);
CREATE TABLE idempotency_keys (
    region TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    response JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, tenant_id, key)
) PARTITION BY LIST (region);
CREATE TABLE outbox (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    topic TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX outbox_unpublished_idx ON outbox (region, id) WHERE published_at IS NULL;
CREATE TABLE audit_events (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 1, 'initial');
CREATE TABLE fx_quotes (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    sell_currency TEXT NOT NULL,
    buy_currency TEXT NOT NULL,
    sell_minor BIGINT NOT NULL CHECK (sell_minor > 0),
    buy_minor BIGINT NOT NULL CHECK (buy_minor > 0),
    mid_rate NUMERIC NOT NULL CHECK (mid_rate > 0),
    rate NUMERIC NOT NULL CHECK (rate > 0),
    spread_bps INT NOT NULL,
    rates_as_of TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'EXECUTED')),
    journal_id TEXT,
    executed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (sell_currency <> buy_currency),
    CHECK ((status = 'EXECUTED') = (journal_id IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX fx_quotes_tenant_idx ON fx_quotes (region, tenant_id, id);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 2, 'fx');
CREATE TABLE virtual_accounts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    country TEXT NOT NULL CHECK (length(country) = 2),
    scheme TEXT NOT NULL,
    iban TEXT,
    bic TEXT,
    bank_code TEXT,
    branch_code TEXT,
    account_number TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'CLOSED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((scheme = 'IBAN') = (iban IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX virtual_accounts_routing_idx ON virtual_accounts (region, routing_key);
CREATE INDEX virtual_accounts_account_idx ON virtual_accounts (region, tenant_id, account_id, id);
CREATE TABLE data_keys (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped_key BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    destroyed_at TIMESTAMPTZ,
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX data_keys_subject_idx ON data_keys (region, subject_id);
CREATE TABLE beneficiaries (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    country TEXT NOT NULL CHECK (length(country) = 2),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    bic TEXT,
    bank_code TEXT,
    account_mask TEXT NOT NULL,
    data_key_id TEXT NOT NULL,
    name_sealed BYTEA NOT NULL,
    iban_sealed BYTEA,
    account_number_sealed BYTEA,
    address_sealed BYTEA,
    status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'ERASED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX beneficiaries_tenant_idx ON beneficiaries (region, tenant_id, id);
CREATE TABLE payouts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    beneficiary_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    fee_minor BIGINT NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    reference TEXT,
    purpose_code TEXT,
    rail TEXT NOT NULL,
    rail_region TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'HELD_FOR_REVIEW', 'PROCESSING',
        'COMPLETED', 'FAILED', 'RETURNED', 'CANCELLED')),
    hold_transfer_id TEXT NOT NULL,
    fee_transfer_id TEXT,
    return_transfer_id TEXT,
    rail_reference TEXT,
    failure_code TEXT,
    failure_message TEXT,
    return_due_at TIMESTAMPTZ,
    batch_id TEXT,
    external_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((fee_minor > 0) = (fee_transfer_id IS NOT NULL)),
    CHECK (external_id IS NULL OR batch_id IS NOT NULL),
    CHECK ((status = 'RETURNED') = (return_transfer_id IS NOT NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX payouts_tenant_idx ON payouts (region, tenant_id, id);
CREATE INDEX payouts_returns_due_idx ON payouts (region, return_due_at) WHERE status = 'COMPLETED' AND return_due_at IS NOT NULL;
CREATE INDEX payouts_batch_idx ON payouts (region, batch_id, id) WHERE batch_id IS NOT NULL;
CREATE UNIQUE INDEX payouts_external_idx ON payouts (region, batch_id, external_id) WHERE external_id IS NOT NULL;
CREATE TABLE payout_batches (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    item_count INT NOT NULL CHECK (item_count BETWEEN 0 AND 10000),
    rejected_count INT NOT NULL CHECK (rejected_count >= 0),
    status TEXT NOT NULL CHECK (status IN ('PROCESSING', 'COMPLETED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX payout_batches_tenant_idx ON payout_batches (region, tenant_id, id);
CREATE TABLE incoming_payments (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('SIMULATED', 'CAMT053', 'CSV')),
    routing_key TEXT NOT NULL,
    tenant_id TEXT,
    account_id TEXT,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    data_key_id TEXT NOT NULL,
    sender_name_sealed BYTEA,
    sender_iban_sealed BYTEA,
    reference TEXT,
    value_date DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('CREDITED', 'SUSPENSE', 'ASSIGNED', 'RETURNED',
        'REFUNDED')),
    suspense_reason TEXT,
    transfer_id TEXT,
    resolution_transfer_id TEXT,
    refund_payout_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'SUSPENSE') = (account_id IS NULL) OR status = 'RETURNED'),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX incoming_payments_bank_ref_idx ON incoming_payments (region, bank_reference);
CREATE INDEX incoming_payments_tenant_idx ON incoming_payments (region, tenant_id, id);
CREATE INDEX incoming_payments_suspense_idx ON incoming_payments (region, id) WHERE status = 'SUSPENSE';
CREATE TABLE webhook_endpoints (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    url TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events TEXT[] NOT NULL,
    data_key_id TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    previous_secret_sealed BYTEA,
    previous_expires_at TIMESTAMPTZ,
    status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'DISABLED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (region, tenant_id, id);
CREATE TABLE webhook_deliveries (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body BYTEA NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status_code INT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX webhook_deliveries_event_idx ON webhook_deliveries (region, endpoint_id, event_id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (region, next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_tenant_idx ON webhook_deliveries (region, tenant_id, id);
CREATE TABLE message_inbox (
    region TEXT NOT NULL,
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, consumer, message_id)
) PARTITION BY LIST (region);
CREATE INDEX outbox_relay_idx ON outbox (region, created_at, id) WHERE published_at IS NULL;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 3, 'money_out');
CREATE TABLE review_cases (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    jurisdictions TEXT[] NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reasons JSONB NOT NULL,
    status TEXT NOT NULL DEFAULT 'OPEN'
        CHECK (status IN ('OPEN', 'RELEASED', 'REJECTED', 'WITHDRAWN')),
    resolved_by TEXT,
    resolved_at TIMESTAMPTZ,
    note TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'OPEN') = (resolved_by IS NULL)),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX review_cases_status_idx ON review_cases (region, status, id);
CREATE UNIQUE INDEX review_cases_open_subject_idx ON review_cases (region, subject_id) WHERE status = 'OPEN';
CREATE TABLE limit_usage (
    region TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    count INT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (region, tenant_id, meter, scope, scope_id, period, period_start)
) PARTITION BY LIST (region);
ALTER TABLE payouts ADD COLUMN review_case_id TEXT;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 4, 'policies');
CREATE TABLE audit_chain (
    region TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    event_id TEXT NOT NULL,
    event_created_at TIMESTAMPTZ NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    chained_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, seq)
) PARTITION BY LIST (region);
CREATE UNIQUE INDEX audit_chain_event_idx ON audit_chain (region, event_id);
CREATE INDEX audit_events_time_idx ON audit_events (region, created_at, id);
CREATE FUNCTION corridor_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', ERRCODE = '42501'; END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION corridor_append_only();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain FOR EACH ROW EXECUTE FUNCTION corridor_append_only();
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 5, 'security');
ALTER TABLE audit_events ADD COLUMN origin TEXT;
ALTER TABLE outbox ADD COLUMN trace_context TEXT;
ALTER TABLE data_keys ADD COLUMN seals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE data_keys ADD COLUMN retired_at TIMESTAMPTZ;
CREATE INDEX data_keys_destroyed_idx ON data_keys (region, destroyed_at) WHERE destroyed_at IS NOT NULL;
CREATE INDEX data_keys_tenant_idx ON data_keys (region, tenant_id);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 6, 'keys_and_erasure');
CREATE TABLE xr_streams (
    region TEXT NOT NULL,
    peer TEXT NOT NULL,
    sent_seq BIGINT NOT NULL DEFAULT 0 CHECK (sent_seq >= 0),
    applied_seq BIGINT NOT NULL DEFAULT 0 CHECK (applied_seq >= 0),
    acked_seq BIGINT NOT NULL DEFAULT 0 CHECK (acked_seq >= 0),
    ack_sent_seq BIGINT NOT NULL DEFAULT 0 CHECK (ack_sent_seq >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (peer <> region::TEXT),
    PRIMARY KEY (region, peer)
) PARTITION BY LIST (region);
CREATE TABLE xr_outbox (
    region TEXT NOT NULL,
    peer TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    trace_context TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    published_at TIMESTAMPTZ,
    publishes INT NOT NULL DEFAULT 0,
    PRIMARY KEY (region, peer, seq)
) PARTITION BY LIST (region);
CREATE INDEX xr_outbox_unpublished_idx ON xr_outbox (region, peer, seq) WHERE published_at IS NULL;
CREATE TABLE xr_inbox (
    region TEXT NOT NULL,
    peer TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    trace_context TEXT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_at TIMESTAMPTZ,
    failures INT NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (region, peer, seq)
) PARTITION BY LIST (region);
CREATE INDEX xr_inbox_waiting_idx ON xr_inbox (region, peer, seq) WHERE applied_at IS NULL;
CREATE TABLE xr_payouts (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    origin TEXT NOT NULL,
    origin_tenant_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    rail TEXT NOT NULL,
    reference TEXT,
    purpose_code TEXT,
    fields TEXT[] NOT NULL,
    data_key_id TEXT,
    payee_sealed BYTEA,
    status TEXT NOT NULL CHECK (status IN ('ACCEPTED', 'PROCESSING', 'COMPLETED', 'FAILED',
                                           'RETURNED')),
    hold_transfer_id TEXT NOT NULL,
    return_transfer_id TEXT,
    rail_reference TEXT,
    failure_code TEXT,
    failure_message TEXT,
    return_due_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX xr_payouts_status_idx ON xr_payouts (region, status, updated_at);
CREATE INDEX xr_payouts_return_idx ON xr_payouts (region, return_due_at) WHERE status = 'COMPLETED' AND return_due_at IS NOT NULL;
CREATE TABLE settlement_obligations (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('PAYABLE', 'RECEIVABLE')),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    payout_id TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    batch_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX settlement_obligations_open_idx ON settlement_obligations (region, peer, currency, occurred_at) WHERE batch_id IS NULL;
CREATE INDEX settlement_obligations_batch_idx ON settlement_obligations (region, batch_id) WHERE batch_id IS NOT NULL;
CREATE TABLE settlement_batches (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    peer TEXT NOT NULL,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    coordinator TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL CHECK (window_end > window_start),
    payable_minor BIGINT NOT NULL CHECK (payable_minor >= 0),
    receivable_minor BIGINT NOT NULL CHECK (receivable_minor >= 0),
    obligations INT NOT NULL CHECK (obligations >= 0),
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'SETTLED', 'DISPUTED')),
    journal_id TEXT,
    dispute TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE INDEX settlement_batches_pair_idx ON settlement_batches (region, peer, currency, window_end);
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 7, 'settlement');
CREATE TABLE IF NOT EXISTS accounts__cn_east PARTITION OF accounts FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS journals__cn_east PARTITION OF journals FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS transfers__cn_east PARTITION OF transfers FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS entries__cn_east PARTITION OF entries FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS idempotency_keys__cn_east PARTITION OF idempotency_keys FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS outbox__cn_east PARTITION OF outbox FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS audit_events__cn_east PARTITION OF audit_events FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS fx_quotes__cn_east PARTITION OF fx_quotes FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS virtual_accounts__cn_east PARTITION OF virtual_accounts FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS data_keys__cn_east PARTITION OF data_keys FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS beneficiaries__cn_east PARTITION OF beneficiaries FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS payouts__cn_east PARTITION OF payouts FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS payout_batches__cn_east PARTITION OF payout_batches FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS incoming_payments__cn_east PARTITION OF incoming_payments FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS webhook_endpoints__cn_east PARTITION OF webhook_endpoints FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS webhook_deliveries__cn_east PARTITION OF webhook_deliveries FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS message_inbox__cn_east PARTITION OF message_inbox FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS review_cases__cn_east PARTITION OF review_cases FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS limit_usage__cn_east PARTITION OF limit_usage FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS audit_chain__cn_east PARTITION OF audit_chain FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS xr_streams__cn_east PARTITION OF xr_streams FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS xr_outbox__cn_east PARTITION OF xr_outbox FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS xr_inbox__cn_east PARTITION OF xr_inbox FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS xr_payouts__cn_east PARTITION OF xr_payouts FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS settlement_obligations__cn_east PARTITION OF settlement_obligations FOR VALUES IN ('cn-east');
CREATE TABLE IF NOT EXISTS settlement_batches__cn_east PARTITION OF settlement_batches FOR VALUES IN ('cn-east');
