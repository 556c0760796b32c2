"""A closed-loop HTTP/1.1 load generator, run in its own process.

Each client holds one keep-alive connection and sends its next request when the previous answer
arrives. Requests are prepared bytes with a ``{n}`` placeholder replaced by a unique counter
(idempotency keys), so the generator spends little CPU per request and leaves the cores to the
server. Optional ``rate_per_s`` paces the clients (open-loop-ish, for latency at a fixed rate).

Input (JSON on stdin): host, port, path, headers, clients, duration_s, warmup_s, rate_per_s
(optional), and ``scripts``: a list of operations, client ``i`` running ``scripts[i % len]``.
An operation is a list of steps ``{"body": template, "ok": marker, "extract": {name: regex}}``;
a later step's template may use ``{name}`` from an earlier step's answer. One operation is
counted (and timed) when all its steps answered 200 with their marker.
Output (JSON on stdout): count, errors, duration_s, latencies_ms (sampled, at most 200,000).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import Any

latency_samples_max = 200_000
connect_timeout_s = 10.0
response_timeout_s = 30.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _client(cfg: dict[str, Any], index: int, counter: list[int], stats: dict[str, Any],
                  start: float, warm_until: float, stop_at: float) -> None:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(cfg["host"], cfg["port"]), connect_timeout_s)
    headers = "".join(f"{k}: {v}\r\n" for k, v in cfg["headers"].items())
    prefix = f"POST {cfg['path']} HTTP/1.1\r\nHost: {cfg['host']}\r\n{headers}"
    script = cfg["scripts"][index % len(cfg["scripts"])]
    interval = cfg["clients"] / cfg["rate_per_s"] if cfg.get("rate_per_s") else 0.0
    next_at = start + index * (interval / max(cfg["clients"], 1))
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            if interval:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                next_at += interval
            counter[0] += 1
            values = {"n": f"{index}-{counter[0]}"}
            sent = time.perf_counter()
            failure = None
            for step in script:
                body = step["body"]
                for name, value in values.items():
                    body = body.replace("{" + name + "}", value)
                raw = body.encode()
                writer.write(prefix.encode() + f"Content-Length: {len(raw)}\r\n\r\n".encode()
                             + raw)
                status, answer = await asyncio.wait_for(_read_response(reader),
                                                        response_timeout_s)
                if status != 200 or step.get("ok", "").encode() not in answer:
                    failure = answer
                    break
                for name, pattern in step.get("extract", {}).items():
                    found = re.search(pattern.encode(), answer)
                    if found is None:
                        failure = answer
                        break
                    values[name] = found.group(1).decode()
                if failure is not None:
                    break
            done = time.perf_counter()
            stats["all_ops"] += 1
            if done < warm_until:
                continue
            if failure is not None:
                stats["errors"] += 1
                if len(stats["error_samples"]) < 5:
                    stats["error_samples"].append(failure[:300].decode(errors="replace"))
                continue
            stats["count"] += 1
            if len(stats["latencies_ms"]) < latency_samples_max:
                stats["latencies_ms"].append((done - sent) * 1000)
    finally:
        writer.close()


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    stats: dict[str, Any] = {"count": 0, "errors": 0, "all_ops": 0, "latencies_ms": [],
                             "error_samples": []}
    start = time.perf_counter()
    warm_until = start + cfg.get("warmup_s", 0)
    stop_at = warm_until + cfg["duration_s"]
    counter = [0]
    await asyncio.gather(*[_client(cfg, i, counter, stats, start, warm_until, stop_at)
                           for i in range(cfg["clients"])])
    stats["duration_s"] = cfg["duration_s"]
    return stats


def main() -> None:
    cfg = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(run(cfg))))


if __name__ == "__main__":
    main()
