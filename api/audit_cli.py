"""``corridor audit verify [--region R] [--expect-heads FILE]`` and ``corridor audit
export-head [--region R]``: prove the audit trail, and print its chain heads for anchoring
outside the database (a ticket, a notary, an object store with retention).

The control plane's trail (policy changes, failed authentications, operators' commands) is
checked as the region ``control``. ``verify`` prints a JSON report per region and exits 1
when any break is found, naming each: the kind, the chain sequence and the audit event.
``--expect-heads`` takes a file written by ``export-head`` and also checks that the chain
still holds those heads.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

from payments.errors import InvalidInput


def add_parsers(sub: Any) -> None:
    audit = sub.add_parser("audit").add_subparsers(dest="action", required=True)
    v = audit.add_parser("verify", help="walk each region's audit hash chain, name any break")
    v.add_argument("--region", help="one region, or `control` for the control plane's trail "
                                    "(default: every region and the control plane)")
    v.add_argument("--expect-heads", type=Path,
                   help="a file from `corridor audit export-head` the chain must still hold")
    e = audit.add_parser("export-head", help="print each region's chain head as JSON")
    e.add_argument("--region", help="one region, or `control` (default: all)")


def _expected(path: Path | None, data: str | None) -> dict[str, tuple[int, bytes]]:
    if path is None or data is None:
        return {}
    try:
        heads = json.loads(data)
        return {h["region"]: (int(h["seq"]), bytes.fromhex(h["hash"])) for h in heads if h}
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"{path} is not a file from `corridor audit export-head`",
                           "expect-heads") from exc


async def dispatch(args: argparse.Namespace) -> int:
    from api.settings import from_env
    from regions import audit_chain
    from regions.router import Router

    settings = from_env()
    regions = [*(r.code for r in settings.topology.regions), audit_chain.control]
    if args.region is not None and args.region not in regions:
        raise InvalidInput(f"unknown region {args.region!r}; one of {regions}", "region")
    chosen = [args.region] if args.region else regions
    expected = _expected(getattr(args, "expect_heads", None),
                         args.expect_heads.read_text(encoding="utf-8")
                         if getattr(args, "expect_heads", None) else None)
    router = Router(settings.topology, settings.urls, pool_size=1)
    try:
        if args.action == "export-head":
            heads = []
            for region in chosen:
                top = await router.read_trail(region, partial(audit_chain.head, region=region))
                heads.append(top.as_json() if top is not None else None)
            print(json.dumps(heads, indent=2))
            return 0
        intact = True
        for region in chosen:
            report = await router.read_trail(region, partial(audit_chain.verify, region=region,
                                                       expect=expected.get(region)))
            intact = intact and report.intact
            print(json.dumps({"region": region, "intact": report.intact,
                              "chained": report.chained,
                              "head": report.head.as_json() if report.head else None,
                              "breaks": [b.as_json() for b in report.breaks]}))
        return 0 if intact else 1
    finally:
        await router.dispose()
