"""The settings added for settlement and group commit: defaults, accepted values, and a clear
refusal of anything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.settings import SettingsError, from_env

base = {"CORRIDOR_ENV": "test", "CORRIDOR_API_KEY_PEPPER": "p" * 40,
        "CORRIDOR_CONTROL_DATABASE_URL": "postgresql://x@h/control",
        "CORRIDOR_DATABASE_URL_GLOBAL": "postgresql://x@h/global",
        "CORRIDOR_DATABASE_URL_CN": "postgresql://x@h/cn"}


def settings(tmp_path: Path, **extra: str) -> Any:
    return from_env({**base, **extra}, dev_dir=tmp_path)


def test_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert (s.coalesce_transfers, s.coalesce_group_max, s.coalesce_window_s) == (True, 256, 0.0)
    assert s.settlement_window_s == 3600
    assert (s.db_pool_size, s.db_pool_overflow) == (10, 10)
    assert s.region_amqp_urls["eu-central"] == (
        "amqp://guest:guest@127.0.0.1:5672/corridor-eu-central")
    assert s.region_amqp_urls["cn-east"].endswith("/corridor-cn-east")


def test_values(tmp_path: Path) -> None:
    s = settings(tmp_path, CORRIDOR_COALESCE_TRANSFERS="off", CORRIDOR_COALESCE_GROUP_MAX="64",
                 CORRIDOR_COALESCE_WINDOW_MS="2", CORRIDOR_SETTLEMENT_WINDOW_S="60",
                 AMQP_URL="amqp://u:p@mq:5671/%2F?heartbeat=30",
                 CORRIDOR_AMQP_URL_US_EAST="amqps://x:y@us-mq:5671/us",
                 CORRIDOR_DB_POOL_SIZE="4", CORRIDOR_DB_POOL_OVERFLOW="0")
    assert (s.coalesce_transfers, s.coalesce_group_max, s.coalesce_window_s) == (
        False, 64, 0.002)
    assert s.settlement_window_s == 60
    assert (s.db_pool_size, s.db_pool_overflow) == (4, 0)
    assert s.region_amqp_urls["eu-central"] == (
        "amqp://u:p@mq:5671/corridor-eu-central?heartbeat=30")
    assert s.region_amqp_urls["us-east"] == "amqps://x:y@us-mq:5671/us"


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("CORRIDOR_COALESCE_TRANSFERS", "yes", "must be on or off"),
    ("CORRIDOR_COALESCE_GROUP_MAX", "0", "must be 1 to 1000"),
    ("CORRIDOR_COALESCE_GROUP_MAX", "1001", "must be 1 to 1000"),
    ("CORRIDOR_COALESCE_GROUP_MAX", "many", "whole number of requests"),
    ("CORRIDOR_COALESCE_WINDOW_MS", "51", "must be 0 to 50"),
    ("CORRIDOR_SETTLEMENT_WINDOW_S", "59", "must be 60 to 604800"),
    ("CORRIDOR_SETTLEMENT_WINDOW_S", "1h", "whole number of seconds"),
    ("CORRIDOR_DB_POOL_SIZE", "0", "must be 1 to 200"),
    ("CORRIDOR_DB_POOL_SIZE", "ten", "whole number of connections"),
    ("CORRIDOR_DB_POOL_OVERFLOW", "-1", "must be 0 to 200"),
    ("CORRIDOR_DB_POOL_OVERFLOW", "201", "must be 0 to 200"),
])
def test_bad_values_are_refused_by_name(tmp_path: Path, name: str, value: str,
                                        problem: str) -> None:
    with pytest.raises(SettingsError, match=problem) as info:
        settings(tmp_path, **{name: value})
    assert name in str(info.value)
