"""Cross-region settlement: message streams between regions, payouts paid for another region,
obligations, and the netted settlement batches.

- ``xr_streams``: one row per (region, peer) holding the sequence numbers of the two one-way
  streams between them: ``sent_seq`` (last number given to a message for the peer),
  ``applied_seq`` (last message from the peer applied here, in order), ``acked_seq`` (last of
  ours the peer says it applied) and ``ack_sent_seq`` (last ``applied_seq`` we told the peer).
- ``xr_outbox``: messages for a peer, numbered per stream in the transaction of their effect;
  the settlement relay publishes them in order to the peer's vhost.
- ``xr_inbox``: messages received from a peer, kept by number; applied strictly in order, in
  the transaction of their effect, so a duplicate or an early arrival has no effect of its own;
  a message whose effect fails is kept with its error (``failures``, ``last_error``).
- ``xr_payouts``: payouts this region pays on its rail for a tenant of another region; the
  payee's details arrive sealed under a data key wrapped by this region's key.
- ``settlement_obligations``: what one region owes another per payout (and per return), the
  same row on both sides, with the time the paying region's rail acted.
- ``settlement_batches``: obligations of a region pair and currency netted per window, one row
  on each side; ``stb`` ids are deterministic per pair, currency and window, so two netting
  jobs cannot make two batches.
"""

from regions.ddl import Index, TableDef

version = 7
name = "settlement"

control = ()

regional = (
    TableDef("xr_streams", """
        region {region_type} NOT NULL,
        peer TEXT NOT NULL,
        sent_seq BIGINT NOT NULL DEFAULT 0 CHECK (sent_seq >= 0),
        applied_seq BIGINT NOT NULL DEFAULT 0 CHECK (applied_seq >= 0),
        acked_seq BIGINT NOT NULL DEFAULT 0 CHECK (acked_seq >= 0),
        ack_sent_seq BIGINT NOT NULL DEFAULT 0 CHECK (ack_sent_seq >= 0),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        CHECK (peer <> region::TEXT),
        PRIMARY KEY (region, peer)"""),
    TableDef("xr_outbox", """
        region {region_type} NOT NULL,
        peer TEXT NOT NULL,
        seq BIGINT NOT NULL CHECK (seq > 0),
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload JSONB NOT NULL,
        trace_context TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        published_at TIMESTAMPTZ,
        publishes INT NOT NULL DEFAULT 0,
        PRIMARY KEY (region, peer, seq)""",
        indexes=(Index("xr_outbox_unpublished_idx", "(region, peer, seq)",
                       where="published_at IS NULL"),)),
    TableDef("xr_inbox", """
        region {region_type} NOT NULL,
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
        PRIMARY KEY (region, peer, seq)""",
        indexes=(Index("xr_inbox_waiting_idx", "(region, peer, seq)",
                       where="applied_at IS NULL"),)),
    TableDef("xr_payouts", """
        region {region_type} NOT NULL,
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
        PRIMARY KEY (region, id)""",
        indexes=(Index("xr_payouts_status_idx", "(region, status, updated_at)"),
                 Index("xr_payouts_return_idx", "(region, return_due_at)",
                       where="status = 'COMPLETED' AND return_due_at IS NOT NULL"))),
    TableDef("settlement_obligations", """
        region {region_type} NOT NULL,
        id TEXT NOT NULL,
        peer TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('PAYABLE', 'RECEIVABLE')),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
        payout_id TEXT NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL,
        batch_id TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (region, id)""",
        indexes=(Index("settlement_obligations_open_idx", "(region, peer, currency, occurred_at)",
                       where="batch_id IS NULL"),
                 Index("settlement_obligations_batch_idx", "(region, batch_id)",
                       where="batch_id IS NOT NULL"))),
    TableDef("settlement_batches", """
        region {region_type} NOT NULL,
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
        PRIMARY KEY (region, id)""",
        indexes=(Index("settlement_batches_pair_idx", "(region, peer, currency, window_end)"),)),
)
