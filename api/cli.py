"""The ``corridor`` command line.

    corridor dev                          embedded PostgreSQL + migrations + demo data + GraphQL
    corridor serve [--tls-cert CERT --tls-key KEY]   the API (TLS 1.3 only with the flags)
    corridor migrate [--dry-run --dialect cockroachdb|postgresql]
    corridor tenant create NAME --jurisdiction EU [--region R] [--environment test|live]
    corridor tenant set-fx-spread TENANT_ID BPS|default
    corridor apikey create --tenant ID --role ROLE
    corridor schema export [--check] | access-docs
    corridor worker [--threads N]         RabbitMQ workers (AMQP_URL)
    corridor scheduler                    fires periodic jobs (FX refresh, returns) under a lease
    corridor relay                        publishes every region's outbox to RabbitMQ
    corridor fx refresh                   send one FX refresh message now
    corridor statements import FILE --region R [--format camt053|csv]
    corridor statements reconcile FILE --region R [--tolerance-days N] [--export json|csv]
    corridor apikey create --tenant ID --role compliance_officer --jurisdictions EU,UK
    corridor sanctions import FILE --list ofac|eu|uk [--format csv|xml]
    corridor policy show J | changes | propose J --set NAME=JSON ... | approve ID | reject ID
    corridor policy docs [--check]        docs/policies.md from the code
    corridor audit verify [--region R] [--expect-heads FILE] | export-head [--region R]
    corridor keys rotate --region R [--settle-s S] | status [--region R]
    corridor tenant erase TENANT_ID --reason TEXT
    corridor settlement run [--region R ...] | net | streams
    corridor reconcile [--region-a A --region-b B --currency C] [--export csv] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from api import audit_cli, compliance_cli, ledger_cli, queues_cli, security_cli, settlement_cli
from payments.errors import DomainError, PolicyDenied
from payments.principal import Environment, Role, Tenant
from payments.statement_matching import tolerance_days_default, tolerance_days_max
from payments.statements import StatementEntry
from policies.sanctions import SanctionsFileError
from regions import events, migrate, tenants
from regions.ddl import Dialect
from regions.router import Router
from regions.topology import RegionsFileError, load

schema_file = Path(__file__).resolve().parent.parent / "schema.graphql"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corridor", description="Corridor payments platform")
    sub = p.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run everything locally on an embedded PostgreSQL")
    dev.add_argument("--data-dir", type=Path, default=Path(".corridor"))
    dev.add_argument("--database-url", help="use this PostgreSQL server instead of embedding one")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)

    serve = sub.add_parser("serve", help="serve the API (settings from the environment)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.add_argument("--tls-cert", type=Path, metavar="CERT",
                       help="serve HTTPS (TLS 1.3 only) with this PEM certificate chain; "
                            "needs --tls-key")
    serve.add_argument("--tls-key", type=Path, metavar="KEY",
                       help="the certificate's unencrypted PEM private key")

    mig = sub.add_parser("migrate", help="apply migrations and region partitions")
    mig.add_argument("--dry-run", action="store_true", help="print the DDL, touch nothing")
    mig.add_argument("--dialect", choices=[d.value for d in Dialect], default="postgresql")

    tenant = sub.add_parser("tenant").add_subparsers(dest="action", required=True)
    tc = tenant.add_parser("create")
    tc.add_argument("name")
    tc.add_argument("--jurisdiction", required=True)
    tc.add_argument("--region")
    tc.add_argument("--environment", choices=[e.value for e in Environment], default="test")
    tc.add_argument("--fx-spread-bps", type=int, help="the tenant's FX spread (default: policy)")

    ts = tenant.add_parser("set-fx-spread", help="a tenant's FX spread; 'default' clears it")
    ts.add_argument("tenant_id")
    ts.add_argument("bps", help="basis points 0-1000, or 'default' for the policy default")

    apikey = sub.add_parser("apikey").add_subparsers(dest="action", required=True)
    ac = apikey.add_parser("create")
    ac.add_argument("--tenant", required=True)
    ac.add_argument("--role", required=True, choices=[r.value for r in Role])
    ac.add_argument("--jurisdictions", default="",
                    help="compliance_officer keys: the jurisdictions they act on, e.g. EU,UK")

    worker = sub.add_parser("worker", help="run the RabbitMQ workers")
    worker.add_argument("--threads", type=int, default=4)
    sub.add_parser("scheduler", help="fire periodic jobs (one scheduler holds each job)")
    sub.add_parser("relay", help="publish outbox events to RabbitMQ (one relay per region)")
    settlement_cli.add_parsers(sub)
    fx = sub.add_parser("fx").add_subparsers(dest="action", required=True)
    fx.add_parser("refresh", help="send one FX refresh message to the workers")

    st = sub.add_parser("statements").add_subparsers(dest="action", required=True)
    si = st.add_parser("import", help="import a bank statement's booked credits")
    si.add_argument("file", type=Path)
    si.add_argument("--format", choices=["camt053", "csv"],
                    help="default: from the file's extension (.xml camt053, .csv csv)")
    si.add_argument("--region", required=True,
                    help="the region whose bank account the statement is of; credits to "
                         "unknown addresses go to its suspense account")
    sr = st.add_parser("reconcile", help="match a statement against the incoming payments "
                                         "recorded; exit 1 on any break")
    sr.add_argument("file", type=Path)
    sr.add_argument("--format", choices=["camt053", "csv"])
    sr.add_argument("--region", required=True)
    sr.add_argument("--tolerance-days", type=int, default=tolerance_days_default,
                    help=f"value dates this many days apart still match (0..{tolerance_days_max})")
    sr.add_argument("--export", choices=["json", "csv"], default="json")

    compliance_cli.add_parsers(sub)
    audit_cli.add_parsers(sub)
    ledger_cli.add_parsers(sub)
    queues_cli.add_parsers(sub)
    security_cli.add_parsers(sub, tenant)

    sch = sub.add_parser("schema").add_subparsers(dest="action", required=True)
    ex = sch.add_parser("export")
    ex.add_argument("--check", action="store_true", help="fail if schema.graphql is stale")
    sch.add_parser("access-docs", help="write docs/access.md from schema/access.py")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (RegionsFileError, DomainError, SanctionsFileError, ValueError, OSError) as exc:
        reasons = exc.reasons if isinstance(exc, PolicyDenied) else []
        print("; ".join([f"corridor: {exc}", *reasons]), file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "dev":
        from api.dev import run_dev

        return run_dev(args.data_dir, args.database_url, args.host, args.port)
    if args.command == "serve":
        return _serve(args.host, args.port, args.workers, args.access_log, args.tls_cert,
                      args.tls_key)
    if args.command == "migrate":
        return _migrate(args.dry_run, Dialect(args.dialect))
    if args.command == "keys" or (args.command == "tenant" and args.action == "erase"):
        return asyncio.run(security_cli.dispatch(args))
    if args.command == "tenant" and args.action == "set-fx-spread":
        bps = None if args.bps == "default" else int(args.bps)
        return asyncio.run(_tenant_set_spread(args.tenant_id, bps))
    if args.command == "tenant":
        return asyncio.run(_tenant_create(args.name, args.jurisdiction, args.region,
                                          Environment(args.environment), args.fx_spread_bps))
    if args.command == "apikey":
        scope = [j.strip() for j in args.jurisdictions.split(",") if j.strip()]
        return asyncio.run(_apikey_create(args.tenant, Role(args.role), scope))
    if args.command == "statements":
        fmt, entries = _read_statement(args.file, args.format)
        if args.action == "reconcile":
            return asyncio.run(_statements_reconcile(entries, args.region, args.tolerance_days,
                                                     args.export))
        return asyncio.run(_statements_import(args.file, fmt, entries, args.region))
    if args.command in {"worker", "scheduler", "relay", "fx"}:
        return _workers(args)
    if args.command in {"settlement", "reconcile"}:
        return settlement_cli.dispatch(args)
    if args.command in {"sanctions", "policy"}:
        return asyncio.run(compliance_cli.dispatch(args))
    if args.command == "audit":
        return asyncio.run(audit_cli.dispatch(args))
    if args.command == "ledger":
        return asyncio.run(ledger_cli.dispatch(args))
    if args.command == "queues":
        return queues_cli.dispatch(args)
    if args.action == "access-docs":
        return _access_docs()
    return _schema_export(args.check)


def _access_docs() -> int:
    from schema.access import markdown

    path = schema_file.parent / "docs" / "access.md"
    path.write_text(markdown(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _serve(host: str, port: int, workers: int, access_log: bool, tls_cert: Path | None,
           tls_key: Path | None) -> int:
    import uvicorn

    from api import tls
    from api.app import create_app
    from api.settings import from_env

    files = tls.tls_files(tls_cert, tls_key)
    settings = from_env()
    # Built here, so bad settings fail before uvicorn starts. One process serves this app;
    # several worker processes each import and build their own (api.asgi).
    app = create_app(settings)
    # In production the app logs JSON lines with trace ids (regions.telemetry.json_logs);
    # uvicorn then leaves logging alone and its records go through the same handler.
    uvicorn.run(app if workers == 1 else "api.asgi:app", host=host, port=port,
                workers=workers, log_level="info",
                access_log=access_log,
                log_config=None if settings.production else uvicorn.config.LOGGING_CONFIG,
                ssl_certfile=files.cert if files else None,
                ssl_keyfile=files.key if files else None,
                ssl_context_factory=tls.context_factory if files else None)
    return 0


def _migrate(dry_run: bool, dialect: Dialect) -> int:
    if dry_run:
        print(migrate.render(migrate.plan(load(), dialect)), end="")
        return 0
    from api.settings import from_env
    from regions.ddl import cluster_target, control_target

    settings = from_env()
    targets = {control_target(): settings.urls.control} | {
        cluster_target(settings.topology.cluster(name)): url
        for name, url in settings.urls.clusters.items()}
    ran = migrate.apply(settings.topology, targets)
    print(json.dumps({"statements_run": len(ran)}))
    return 0


async def _tenant_create(name: str, jurisdiction: str, region: str | None,
                         environment: Environment, fx_spread_bps: int | None) -> int:
    from api.settings import from_env
    from regions.policy_gate import PolicyGate

    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=1)
    gate = PolicyGate()
    try:
        await gate.refresh(router, force=True)
        async def body(conn: AsyncConnection) -> Tenant:
            made = await tenants.create_tenant(conn, settings.topology, name, jurisdiction,
                                               region, environment, fx_spread_bps, gate=gate)
            await events.record_control(conn, security_cli.cli_actor(), "tenant.created",
                                        made.id, {"jurisdiction": made.jurisdiction,
                                                  "home_region": made.home_region,
                                                  "environment": made.environment.value},
                                        tenant_id=made.id)
            return made

        tenant = await router.run_control(body)
    finally:
        await router.dispose()
    print(json.dumps({"id": tenant.id, "name": tenant.name, "jurisdiction": tenant.jurisdiction,
                      "home_region": tenant.home_region,
                      "environment": tenant.environment.value,
                      "fx_spread_bps": tenant.fx_spread_bps}))
    return 0


async def _tenant_set_spread(tenant_id: str, bps: int | None) -> int:
    from api.settings import from_env

    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=1)
    try:
        async def body(conn: AsyncConnection) -> Tenant:
            await events.record_control(conn, security_cli.cli_actor(), "tenant.fx_spread_set",
                                        tenant_id, {"fx_spread_bps": bps}, tenant_id=tenant_id)
            return await tenants.set_fx_spread(conn, tenant_id, bps)

        tenant = await router.run_control(body)
    finally:
        await router.dispose()
    print(json.dumps({"id": tenant.id, "fx_spread_bps": tenant.fx_spread_bps}))
    return 0


async def _apikey_create(tenant_id: str, role: Role, jurisdictions: list[str]) -> int:
    from api.settings import from_env

    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=1)
    try:
        async def body(conn: AsyncConnection) -> tenants.IssuedKey:
            made = await tenants.create_api_key(conn, settings.pepper, tenant_id, role,
                                                jurisdictions)
            await events.record_control(conn, security_cli.cli_actor(), "api_key.created",
                                        made.id, {"role": role.value,
                                                  "jurisdictions": jurisdictions},
                                        tenant_id=tenant_id)
            return made

        issued = await router.run_control(body)
    finally:
        await router.dispose()
    print(json.dumps({"id": issued.id, "tenant_id": issued.tenant_id, "role": issued.role.value,
                      "jurisdictions": jurisdictions, "key": issued.key,
                      "note": "shown once; Corridor keeps only a hash"}))
    return 0


def _read_statement(path: Path, fmt: str | None) -> tuple[str, list[StatementEntry]]:
    """The whole file parsed before anything is written: a malformed file imports nothing."""
    from payments import statements

    fmt = fmt or ("camt053" if path.suffix.lower() == ".xml" else "csv")
    if path.stat().st_size > statements.file_bytes_max:
        raise ValueError(f"{path} is larger than {statements.file_bytes_max} bytes")
    data = path.read_bytes()
    return fmt, (statements.parse_camt053(data) if fmt == "camt053"
                 else statements.parse_csv(data.decode("utf-8-sig")))


async def _statements_reconcile(entries: list[StatementEntry], region: str,
                                tolerance_days: int, export: str) -> int:
    from api.settings import from_env
    from regions.statements_import import reconcile_statement

    if not 0 <= tolerance_days <= tolerance_days_max:
        raise ValueError(f"--tolerance-days must be between 0 and {tolerance_days_max}")
    settings = from_env()
    if not settings.topology.has_region(region):
        raise ValueError(f"unknown region {region!r}")
    router = Router(settings.topology, settings.urls, pool_size=2)
    try:
        outcome = await reconcile_statement(router, region, entries, tolerance_days)
    finally:
        await router.dispose()
    if export == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["kind", "bank_reference", "payment_id", "amount_minor", "currency",
                         "detail"])
        writer.writerows(["MATCHED", m.bank_reference, m.payment_id, "", "", m.how]
                         for m in outcome.matches)
        writer.writerows([b.kind, b.bank_reference or "", b.payment_id or "", b.amount_minor,
                          b.currency, b.detail] for b in outcome.breaks)
    else:
        print(json.dumps({"region": region, "entries": len(entries),
                          "matched": [asdict(m) for m in outcome.matches],
                          "breaks": [asdict(b) for b in outcome.breaks]}))
    return 1 if outcome.breaks else 0


async def _statements_import(path: Path, fmt: str, entries: list[StatementEntry],
                             region: str) -> int:
    from api.settings import from_env
    from regions.keyring import provider_from_settings
    from regions.policy_gate import PolicyGate
    from regions.sealing import Sealer
    from regions.statements_import import import_statement
    from regions.virtual_accounts import directory_key

    settings = from_env()
    if not settings.topology.has_region(region):
        raise ValueError(f"unknown region {region!r}")
    sealer = Sealer(provider_from_settings(settings.key_provider, settings.keyring_path,
                                           [r.code for r in settings.topology.regions],
                                           settings.key_providers))
    router = Router(settings.topology, settings.urls, pool_size=2)
    gate = PolicyGate()
    try:
        await gate.refresh(router, force=True)
        summary = await import_statement(router, sealer, gate, directory_key(settings.pepper),
                                         entries, fmt.upper(), region)
    finally:
        await router.dispose()
    print(json.dumps({"file": str(path), "format": fmt, "entries": summary.entries,
                      "credited": summary.credited, "suspense": summary.suspense,
                      "duplicates": summary.duplicates}))
    return 0


def _workers(args: argparse.Namespace) -> int:
    from api.settings import from_env, worker_config
    from workers import main as workers_main

    config = worker_config(from_env())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "worker":
        return workers_main.run_worker(config, args.threads)
    if args.command == "scheduler":
        return workers_main.run_scheduler(config)
    if args.command == "relay":
        return workers_main.run_relay(config)
    from workers.broker import install

    broker, actors = install(config)
    message = actors.refresh_fx_rates.send()
    broker.close()
    print(json.dumps({"sent": "refresh_fx_rates", "message_id": message.message_id}))
    return 0


def _schema_export(check: bool) -> int:
    from schema.build import build_schema

    sdl = build_schema(production=False).as_str() + "\n"
    if check:
        if not schema_file.exists() or schema_file.read_text(encoding="utf-8") != sdl:
            print("schema.graphql is stale: run `corridor schema export`", file=sys.stderr)
            return 1
        return 0
    schema_file.write_text(sdl, encoding="utf-8")
    print(f"wrote {schema_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
