"""Plots (PNG) and the README table from a results document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plots(doc: dict[str, Any], out: Path, stem: str) -> list[Path]:
    rows = doc["results"]
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for scenario in sorted({r["scenario"] for r in rows}):
        pts = sorted((r["clients"], r["items_per_s"]) for r in rows
                     if r["scenario"] == scenario and "paced" not in r["label"])
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=scenario)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("operations (transfers for batches) per second")
    ax.set_title(f"Throughput ({doc['machine']['cpus']} cores)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    path = out / f"{stem}-throughput.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = [f"{r['scenario']}\n{r['label']}" for r in rows]
    xs = range(len(rows))
    for p, offset in (("p50", -0.25), ("p95", 0.0), ("p99", 0.25)):
        ax.bar([x + offset for x in xs], [r[f"latency_ms_{p}"] for r in rows], width=0.25,
               label=p)
    ax.set_xticks(list(xs), labels, rotation=70, fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency percentiles")
    ax.legend()
    fig.tight_layout()
    path = out / f"{stem}-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"Measured {doc['when']} on {m['cpus']} cores, {m['memory_gb']} GB, Python "
        f"{m['python']}, PostgreSQL {m['postgresql']}; API: one `corridor serve` process; load "
        f"from a separate process on the same machine. Peak API RSS "
        f"{m.get('api_rss_mb_peak', 0):.0f} MB.",
        "",
        "| scenario | load | ops/s | items/s | p50 ms | p95 ms | p99 ms | API CPU ms/op "
        "| DB CPU ms/op | vs baseline |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["results"]:
        ratio = f"{r['ratio_to_baseline']:.2f}" if r.get("ratio_to_baseline") else "-"
        lines.append(
            f"| {r['scenario']} | {r['label']} | {r['ops_per_s']:.0f} | {r['items_per_s']:.0f} "
            f"| {r['latency_ms_p50']:.1f} | {r['latency_ms_p95']:.1f} "
            f"| {r['latency_ms_p99']:.1f} | {r['api_cpu_ms_per_op']:.2f} "
            f"| {r['db_cpu_ms_per_op']:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"
