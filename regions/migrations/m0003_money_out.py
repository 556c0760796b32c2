"""Money in and out: virtual account details and their directory, data keys, beneficiaries,
payouts, and the regional inbox of message consumers."""

from regions.ddl import Index, Raw, TableDef

version = 3
name = "money_out"

control = (
    # Which region owns a virtual account, by a keyed digest of its routing key (IBAN or local
    # details): routable without scanning regions, and no account number in the global plane.
    TableDef("account_directory", """
        routing_digest BYTEA NOT NULL PRIMARY KEY,
        region TEXT NOT NULL REFERENCES regions (code),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()"""),
)

regional = (
    TableDef("virtual_accounts", """
        region {region_type} NOT NULL,
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
        PRIMARY KEY (region, id)""",
        indexes=(
            Index("virtual_accounts_routing_idx", "(region, routing_key)", unique=True),
            Index("virtual_accounts_account_idx", "(region, tenant_id, account_id, id)"),
        )),
    TableDef("data_keys", """
        region {region_type} NOT NULL,
        id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        kek_id TEXT NOT NULL,
        wrapped_key BYTEA,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        destroyed_at TIMESTAMPTZ,
        CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL)),
        PRIMARY KEY (region, id)""",
        indexes=(Index("data_keys_subject_idx", "(region, subject_id)", unique=True),)),
    TableDef("beneficiaries", """
        region {region_type} NOT NULL,
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
        PRIMARY KEY (region, id)""",
        indexes=(Index("beneficiaries_tenant_idx", "(region, tenant_id, id)"),)),
    TableDef("payouts", """
        region {region_type} NOT NULL,
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
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        CHECK ((fee_minor > 0) = (fee_transfer_id IS NOT NULL)),
        CHECK ((status = 'RETURNED') = (return_transfer_id IS NOT NULL)),
        PRIMARY KEY (region, id)""",
        indexes=(
            Index("payouts_tenant_idx", "(region, tenant_id, id)"),
            Index("payouts_returns_due_idx", "(region, return_due_at)",
                  where="status = 'COMPLETED' AND return_due_at IS NOT NULL"),
        )),
    TableDef("message_inbox", """
        region {region_type} NOT NULL,
        consumer TEXT NOT NULL,
        message_id TEXT NOT NULL,
        processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (region, consumer, message_id)"""),
    # The relay reads unpublished events in the order they were written.
    Raw("CREATE INDEX outbox_relay_idx ON outbox (region, created_at, id) "
        "WHERE published_at IS NULL"),
)
