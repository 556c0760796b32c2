"""FX: reference rates (global), refresh log, inbox, scheduler leases, quotes (regional)."""

from regions.ddl import Index, Raw, TableDef

version = 2
name = "fx"

control = (
    TableDef("fx_rates", """
        base TEXT NOT NULL,
        quote TEXT NOT NULL,
        rate NUMERIC NOT NULL CHECK (rate > 0),
        as_of TIMESTAMPTZ NOT NULL,
        source TEXT NOT NULL,
        refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (base, quote)"""),
    TableDef("fx_rates_held", """
        base TEXT NOT NULL,
        quote TEXT NOT NULL,
        rate NUMERIC NOT NULL CHECK (rate > 0),
        previous_rate NUMERIC NOT NULL,
        as_of TIMESTAMPTZ NOT NULL,
        source TEXT NOT NULL,
        held_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (base, quote)"""),
    TableDef("fx_refreshes", """
        id TEXT NOT NULL PRIMARY KEY,
        message_id TEXT,
        source TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        rates_written INT NOT NULL DEFAULT 0,
        rates_held INT NOT NULL DEFAULT 0,
        error TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()""",
        indexes=(Index("fx_refreshes_created_idx", "(created_at)"),)),
    TableDef("inbox", """
        consumer TEXT NOT NULL,
        message_id TEXT NOT NULL,
        processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, message_id)"""),
    TableDef("scheduler_leases", """
        name TEXT NOT NULL PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        last_fired_at TIMESTAMPTZ"""),
    Raw("ALTER TABLE tenants ADD COLUMN fx_spread_bps INT "
        "CHECK (fx_spread_bps BETWEEN 0 AND 1000)"),
)

regional = (
    TableDef("fx_quotes", """
        region {region_type} NOT NULL,
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
        PRIMARY KEY (region, id)""",
        indexes=(Index("fx_quotes_tenant_idx", "(region, tenant_id, id)"),)),
)
