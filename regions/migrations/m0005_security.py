"""Security: a tamper-evident audit trail, and API keys that partners manage.

The audit log and its hash chain are append-only (a trigger refuses UPDATE and DELETE on both,
on both engines), and ``audit_chain`` links every audit row of a region to the one before it
by SHA-256, written behind the writers by the chaining job (``regions.audit_chain``), so
appending stays one insert and never waits for a chain head. API keys gain a label, an expiry,
a last-used time, and who created them under which idempotency key."""

from regions.ddl import Index, Raw, TableDef

version = 5
name = "security"

control = (
    Raw("ALTER TABLE api_keys ADD COLUMN label TEXT"),
    Raw("ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ"),
    Raw("ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ"),
    Raw("ALTER TABLE api_keys ADD COLUMN created_by TEXT"),
    Raw("ALTER TABLE api_keys ADD COLUMN creation_key TEXT"),
    Raw("CREATE UNIQUE INDEX api_keys_creation_idx ON api_keys (created_by, creation_key) "
        "WHERE creation_key IS NOT NULL"),
    Raw("CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, id)"),
)

_refuse = Raw("CREATE FUNCTION corridor_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
              "BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', "
              "ERRCODE = '42501'; END $$")

regional = (
    TableDef("audit_chain", """
        region {region_type} NOT NULL,
        seq BIGINT NOT NULL CHECK (seq > 0),
        event_id TEXT NOT NULL,
        event_created_at TIMESTAMPTZ NOT NULL,
        prev_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        chained_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (region, seq)""",
        indexes=(Index("audit_chain_event_idx", "(region, event_id)", unique=True),)),
    Raw("CREATE INDEX audit_events_time_idx ON audit_events (region, created_at, id)"),
    _refuse,
    Raw("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION corridor_append_only()"),
    Raw("CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain "
        "FOR EACH ROW EXECUTE FUNCTION corridor_append_only()"),
)
