"""The compliance commands of the ``corridor`` CLI: sanctions list imports and the policies.

``corridor sanctions import FILE --list ofac|eu|uk`` parses the whole file first (a malformed
file imports nothing) and stores it as the list's next version in one transaction.
``corridor policy show|changes|propose|approve|reject`` act as the compliance officer whose
API key is in ``CORRIDOR_API_KEY`` (the same maker-checker rules as GraphQL);
``corridor policy docs [--check]`` writes the generated reference docs/policies.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from payments.errors import InvalidInput
from payments.principal import Principal, Role
from policies import catalog, sanctions
from policies.docs import render
from policies.params import to_json

docs_file = Path(__file__).resolve().parent.parent / "docs" / "policies.md"
api_key_env = "CORRIDOR_API_KEY"


def add_parsers(sub: Any) -> None:
    sanc = sub.add_parser("sanctions").add_subparsers(dest="action", required=True)
    si = sanc.add_parser("import", help="import a sanctions list file as the list's next "
                                        "version")
    si.add_argument("file", type=Path)
    si.add_argument("--list", dest="list_name", required=True, choices=["ofac", "eu", "uk"])
    si.add_argument("--format", choices=["csv", "xml"], help="default: from the content")

    pol = sub.add_parser("policy").add_subparsers(dest="action", required=True)
    show = pol.add_parser("show", help="a jurisdiction's parameters in effect")
    show.add_argument("jurisdiction", choices=catalog.codes())
    pol.add_parser("changes", help="pending and decided change requests (your jurisdictions)")
    prop = pol.add_parser("propose", help=f"propose a change (officer key in ${api_key_env})")
    prop.add_argument("jurisdiction", choices=catalog.codes())
    prop.add_argument("--set", dest="sets", action="append", required=True,
                      metavar="NAME=JSON", help='e.g. review_threshold=\'"12000.00"\'')
    prop.add_argument("--reason", required=True)
    prop.add_argument("--effective-from", type=datetime.fromisoformat)
    prop.add_argument("--idempotency-key", required=True)
    for verb in ("approve", "reject"):
        d = pol.add_parser(verb, help=f"{verb} another officer's change")
        d.add_argument("change_id")
        d.add_argument("--note")
        d.add_argument("--idempotency-key", required=True)
    docs = pol.add_parser("docs", help="write docs/policies.md from the code")
    docs.add_argument("--check", action="store_true", help="fail if docs/policies.md is stale")


async def dispatch(args: argparse.Namespace) -> int:
    if args.command == "sanctions":
        return await _sanctions_import(args.file, args.file.read_bytes(), args.list_name,
                                       args.format)
    if args.action == "docs":
        return _docs(args.check)
    return await _policy(args)


def _docs(check: bool) -> int:
    text = render()
    if check:
        if not docs_file.exists() or docs_file.read_text(encoding="utf-8") != text:
            print("docs/policies.md is stale: run `corridor policy docs`", file=sys.stderr)
            return 1
        return 0
    docs_file.write_text(text, encoding="utf-8")
    print(f"wrote {docs_file}")
    return 0


async def _sanctions_import(path: Path, data: bytes, list_name: str, fmt: str | None) -> int:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from api.security_cli import cli_actor
    from api.settings import from_env
    from regions import events, sanctions_store
    from regions.router import Router

    fmt = fmt or sanctions.detect_format(data)
    entries = sanctions.parse(list_name, data, fmt)
    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=1)
    try:
        async def body(conn: AsyncConnection) -> int:
            actor = cli_actor()
            made = await sanctions_store.import_list(conn, list_name, fmt, data, entries, actor)
            await events.record_control(conn, actor, "sanctions.imported", list_name, {
                "list": list_name, "version": made, "format": fmt, "entries": len(entries)})
            return made

        version = await router.run_control(body)
    finally:
        await router.dispose()
    print(json.dumps({"list": list_name, "version": version, "format": fmt,
                      "entries": len(entries), "file": str(path)}))
    return 0


async def _officer(router: Any, pepper: bytes) -> Principal:
    from regions import tenants

    key = os.environ.get(api_key_env, "")
    who = await router.run_control(lambda conn: tenants.authenticate(conn, pepper, key))
    if who is None or who.role is not Role.COMPLIANCE_OFFICER:
        raise InvalidInput(f"${api_key_env} must hold a compliance officer's API key",
                           api_key_env)
    return who  # type: ignore[no-any-return]


async def _policy(args: argparse.Namespace) -> int:
    from api.settings import from_env
    from regions import policy_store
    from regions.router import Router

    settings = from_env()
    router = Router(settings.topology, settings.urls, pool_size=1)
    now = datetime.now(UTC)
    try:
        if args.action == "show":
            versions = await router.run_control(policy_store.load_versions)
            current = policy_store.effective(versions[args.jurisdiction], now)
            declared = catalog.jurisdiction(args.jurisdiction).declared
            print(json.dumps({"jurisdiction": args.jurisdiction, "version": current.version,
                              "parameters": {n: to_json(declared[n], v)
                                             for n, v in current.values.items()}}, indent=2))
            return 0
        who = await _officer(router, settings.pepper)
        if args.action == "changes":
            rows = await router.run_control(lambda conn: policy_store.change_page(
                conn, sorted(who.jurisdictions), None, 100, None))
            print(json.dumps([{"id": r.id, "jurisdiction": r.jurisdiction, "status": r.status,
                               "changes": r.changes, "reason": r.reason,
                               "proposed_by": r.proposed_by, "version": r.version}
                              for r in rows], indent=2))
            return 0
        return await _decide_or_propose(router, who, args, now)
    finally:
        await router.dispose()


async def _decide_or_propose(router: Any, who: Principal, args: argparse.Namespace,
                             now: datetime) -> int:
    from regions import policy_store

    if args.action == "propose":
        changes = {}
        for item in args.sets:
            name, sep, raw = item.partition("=")
            if not sep:
                raise InvalidInput(f"--set {item!r} is not NAME=JSON", "set")
            try:
                changes[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"--set {name}: {exc.msg}", "set") from exc
        proposal = policy_store.Proposal(args.jurisdiction, changes, args.effective_from,
                                         args.reason, args.idempotency_key)
        change_id, _ = await router.run_control(lambda conn: policy_store.propose(
            conn, who, router.topology, proposal, now))
        print(json.dumps({"id": change_id, "status": "PENDING"}))
        return 0
    cmd = policy_store.Decide(args.change_id, args.note, args.idempotency_key)
    verb = policy_store.approve if args.action == "approve" else policy_store.reject
    await router.run_control(lambda conn: verb(conn, who, cmd, now))
    row = await router.run_control(lambda conn: policy_store.change_row(conn, args.change_id))
    print(json.dumps({"id": row.id, "status": row.status, "version": row.version}))
    return 0
