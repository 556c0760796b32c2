"""The real thing: `corridor serve` in its own process, driven over TCP, set up by the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from regions.router import DatabaseUrls
from regions.topology import Topology
from tests.conftest import corridor_env
from tests.serve import serving


@pytest.fixture(scope="module")
def server_env(topo: Topology, db_urls: DatabaseUrls) -> dict[str, str]:
    return corridor_env(topo, db_urls)


def corridor(env: dict[str, str], *args: str) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, check=True,
                         capture_output=True, text=True, timeout=60)
    result: dict[str, str] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="module")
def server(server_env: dict[str, str]) -> Iterator[str]:
    with serving(server_env) as base:
        yield base


def test_cli_setup_and_graphql_over_tcp(server: str, server_env: dict[str, str]) -> None:
    tenant = corridor(server_env, "tenant", "create", "Process Ltd", "--jurisdiction", "SG")
    assert tenant["home_region"] == "ap-southeast"
    key = corridor(server_env, "apikey", "create", "--tenant", tenant["id"],
                   "--role", "partner_admin")["key"]
    assert key.startswith("cor_test_")
    headers = {"Authorization": f"Bearer {key}"}
    mutation = ('mutation { createAccount(input: {currency: "SGD", label: "ops", '
                'idempotencyKey: "proc-1"}) { __typename ... on Account { id currency } } }')
    made = httpx.post(f"{server}/graphql", json={"query": mutation}, headers=headers,
                      timeout=10).json()
    assert made["data"]["createAccount"]["__typename"] == "Account", made
    listed = httpx.post(f"{server}/graphql", headers=headers, timeout=10, json={
        "query": "{ viewer { tenant { id homeRegion } } accounts { edges { node { id "
                 "balance { available { amount currency } } } } } }"}).json()
    assert listed["data"]["viewer"]["tenant"] == {"id": tenant["id"],
                                                  "homeRegion": "ap-southeast"}
    node = listed["data"]["accounts"]["edges"][0]["node"]
    assert node["id"] == made["data"]["createAccount"]["id"]
    assert node["balance"]["available"] == {"amount": "0.00", "currency": "SGD"}
    assert httpx.post(f"{server}/graphql", json={"query": "{ viewer { role } }"},
                      timeout=10).status_code == 401
    ready = httpx.get(f"{server}/readyz", timeout=10).json()
    assert ready["ready"] is True


def test_cli_rejects_bad_input_with_clear_errors(server_env: dict[str, str]) -> None:
    bad = subprocess.run([sys.executable, "-m", "api.cli", "tenant", "create", "X",
                          "--jurisdiction", "EU", "--region", "us-east"],
                         env=server_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "does not serve jurisdiction EU" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "api.cli", "apikey", "create", "--tenant",
                              "ten_eu-central_01M7ZSPZVN9FMXWD01NR6PV1VY", "--role", "sre"],
                             env=server_env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "was not found" in missing.stderr


def test_cli_sets_and_clears_a_tenants_fx_spread(server_env: dict[str, str]) -> None:
    tenant = corridor(server_env, "tenant", "create", "Spread Co", "--jurisdiction", "UK",
                      "--fx-spread-bps", "75")
    assert tenant["fx_spread_bps"] == 75
    assert corridor(server_env, "tenant", "set-fx-spread", tenant["id"], "20") == {
        "id": tenant["id"], "fx_spread_bps": 20}
    assert corridor(server_env, "tenant", "set-fx-spread", tenant["id"], "default") == {
        "id": tenant["id"], "fx_spread_bps": None}
    for bad in ("1001", "-1"):
        out = subprocess.run([sys.executable, "-m", "api.cli", "tenant", "set-fx-spread",
                              tenant["id"], bad], env=server_env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 2
        assert "fx spread must be 0 to 1000" in out.stderr
    missing = subprocess.run([sys.executable, "-m", "api.cli", "tenant", "set-fx-spread",
                              "ten_uk-south_01M7ZSPZVN9FMXWD01NR6PV1VY", "10"], env=server_env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "was not found" in missing.stderr
