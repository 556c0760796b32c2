"""Figures from a load run: throughput, latency percentiles, CPU per operation."""

from __future__ import annotations

from typing import Any

percentiles = (50, 95, 99)


def percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, round(p / 100 * (len(sorted_ms) - 1))))
    return sorted_ms[k]


def summarize(scenario: str, label: str, clients: int, raw: dict[str, Any],
              items_per_op: int = 1, rss_mb: float | None = None) -> dict[str, Any]:
    lat = sorted(raw["latencies_ms"])
    ops = max(raw.get("all_ops", raw["count"]), 1)
    return {
        "scenario": scenario,
        "label": label,
        "clients": clients,
        "ops": raw["count"],
        "errors": raw["errors"],
        "error_samples": raw.get("error_samples", []),
        "ops_per_s": raw["count"] / raw["duration_s"],
        "items_per_s": raw["count"] * items_per_op / raw["duration_s"],
        **{f"latency_ms_p{p}": percentile(lat, p) for p in percentiles},
        "api_cpu_ms_per_op": 1000 * raw.get("api_cpu_s", 0.0) / ops,
        "db_cpu_ms_per_op": 1000 * raw.get("db_cpu_s", 0.0) / ops,
        "api_rss_mb_peak": rss_mb,
    }
