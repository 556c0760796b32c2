"""Key handling and erasure: a usage count per data key, retired keys, erasure, a control-plane
audit trail, and the origin of every audit row.

- ``data_keys.seals`` counts the values sealed under a shared data key, so a key is retired
  well before AES-GCM's bound on random nonces (``regions.sealing.seals_per_key_max``); a
  retired key keeps decrypting what it sealed. Erasure stamps ``destroyed_at``: an index on
  it lets every process notice erasures within a second.
- ``control_audit_events`` and ``control_audit_chain`` are the control plane's audit trail
  (policy changes, failed authentications, operators' commands), append-only and hash-chained
  like the regions' own.
- ``audit_events.origin``: the client address a mutation came from.
- ``tenants.erased_at``: when a tenant's personal data was shredded.
- ``outbox.trace_context``: the W3C trace context of the request that wrote the event, so its
  trace runs on through the relay, RabbitMQ and the workers.
"""

from regions.ddl import Index, Raw, TableDef

version = 6
name = "keys_and_erasure"

control = (
    TableDef("control_audit_events", """
        region TEXT NOT NULL,
        id TEXT NOT NULL,
        tenant_id TEXT,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        origin TEXT,
        PRIMARY KEY (region, id)""",
        indexes=(Index("control_audit_events_time_idx", "(region, created_at, id)"),)),
    TableDef("control_audit_chain", """
        region TEXT NOT NULL,
        seq BIGINT NOT NULL CHECK (seq > 0),
        event_id TEXT NOT NULL,
        event_created_at TIMESTAMPTZ NOT NULL,
        prev_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        chained_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (region, seq)""",
        indexes=(Index("control_audit_chain_event_idx", "(region, event_id)", unique=True),)),
    Raw("CREATE FUNCTION corridor_control_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', "
        "ERRCODE = '42501'; END $$"),
    Raw("CREATE TRIGGER control_audit_events_append_only BEFORE UPDATE OR DELETE ON "
        "control_audit_events FOR EACH ROW EXECUTE FUNCTION corridor_control_append_only()"),
    Raw("CREATE TRIGGER control_audit_chain_append_only BEFORE UPDATE OR DELETE ON "
        "control_audit_chain FOR EACH ROW EXECUTE FUNCTION corridor_control_append_only()"),
    Raw("ALTER TABLE tenants ADD COLUMN erased_at TIMESTAMPTZ"),
)

regional = (
    Raw("ALTER TABLE audit_events ADD COLUMN origin TEXT"),
    Raw("ALTER TABLE outbox ADD COLUMN trace_context TEXT"),
    Raw("ALTER TABLE data_keys ADD COLUMN seals BIGINT NOT NULL DEFAULT 0"),
    Raw("ALTER TABLE data_keys ADD COLUMN retired_at TIMESTAMPTZ"),
    Raw("CREATE INDEX data_keys_destroyed_idx ON data_keys (region, destroyed_at) "
        "WHERE destroyed_at IS NOT NULL"),
    Raw("CREATE INDEX data_keys_tenant_idx ON data_keys (region, tenant_id)"),
)
