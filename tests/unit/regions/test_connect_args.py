"""The router's engines get a connect timeout unless their URL names one."""

from __future__ import annotations

import pytest

from regions.router import connect_args, connect_timeout_s_default


def test_a_url_without_a_connect_timeout_gets_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    assert connect_args("postgresql+psycopg://u@db.internal:26257/corridor?sslmode=verify-full") \
        == {"connect_timeout": connect_timeout_s_default}


def test_a_url_that_names_a_connect_timeout_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    assert connect_args("postgresql+psycopg://u@db.internal/corridor?connect_timeout=20") == {}


def test_libpqs_environment_variable_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "12")
    assert connect_args("postgresql+psycopg://u@db.internal/corridor") == {}
