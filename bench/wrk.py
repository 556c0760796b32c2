"""A compiled load generator: wrk, with a Lua script that gives every request its own
idempotency key and checks every answer.

The Python load generator spends CPU of the machine it measures; wrk (C, from the distribution's
packages) spends a fraction of it, so the API's own cost per request shows. ``ensure_wrk`` finds
wrk, or installs it with apt-get when run as root, or says how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

install_s_max = 300
threads_max = 2
"""wrk's threads: the machine has two cores, and the API and PostgreSQL need them."""

# Each request: createTransfer between the account pair chosen for it, with a key no other
# request uses (thread id and a counter). ``response`` counts answers that are not a Transfer;
# ``done`` prints one JSON line with wrk's figures and those counts.
script_template = r"""
local account_pairs = %(pairs)s
local token = "%(token)s"
local threads = {}
local counter = 0
-- Globals, not locals: done() reads them from each thread with thread:get().
failures = 0
samples = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  failures = 0
  samples = {}
end

function request()
  counter = counter + 1
  local pair = account_pairs[(counter * %(threads)d + tid) %% #account_pairs + 1]
  local body = string.format(
    '{"query":"mutation($i: CreateTransferInput!) { createTransfer(input: $i) '
    .. '{ __typename ... on Transfer { id } ... on Error { code } } }",'
    .. '"variables":{"i":{"fromAccountId":"%%s","toAccountId":"%%s","amount":"0.01",'
    .. '"currency":"EUR","idempotencyKey":"wrk-%(run)s-%%d-%%d"}}}',
    pair[1], pair[2], tid, counter)
  return wrk.format("POST", "/graphql",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"__typename":"Transfer"', 1, true) then
    failures = failures + 1
    if #samples < 3 then table.insert(samples, string.sub(body, 1, 200)) end
  end
end

function done(summary, latency, requests)
  local failed = 0
  local seen = {}
  for _, t in ipairs(threads) do
    failed = failed + t:get("failures")
    local s = t:get("samples")
    if s then for _, x in ipairs(s) do table.insert(seen, x) end end
  end
  local out = {
    requests = summary.requests, duration_us = summary.duration,
    errors_connect = summary.errors.connect, errors_read = summary.errors.read,
    errors_write = summary.errors.write, errors_status = summary.errors.status,
    errors_timeout = summary.errors.timeout, failures = failed,
    p50_us = latency:percentile(50), p95_us = latency:percentile(95),
    p99_us = latency:percentile(99), max_us = latency.max
  }
  local parts = {}
  for k, v in pairs(out) do table.insert(parts, string.format('"%%s":%%d', k, math.floor(v))) end
  local quoted = {}
  for _, x in ipairs(seen) do
    table.insert(quoted, '"' .. x:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', ' ') .. '"')
  end
  table.insert(parts, '"samples":[' .. table.concat(quoted, ",") .. ']')
  io.write("WRK_RESULT {" .. table.concat(parts, ",") .. "}\n")
end
"""


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() == 0 and apt:
        subprocess.run([apt, "install", "-y", "-q", "wrk"], check=False,
                       capture_output=True, timeout=install_s_max,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("wrk")
        if found:
            return found
    raise RuntimeError("the compiled load generator needs wrk: `apt-get install wrk` "
                       "(Debian/Ubuntu) or `brew install wrk`, then run the bench again")


def lua(pairs: list[tuple[str, str]], token: str, threads: int) -> str:
    """The script of one run: its keys are its own (a run id, the thread, a counter), so runs
    against the same tenant never reuse a key."""
    listed = "{" + ",".join(f'{{"{a}","{b}"}}' for a, b in pairs) + "}"
    return script_template % {"pairs": listed, "token": token, "threads": threads,
                              "run": uuid.uuid4().hex[:12]}


def run(port: int, token: str, pairs: list[tuple[str, str]], connections: int,
        duration_s: float, timeout_s: float = 10.0) -> dict[str, Any]:
    """Run wrk against the API; its figures, with latencies in milliseconds."""
    binary = ensure_wrk()
    threads = min(threads_max, connections)
    with tempfile.TemporaryDirectory(prefix="corridor-wrk-") as tmp:
        script = Path(tmp) / "transfer.lua"
        script.write_text(lua(pairs, token, threads), encoding="utf-8")
        done = subprocess.run(
            [binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
             f"--timeout={timeout_s:g}s", "-s", str(script), f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=duration_s + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
    errors = sum(int(raw[k]) for k in ("errors_connect", "errors_read", "errors_write",
                                       "errors_status", "errors_timeout", "failures"))
    return {"requests": int(raw["requests"]), "duration_s": raw["duration_us"] / 1e6,
            "errors": errors, "error_samples": raw.get("samples", []),
            **{f"latency_ms_p{p}": raw[f"p{p}_us"] / 1000 for p in (50, 95, 99)}}
