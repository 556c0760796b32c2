"""A bad regions file stops the command line at start-up, naming the region and the field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from regions.topology import default_path


def test_bad_regions_file_fails_naming_region_and_field(tmp_path: Path) -> None:
    raw = yaml.safe_load(default_path.read_text())
    raw["regions"][1]["cloud"] = "oracle"
    bad = tmp_path / "regions.yaml"
    bad.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "CORRIDOR_REGIONS_FILE": str(bad), "CORRIDOR_ENV": "test",
           "CORRIDOR_API_KEY_PEPPER": "x" * 40, "CORRIDOR_CONTROL_DATABASE_URL": "postgresql://x/y",
           "CORRIDOR_DATABASE_URL_GLOBAL": "postgresql://x/y", "CORRIDOR_DATABASE_URL_CN":
           "postgresql://x/z"}
    done = subprocess.run([sys.executable, "-m", "api.cli", "tenant", "create", "Acme",
                           "--jurisdiction", "EU"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "region uk-south" in done.stderr
    assert "'cloud'" in done.stderr
    assert "oracle" in done.stderr


def test_missing_database_settings_fail_with_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRIDOR_")}
    env |= {"CORRIDOR_ENV": "production", "CORRIDOR_API_KEY_PEPPER": "x" * 40}
    done = subprocess.run([sys.executable, "-m", "api.cli", "tenant", "create", "Acme",
                           "--jurisdiction", "EU"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert "CORRIDOR_DATABASE_URL_GLOBAL" in done.stderr
