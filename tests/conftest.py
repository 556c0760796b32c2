"""Shared fixtures: one migrated set of test databases per session on real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import hypothesis.core
import pytest
import pytest_asyncio
from hypothesis import settings as hypothesis_settings
from hypothesis.vendor import pretty

from api.settings import Env, Settings
from payments.principal import Environment, Principal, Role
from regions import migrate, tenants
from regions.databases import drop_databases, ensure_databases, local_urls
from regions.policy_gate import PolicyGate
from regions.router import DatabaseUrls, Router
from regions.topology import Topology, load
from tests import pg

# Tests never assert on wall-clock time: hypothesis's per-example deadline is one (a first
# example that loads a lazy table on a busy CI machine took 316 ms and failed).
hypothesis_settings.register_profile("corridor", deadline=None)
hypothesis_settings.load_profile("corridor")
# schemathesis's pytest plugin swaps Hypothesis's printer for one that prints nothing, which
# blanks every falsifying example in the suite ("x=,"); put the real one back.
hypothesis.core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[attr-defined]

test_prefix = f"corridor_test_{os.getpid()}"
test_pepper = b"corridor-test-pepper-0123456789abcdef"
test_keyring_file = Path(tempfile.mkdtemp(prefix="corridor_test_keys_")) / "keyring.json"


def settings_for_tests(env: Env, topo: Topology, urls: DatabaseUrls) -> Settings:
    """App settings for tests: the test pepper and a throwaway local keyring."""
    return Settings(env=env, topology=topo, urls=urls, pepper=test_pepper,
                    keyring_path=test_keyring_file)


def corridor_env(topo: Topology, urls: DatabaseUrls, **extra: str) -> dict[str, str]:
    """The environment of a ``corridor`` process (server, worker, CLI) on the test databases."""
    env = {**os.environ, "CORRIDOR_ENV": "test", "CORRIDOR_API_KEY_PEPPER": test_pepper.decode(),
           "CORRIDOR_KEYRING_FILE": str(test_keyring_file),
           topo.control_database_url_env: urls.control, **extra}
    for c in topo.clusters:
        env[c.database_url_env] = urls.clusters[c.name]
    return env


cli_timeout_s = 120


def run_cli(topo: Topology, urls: DatabaseUrls, *args: str,
            **extra: str) -> subprocess.CompletedProcess[str]:
    """``corridor <args>`` as its own process on the test databases; ``extra``: more
    environment (``USER``, ``CORRIDOR_API_KEY``)."""
    return subprocess.run([sys.executable, "-m", "api.cli", *args],
                          env=corridor_env(topo, urls, **extra), capture_output=True, text=True,
                          timeout=cli_timeout_s)


@pytest.fixture(scope="session", autouse=True)
def _remove_test_keyring() -> Iterator[None]:
    yield
    shutil.rmtree(test_keyring_file.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def topo() -> Topology:
    return load()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with pg.server_url() as url:
        yield url


@pytest.fixture(scope="session")
def db_urls(pg_server: str, topo: Topology) -> Iterator[DatabaseUrls]:
    ensure_databases(pg_server, topo, test_prefix, fresh=True)
    urls, by_target = local_urls(pg_server, topo, test_prefix)
    migrate.apply(topo, by_target)
    yield urls
    drop_databases(pg_server, topo, test_prefix)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def router(topo: Topology, db_urls: DatabaseUrls) -> AsyncIterator[Router]:
    r = Router(topo, db_urls, pool_size=20)
    yield r
    await r.dispose()


MakePrincipal = Callable[..., Awaitable[Principal]]


def officer_scope(role: Role, jurisdiction: str) -> list[str]:
    """A compliance officer key made by a fixture acts on its tenant's jurisdiction."""
    return [jurisdiction] if role is Role.COMPLIANCE_OFFICER else []


@pytest.fixture
def make_principal(router: Router, topo: Topology) -> MakePrincipal:
    async def make(jurisdiction: str = "EU", role: Role = Role.PARTNER_ADMIN,
                   region: str | None = None, name: str = "Acme") -> Principal:
        async def body(conn):  # type: ignore[no-untyped-def]
            tenant = await tenants.create_tenant(conn, topo, name, jurisdiction, region,
                                                 Environment.TEST, gate=PolicyGate())
            key = await tenants.create_api_key(conn, test_pepper, tenant.id, role,
                                               officer_scope(role, jurisdiction))
            principal = await tenants.authenticate(conn, test_pepper, key.key)
            assert principal is not None
            return principal

        return await router.run_control(body)

    return make
