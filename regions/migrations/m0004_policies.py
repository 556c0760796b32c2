"""Jurisdiction policies: the versioned parameter store and its maker-checker change requests,
sanctions lists, compliance officers' jurisdiction scopes; and per region the review cases and
the usage counters that limits are checked against. Decisions are recorded in the audit log."""

from regions.ddl import Index, Raw, TableDef

version = 4
name = "policies"

control = (
    Raw("ALTER TABLE api_keys ADD COLUMN jurisdictions TEXT[]"),
    # One row per approved version; version 0 is the defaults in code and has no row.
    TableDef("policy_versions", """
        jurisdiction TEXT NOT NULL,
        version INT NOT NULL CHECK (version > 0),
        parameters JSONB NOT NULL,
        effective_from TIMESTAMPTZ NOT NULL,
        change_id TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (jurisdiction, version)"""),
    TableDef("policy_changes", """
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
        CHECK ((status = 'APPROVED') = (version IS NOT NULL))""",
        indexes=(
            Index("policy_changes_status_idx", "(status, id)"),
            Index("policy_changes_key_idx", "(proposed_by, proposal_key)", unique=True),
            Index("policy_changes_decision_key_idx", "(decided_by, decision_key)", unique=True,
                  where="decision_key IS NOT NULL"),
        )),
    TableDef("sanctions_lists", """
        list_name TEXT NOT NULL CHECK (list_name IN ('ofac', 'eu', 'uk')),
        version INT NOT NULL CHECK (version > 0),
        file_format TEXT NOT NULL,
        file_sha256 BYTEA NOT NULL,
        entry_count INT NOT NULL CHECK (entry_count > 0),
        imported_by TEXT NOT NULL,
        imported_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (list_name, version)"""),
    TableDef("sanctions_entries", """
        list_name TEXT NOT NULL,
        version INT NOT NULL,
        entry_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        names JSONB NOT NULL,
        dates_of_birth JSONB NOT NULL,
        programs JSONB NOT NULL,
        PRIMARY KEY (list_name, version, entry_id)"""),
)

regional = (
    TableDef("review_cases", """
        region {region_type} NOT NULL,
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
        PRIMARY KEY (region, id)""",
        indexes=(
            Index("review_cases_status_idx", "(region, status, id)"),
            Index("review_cases_open_subject_idx", "(region, subject_id)", unique=True,
                  where="status = 'OPEN'"),
        )),
    TableDef("limit_usage", """
        region {region_type} NOT NULL,
        tenant_id TEXT NOT NULL,
        meter TEXT NOT NULL,
        scope TEXT NOT NULL,
        scope_id TEXT NOT NULL,
        period TEXT NOT NULL,
        period_start TIMESTAMPTZ NOT NULL,
        currency TEXT NOT NULL,
        amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
        count INT NOT NULL CHECK (count >= 0),
        PRIMARY KEY (region, tenant_id, meter, scope, scope_id, period, period_start)"""),
    Raw("ALTER TABLE payouts ADD COLUMN review_case_id TEXT"),
)
