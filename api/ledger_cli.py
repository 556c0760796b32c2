"""``corridor ledger verify [--region R]``: check the ledger's invariants in each region
(``regions.ledger_checks``) and print a JSON report per region, naming every finding. A region
whose database cannot be reached is reported as such (``"intact": null`` and the error) and
the others are still checked. Exits 1 when any region has a finding or could not be checked,
2 for an unknown region. Read-only."""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import Any

from payments.errors import InvalidInput


def add_parsers(sub: Any) -> None:
    ledger = sub.add_parser("ledger").add_subparsers(dest="action", required=True)
    v = ledger.add_parser("verify", help="check that each region's journals balance and its "
                                         "balances, entries and payout holds agree")
    v.add_argument("--region", help="one region (default: every region)")


async def dispatch(args: argparse.Namespace) -> int:
    from api.settings import from_env
    from regions import ledger_checks
    from regions.router import Router
    from regions.txn import Unavailable

    settings = from_env()
    regions = [r.code for r in settings.topology.regions]
    if args.region is not None and args.region not in regions:
        raise InvalidInput(f"unknown region {args.region!r}; one of {regions}", "region")
    router = Router(settings.topology, settings.urls, pool_size=1)
    try:
        intact = True
        for region in [args.region] if args.region else regions:
            try:
                report = await router.run(region, partial(ledger_checks.verify, region=region))
            except Unavailable as exc:
                intact = False
                print(json.dumps({"region": region, "intact": None, "error": str(exc)}))
                continue
            intact = intact and report.intact
            print(json.dumps(report.as_json()))
        return 0 if intact else 1
    finally:
        await router.dispose()
