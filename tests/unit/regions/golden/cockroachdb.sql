-- database: control
ALTER DATABASE corridor SET PRIMARY REGION "eu-central";
ALTER DATABASE corridor ADD REGION IF NOT EXISTS "uk-south";
ALTER DATABASE corridor ADD REGION IF NOT EXISTS "us-east";
ALTER DATABASE corridor ADD REGION IF NOT EXISTS "ap-southeast";
CREATE TABLE IF NOT EXISTS corridor_migrations (
    scope TEXT NOT NULL,
    version INT NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
) LOCALITY GLOBAL;
CREATE TABLE regions (
    code TEXT NOT NULL PRIMARY KEY,
    jurisdictions TEXT[] NOT NULL,
    cloud TEXT NOT NULL,
    location TEXT NOT NULL,
    cluster TEXT NOT NULL,
    sovereign BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
) LOCALITY GLOBAL;
CREATE TABLE tenants (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    jurisdiction TEXT NOT NULL,
    home_region TEXT NOT NULL REFERENCES regions (code),
    environment TEXT NOT NULL CHECK (environment IN ('test', 'live')),
    status TEXT NOT NULL DEFAULT 'active',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
) LOCALITY GLOBAL;
CREATE TABLE api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    role TEXT NOT NULL,
    key_hash BYTEA NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
) LOCALITY GLOBAL;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('control', 1, 'initial');

-- database: cluster:global
ALTER DATABASE corridor SET PRIMARY REGION "eu-central";
ALTER DATABASE corridor ADD REGION IF NOT EXISTS "uk-south";
ALTER DATABASE corridor ADD REGION IF NOT EXISTS "us-east";
ALTER DATABASE corridor ADD REGION IF NOT EXISTS "ap-southeast";
CREATE TABLE IF NOT EXISTS corridor_migrations (
    scope TEXT NOT NULL,
    version INT NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
) LOCALITY GLOBAL;
CREATE TABLE accounts (
    region crdb_internal_region NOT NULL,
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
) LOCALITY REGIONAL BY ROW AS region;
CREATE INDEX accounts_tenant_idx ON accounts (region, tenant_id, id);
CREATE UNIQUE INDEX accounts_internal_idx ON accounts (region, purpose, currency) WHERE kind = 'internal';
CREATE TABLE journals (
    region crdb_internal_region NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    kind TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) LOCALITY REGIONAL BY ROW AS region;
CREATE TABLE transfers (
    region crdb_internal_region NOT NULL,
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
) LOCALITY REGIONAL BY ROW AS region;
CREATE INDEX transfers_tenant_idx ON transfers (region, tenant_id, id);
CREATE TABLE entries (
    region crdb_internal_region NOT NULL,
    account_id TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    transfer_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('DEBIT', 'CREDIT')),
    phase TEXT NOT NULL CHECK (phase IN ('PENDING', 'POSTED', 'VOIDED')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, account_id, seq)
) LOCALITY REGIONAL BY ROW AS region;
CREATE TABLE idempotency_keys (
    region crdb_internal_region NOT NULL,
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    response JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, tenant_id, key)
) LOCALITY REGIONAL BY ROW AS region;
CREATE TABLE outbox (
    region crdb_internal_region NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    topic TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) LOCALITY REGIONAL BY ROW AS region;
CREATE INDEX outbox_unpublished_idx ON outbox (region, id) WHERE published_at IS NULL;
CREATE TABLE audit_events (
    region crdb_internal_region NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) LOCALITY REGIONAL BY ROW AS region;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:global', 1, 'initial');

-- database: cluster:cn
ALTER DATABASE corridor SET PRIMARY REGION "cn-east";
CREATE TABLE IF NOT EXISTS corridor_migrations (
    scope TEXT NOT NULL,
    version INT NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
) LOCALITY GLOBAL;
CREATE TABLE accounts (
    region crdb_internal_region NOT NULL,
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
) LOCALITY REGIONAL BY ROW AS region;
CREATE INDEX accounts_tenant_idx ON accounts (region, tenant_id, id);
CREATE UNIQUE INDEX accounts_internal_idx ON accounts (region, purpose, currency) WHERE kind = 'internal';
CREATE TABLE journals (
    region crdb_internal_region NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    kind TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) LOCALITY REGIONAL BY ROW AS region;
CREATE TABLE transfers (
    region crdb_internal_region NOT NULL,
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
) LOCALITY REGIONAL BY ROW AS region;
CREATE INDEX transfers_tenant_idx ON transfers (region, tenant_id, id);
CREATE TABLE entries (
    region crdb_internal_region NOT NULL,
    account_id TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    transfer_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('DEBIT', 'CREDIT')),
    phase TEXT NOT NULL CHECK (phase IN ('PENDING', 'POSTED', 'VOIDED')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, account_id, seq)
) LOCALITY REGIONAL BY ROW AS region;
CREATE TABLE idempotency_keys (
    region crdb_internal_region NOT NULL,
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    response JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, tenant_id, key)
) LOCALITY REGIONAL BY ROW AS region;
CREATE TABLE outbox (
    region crdb_internal_region NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    topic TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    PRIMARY KEY (region, id)
) LOCALITY REGIONAL BY ROW AS region;
CREATE INDEX outbox_unpublished_idx ON outbox (region, id) WHERE published_at IS NULL;
CREATE TABLE audit_events (
    region crdb_internal_region NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (region, id)
) LOCALITY REGIONAL BY ROW AS region;
INSERT INTO corridor_migrations (scope, version, name) VALUES ('cluster:cn', 1, 'initial');
