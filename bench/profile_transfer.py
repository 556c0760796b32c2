"""Where the API's CPU goes on ``createTransfer``: py-spy samples the API process while wrk
drives it, and the samples are summed by the layer they are in.

    uv run python -m bench.profile_transfer [--clients 16] [--seconds 15]

py-spy (PyPI) runs through ``uvx``; it needs to trace the API process (root, or
``kernel.yama.ptrace_scope=0``). Only the thread holding the GIL is sampled, so the shares are of
the API's Python CPU. Each sample is credited to the innermost frame of a known package, and
the functions with the most samples of their own are listed; the raw stacks are written next
to the bench results.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

from bench import harness, wrk

results_dir = Path(__file__).resolve().parent / "results"
rate_hz = 250

# A frame belongs to the layer whose package its file is in (py-spy names files relative to
# their import root: ``(psycopg/_cursor_base.py:602)``).
layers = (
    ("corridor: regions (storage)", "(regions/"),
    ("corridor: payments (pure)", "(payments/"),
    ("corridor: policies", "(policies/"),
    ("corridor: schema (resolvers)", "(schema/"),
    ("corridor: api (app, auth, limits)", "(api/"),
    ("sqlalchemy", "(sqlalchemy/"),
    ("psycopg", "(psycopg"),
    ("strawberry", "(strawberry/"),
    ("graphql-core", "(graphql/"),
    ("litestar", "(litestar/"),
    ("uvicorn", "(uvicorn/"),
    ("opentelemetry", "(opentelemetry/"),
    ("anyio", "(anyio/"),
    ("asyncio / uvloop", "(asyncio/"),
)


def layer_of(frame: str) -> str:
    for label, marker in layers:
        if marker in frame:
            return label
    return "other (stdlib, json, ...)"


def summarize(raw_path: Path, top: int = 25) -> str:
    """py-spy's raw format: one line per stack, ``frame;frame;...;leaf count``."""
    by_layer: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = frames[-1]
        by_leaf[leaf] += n
        # Attribute the sample to the innermost frame of a known layer.
        owner = next((layer_of(f) for f in reversed(frames)
                      if layer_of(f) != "other (stdlib, json, ...)"), layer_of(leaf))
        by_layer[owner] += n
    lines = [f"{total} samples", "", "| layer | share |", "| --- | ---: |"]
    lines += [f"| {k} | {100 * v / max(total, 1):.1f}% |" for k, v in by_layer.most_common()]
    lines += ["", "| function (own samples) | share |", "| --- | ---: |"]
    lines += [f"| `{k[:110]}` | {100 * v / max(total, 1):.1f}% |"
              for k, v in by_leaf.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_transfer")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=int, default=15)
    args = p.parse_args(argv)
    uvx = shutil.which("uvx")
    if uvx is None:
        raise SystemExit("needs uvx (pip install uv) to run py-spy")
    results_dir.mkdir(parents=True, exist_ok=True)
    raw = results_dir / "profile-create-transfer.txt"
    with harness.environment() as env:
        eur = env.tenant.accounts["EUR"]
        pairs = [(eur[2 * i], eur[2 * i + 1]) for i in range(args.clients)]
        load = threading.Thread(target=wrk.run, args=(
            env.port, env.tenant.key, pairs, args.clients, args.seconds + 4), daemon=True)
        load.start()
        subprocess.run([uvx, "py-spy", "record", "--pid", str(env.api.pid), "--duration",
                        str(args.seconds), "--rate", str(rate_hz), "--format", "raw",
                        "--nonblocking", "--gil", "--output", str(raw)], check=True,
                       capture_output=True)
        load.join()
    print(summarize(raw))
    print(f"\nraw stacks: {raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
