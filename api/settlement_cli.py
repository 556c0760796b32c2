"""``corridor settlement`` and ``corridor reconcile``: operators' commands for cross-region
settlement.

    corridor settlement run [--region R ...]     the settlement process (relay and consumers)
    corridor settlement net [--region R ...]     net the closed windows now
    corridor settlement streams [--region R]     where each region's message streams stand
    corridor reconcile [--region-a A --region-b B --currency C] [--export csv] [--out FILE]

``reconcile`` exits 1 when it finds a break, so a cron job or a CI step can alert on it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncConnection

from regions import reconciliation, xr
from regions.router import Router
from regions.topology import Topology

csv_fields = ["region_a", "region_b", "currency", "kind", "obligation_id", "batch_id", "detail"]


def add_parsers(sub: Any) -> None:
    st = sub.add_parser("settlement", help="cross-region settlement").add_subparsers(
        dest="action", required=True)
    run = st.add_parser("run", help="publish and apply settlement messages (one per region)")
    run.add_argument("--region", action="append", default=[],
                     help="a region this process serves (repeat; default: every region)")
    net = st.add_parser("net", help="net every closed window now")
    net.add_argument("--region", action="append", default=[])
    streams = st.add_parser("streams", help="the message streams between regions")
    streams.add_argument("--region", action="append", default=[])
    rec = sub.add_parser("reconcile", help="compare both sides of every region pair")
    rec.add_argument("--region-a")
    rec.add_argument("--region-b")
    rec.add_argument("--currency")
    rec.add_argument("--export", choices=["json", "csv"], default="json")
    rec.add_argument("--out", type=Path, help="write the export here instead of stdout")


def _regions(topology: Topology, asked: list[str]) -> list[str]:
    codes = [r.code for r in topology.regions]
    unknown = sorted(set(asked) - set(codes))
    if unknown:
        print(f"unknown region(s) {unknown}; the regions file has {codes}", file=sys.stderr)
        raise SystemExit(2)
    return asked or codes


def dispatch(args: argparse.Namespace) -> int:
    from api.settings import from_env, worker_config

    settings = from_env()
    config = worker_config(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "settlement" and args.action == "run":
        from workers import main as workers_main

        return workers_main.run_settlement(config, _regions(settings.topology, args.region))
    return asyncio.run(_run(args, Router(settings.topology, settings.urls, pool_size=2),
                            config.settlement_window_s))


async def _run(args: argparse.Namespace, router: Router, window_s: int) -> int:
    from workers.scheduler import holder_id
    from workers.settlement import net_region

    try:
        if args.command == "reconcile":
            return await _reconcile(router, args)
        regions = _regions(router.topology, args.region)
        if args.action == "net":
            made = {r: await net_region(router, r, window_s, holder_id()) for r in regions}
            print(json.dumps({"batches": made}))
            return 0
        out: list[dict[str, Any]] = []
        for region in regions:
            async def body(conn: AsyncConnection, region: str = region) -> list[xr.Stream]:
                return await xr.streams(conn, region)

            out += [asdict(s) for s in await router.read(region, body)]
        print(json.dumps({"streams": out}))
        return 0
    finally:
        await router.dispose()


async def _reconcile(router: Router, args: argparse.Namespace) -> int:
    given = [args.region_a, args.region_b, args.currency]
    if any(given) and not all(given):
        print("give --region-a, --region-b and --currency together, or none of them",
              file=sys.stderr)
        return 2
    if all(given):
        _regions(router.topology, [args.region_a, args.region_b])
        if args.region_a == args.region_b:
            print("--region-a and --region-b must differ", file=sys.stderr)
            return 2
        pairs = [(args.region_a, args.region_b, args.currency.upper())]
    else:
        pairs = await reconciliation.pairs(router)
    reports = [await reconciliation.reconcile(router, a, b, c) for a, b, c in pairs]
    stream: TextIO
    with (args.out.open("w", encoding="utf-8", newline="") if args.out
          else _Stdout()) as stream:
        if args.export == "csv":
            writer = csv.DictWriter(stream, fieldnames=csv_fields)
            writer.writeheader()
            for report in reports:
                writer.writerows(reconciliation.csv_rows(report))
        else:
            json.dump({"reports": [asdict(r) for r in reports]}, stream)
            stream.write("\n")
    return 1 if any(r.breaks for r in reports) else 0


class _Stdout:
    """A context manager that leaves sys.stdout open."""

    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
