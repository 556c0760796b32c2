"""schema.graphql at the repo root is the exported development schema, byte for byte."""

from __future__ import annotations

import difflib
import itertools
import subprocess
from pathlib import Path

import pytest

from api import cli
from schema.build import build_schema

repo = Path(__file__).resolve().parents[2]
schema_file = repo / "schema.graphql"
corridor_bin = repo / ".venv" / "bin" / "corridor"
fix = "run `uv run corridor schema export` and commit schema.graphql"


def _expected() -> str:
    return build_schema(production=False).as_str() + "\n"


def test_schema_file_is_up_to_date() -> None:
    assert schema_file.exists(), f"{schema_file} is missing: {fix}"
    actual = schema_file.read_text(encoding="utf-8")
    expected = _expected()
    if actual != expected:
        diff = "".join(itertools.islice(difflib.unified_diff(
            actual.splitlines(keepends=True), expected.splitlines(keepends=True),
            fromfile="schema.graphql", tofile="build_schema(production=False)"), 200))
        pytest.fail(f"schema.graphql is stale: {fix}.\n\n{diff}", pytrace=False)


def test_schema_file_is_what_the_cli_writes() -> None:
    assert cli.schema_file == schema_file
    text = schema_file.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert "type Query" in text


def test_cli_schema_export_check_passes() -> None:
    result = subprocess.run(
        [str(corridor_bin), "schema", "export", "--check"],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, (
        f"`corridor schema export --check` exited {result.returncode}: {result.stderr}\n{fix}")
    assert "stale" not in result.stderr


def test_cli_schema_export_check_detects_a_stale_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    stale = tmp_path / "schema.graphql"
    stale.write_text(_expected() + "# stale\n", encoding="utf-8")
    monkeypatch.setattr(cli, "schema_file", stale)
    assert cli.main(["schema", "export", "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    missing = tmp_path / "missing.graphql"
    monkeypatch.setattr(cli, "schema_file", missing)
    assert cli.main(["schema", "export", "--check"]) == 1
    assert not missing.exists()
