"""Static checks of terraform/: it parses, checkov passes, it agrees with regions.yaml.

There is no Terraform binary here, so the checks read the HCL with python-hcl2. The checker that
compares regions.yaml with the Terraform wiring is a few pure functions (``environment_wiring``,
``root_environment``, ``topology_disagreements``), tested on the real files and on modified
copies of regions.yaml, so that a disagreement is known to be caught.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from regions.topology import Topology, load

repo_root = Path(__file__).resolve().parents[2]
terraform_dir = repo_root / "terraform"
regions_file = repo_root / "regions.yaml"
environment_module_dir = terraform_dir / "modules" / "environment"
environment_names = ("staging", "production")
checkov_version = "3.1.47"
checkov_timeout_s = 600
skip_reason_chars_min = 20

Hcl = dict[str, Any]


# --- reading HCL -----------------------------------------------------------------------------


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and labels: ``'"aws"'`` -> ``aws``."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_hcl(path: Path) -> Hcl:
    with path.open(encoding="utf-8") as f:
        parsed: Hcl = hcl2.load(f)
    return parsed


def load_dir(directory: Path) -> Hcl:
    """Every ``*.tf`` of one module directory, merged (top-level block lists concatenated)."""
    merged: Hcl = {}
    for path in sorted(directory.glob("*.tf")):
        for kind, items in load_hcl(path).items():
            if isinstance(items, list):
                merged.setdefault(kind, []).extend(items)
    return merged


def labelled(parsed: Hcl, kind: str) -> list[tuple[str, Hcl]]:
    """Blocks with one label (variable, output, module, provider) as (label, body)."""
    out = []
    for item in parsed.get(kind, []):
        for label, body in item.items():
            if not label.startswith("__"):
                out.append((unquote(label), body))
    return out


def locals_of(parsed: Hcl) -> Hcl:
    merged: Hcl = {}
    for block in parsed.get("locals", []):
        merged.update({k: v for k, v in block.items() if not k.startswith("__")})
    return merged


def module_body(parsed: Hcl, name: str) -> Hcl:
    bodies = [body for label, body in labelled(parsed, "module") if label == name]
    assert len(bodies) == 1, f"expected one module {name!r}, found {len(bodies)}"
    return bodies[0]


def tf_dirs() -> list[Path]:
    return sorted({p.parent for p in terraform_dir.rglob("*.tf")})


# --- the wiring of regions.yaml into Terraform ------------------------------------------------


@dataclass(frozen=True)
class EnvironmentWiring:
    """What modules/environment does with each cloud and Alibaba Cloud location."""

    clouds_with_module: frozenset[str]
    alicloud_module_alias: dict[str, str]
    """Alibaba Cloud location -> alicloud provider alias of the module block for it."""
    alicloud_locations: frozenset[str]
    validated_clouds: frozenset[str]
    validated_alicloud_locations: frozenset[str]
    self_hosted_location: str
    self_hosted_alias: str


@dataclass(frozen=True)
class RootEnvironment:
    """What an environment root (terraform/environments/<name>) configures."""

    name: str
    regions_file: Path | None
    alicloud_alias_region: dict[str, str]
    cockroach_cloud_provider: str


_for_each_cloud = re.compile(r'local\.regions_on\["([a-z0-9]+)"\]')
_for_each_location = re.compile(r'local\.alibaba_regions_in\["([a-z0-9-]+)"\]')
_alias = re.compile(r"^\$\{alicloud\.([a-z0-9_]+)\}$")
_contains_list = re.compile(r"contains\(\[([^\]]*)\], r\.(cloud|location)\)")
_yamldecode = re.compile(r'^\$\{yamldecode\(file\("\$\{path\.module\}/([^"]+)"\)\)\}$')


def _alias_of(module: Hcl) -> str:
    match = _alias.match(str(module.get("providers", {}).get("alicloud", "")))
    assert match, f"module passes no alicloud provider alias: {module.get('providers')}"
    return match.group(1)


def _validated(parsed: Hcl, attribute: str) -> frozenset[str]:
    topology = dict(labelled(parsed, "variable"))["topology"]
    values: set[str] = set()
    for validation in topology.get("validation", []):
        for items, attr in _contains_list.findall(str(validation["condition"])):
            if attr == attribute:
                values.update(v.strip().strip('"') for v in items.split(","))
    return frozenset(values)


def environment_wiring(parsed: Hcl) -> EnvironmentWiring:
    clouds: set[str] = set()
    alicloud: dict[str, str] = {}
    for _, body in labelled(parsed, "module"):
        for_each = str(body.get("for_each", ""))
        if cloud := _for_each_cloud.search(for_each):
            clouds.add(cloud.group(1))
        elif location := _for_each_location.search(for_each):
            clouds.add("alibaba")
            alicloud[location.group(1)] = _alias_of(body)
    local = locals_of(parsed)
    crdb = module_body(parsed, "cockroachdb")
    return EnvironmentWiring(
        clouds_with_module=frozenset(clouds),
        alicloud_module_alias=alicloud,
        alicloud_locations=frozenset(unquote(v) for v in local["alicloud_locations"]),
        validated_clouds=_validated(parsed, "cloud"),
        validated_alicloud_locations=_validated(parsed, "location"),
        self_hosted_location=unquote(crdb["self_hosted_location"]),
        self_hosted_alias=_alias_of(crdb),
    )


def root_environment(name: str, parsed: Hcl, directory: Path) -> RootEnvironment:
    match = _yamldecode.match(str(locals_of(parsed).get("topology", "")))
    aliases = {
        unquote(body["alias"]): unquote(body["region"])
        for label, body in labelled(parsed, "provider")
        if label == "alicloud" and "alias" in body
    }
    corridor = module_body(parsed, "corridor")
    return RootEnvironment(
        name=name,
        regions_file=(directory / match.group(1)).resolve() if match else None,
        alicloud_alias_region=aliases,
        cockroach_cloud_provider=unquote(corridor["cockroach_cloud"]["provider"]),
    )


def _cloud_cluster_regions(topology: Topology) -> list[Any]:
    """Regions of clusters that are not wholly sovereign (the CockroachDB Cloud ones)."""
    sovereign = {c.name for c in topology.clusters
                 if all(r.sovereign for r in topology.regions_of(c.name))}
    return [r for r in topology.regions if r.cluster not in sovereign]


def _cloud_problems(topology: Topology, wiring: EnvironmentWiring) -> list[str]:
    problems = [f"region {r.code}: cloud {r.cloud} has no Terraform module"
                for r in topology.regions if r.cloud not in wiring.clouds_with_module]
    if wiring.validated_clouds != wiring.clouds_with_module:
        problems.append(f"modules/environment validates clouds {sorted(wiring.validated_clouds)} "
                        f"but has modules for {sorted(wiring.clouds_with_module)}")
    return problems


def _alibaba_problems(topology: Topology, wiring: EnvironmentWiring,
                      root: RootEnvironment) -> list[str]:
    used = {r.location for r in topology.regions if r.cloud == "alibaba"}
    wired = set(wiring.alicloud_module_alias)
    problems = [f"region {r.code}: Alibaba Cloud location {r.location} has no alicloud provider "
                "and module block" for r in topology.regions
                if r.cloud == "alibaba" and r.location not in wired]
    problems += [f"Terraform wires Alibaba Cloud location {loc}, which no region of regions.yaml "
                 "uses" for loc in sorted(wired - used)]
    if wiring.alicloud_locations != wired or wiring.validated_alicloud_locations != wired:
        problems.append(f"modules/environment: local.alicloud_locations "
                        f"{sorted(wiring.alicloud_locations)}, validated locations "
                        f"{sorted(wiring.validated_alicloud_locations)} and module blocks "
                        f"{sorted(wired)} differ")
    for location, alias in sorted(wiring.alicloud_module_alias.items()):
        if root.alicloud_alias_region.get(alias) != location:
            problems.append(f"environment {root.name}: provider alicloud.{alias} is for "
                            f"{root.alicloud_alias_region.get(alias)}, not {location}")
    return problems


def _database_problems(topology: Topology, wiring: EnvironmentWiring,
                       root: RootEnvironment) -> list[str]:
    provider = root.cockroach_cloud_provider.lower()
    cloud = _cloud_cluster_regions(topology)
    problems = [f"region {r.code}: no database_region, the CockroachDB Cloud region on "
                f"{provider} that hosts its rows (regions.yaml)"
                for r in cloud if r.database_region == r.code]
    problems += [f"region {r.code}: on {r.cloud} in {r.location}, but its rows would live in "
                 f"{r.database_region} (database_region)"
                 for r in cloud
                 if r.cloud == provider and r.database_region not in {r.code, r.location}]
    sovereign = [r for r in topology.regions if r not in _cloud_cluster_regions(topology)]
    problems += [f"region {r.code}: sovereign cluster {r.cluster} is self-hosted on alibaba in "
                 f"{wiring.self_hosted_location}, but the region is on {r.cloud} in {r.location}"
                 for r in sovereign
                 if (r.cloud, r.location) != ("alibaba", wiring.self_hosted_location)]
    if root.alicloud_alias_region.get(wiring.self_hosted_alias) != wiring.self_hosted_location:
        problems.append(f"environment {root.name}: the self-hosted clusters' provider "
                        f"alicloud.{wiring.self_hosted_alias} is not for "
                        f"{wiring.self_hosted_location}")
    return problems


def topology_disagreements(topology: Topology, topology_file: Path, wiring: EnvironmentWiring,
                           root: RootEnvironment) -> list[str]:
    """Every way regions.yaml and one environment's Terraform disagree; empty when they agree."""
    problems = []
    if root.regions_file != topology_file.resolve():
        problems.append(f"environment {root.name} reads {root.regions_file}, not {topology_file}")
    return (problems + _cloud_problems(topology, wiring)
            + _alibaba_problems(topology, wiring, root)
            + _database_problems(topology, wiring, root))


# --- variables, outputs, skips ----------------------------------------------------------------


def undocumented(parsed: Hcl) -> list[str]:
    """Variables without a description or a type, outputs without a description."""
    problems = [f"variable {name}: no {attr}"
                for name, body in labelled(parsed, "variable")
                for attr in ("description", "type")
                if not unquote(body.get(attr, ""))]
    problems += [f"output {name}: no description"
                 for name, body in labelled(parsed, "output")
                 if not unquote(body.get("description", ""))]
    return problems


_skip = re.compile(r"checkov:skip=([^:\s]*)(?::(.*))?")
_check_id = re.compile(r"CKV2?_[A-Z]+_\d+")


def bad_skips(text: str) -> list[str]:
    """Inline checkov skips must name a check and give a reason of a sentence or more."""
    problems = []
    for match in _skip.finditer(text):
        check, reason = match.group(1), (match.group(2) or "").strip()
        if not _check_id.fullmatch(check):
            problems.append(f"skip of {check!r}: not a check id")
        elif len(reason) < skip_reason_chars_min:
            problems.append(f"skip of {check}: no reason")
    return problems


def checkov_failures(report: Any) -> tuple[int, list[str]]:
    """(passed, failures) from checkov's JSON, which is one report (dict) or a list of them."""
    reports = report if isinstance(report, list) else [report]
    passed, failures = 0, []
    for r in reports:
        summary = r.get("summary", {})
        passed += int(summary.get("passed", 0))
        if summary.get("parsing_errors"):
            failures.append(f"{summary['parsing_errors']} parsing error(s)")
        for check in r.get("results", {}).get("failed_checks", []):
            failures.append(f"{check['check_id']} {check['resource']} "
                            f"({check['file_path']}:{check['file_line_range']})")
        if int(summary.get("failed", 0)) and not r.get("results", {}).get("failed_checks"):
            failures.append(f"{summary['failed']} failed check(s)")
    return passed, failures


# --- tests ------------------------------------------------------------------------------------


def wiring_and_roots() -> tuple[EnvironmentWiring, list[RootEnvironment]]:
    wiring = environment_wiring(load_dir(environment_module_dir))
    roots = [root_environment(name, load_dir(terraform_dir / "environments" / name),
                              terraform_dir / "environments" / name)
             for name in environment_names]
    return wiring, roots


@pytest.mark.parametrize("path", sorted(terraform_dir.rglob("*.tf")),
                         ids=lambda p: str(p.relative_to(terraform_dir)))
def test_every_tf_file_parses(path: Path) -> None:
    assert load_hcl(path) is not None


def test_the_expected_modules_and_environments_exist() -> None:
    expected = {"modules/region-aws", "modules/region-azure", "modules/region-alicloud",
                "modules/cockroachdb", "modules/environment", "environments/staging",
                "environments/production"}
    assert expected <= {str(d.relative_to(terraform_dir)) for d in tf_dirs()}


@pytest.mark.parametrize("directory", tf_dirs(), ids=lambda d: str(d.relative_to(terraform_dir)))
def test_variables_have_description_and_type_outputs_a_description(directory: Path) -> None:
    parsed = load_dir(directory)
    assert labelled(parsed, "variable") or labelled(parsed, "output")
    assert undocumented(parsed) == []


@pytest.mark.parametrize("directory", tf_dirs(), ids=lambda d: str(d.relative_to(terraform_dir)))
def test_versions_are_pinned(directory: Path) -> None:
    blocks = load_dir(directory).get("terraform", [])
    assert any(unquote(b.get("required_version", "")).startswith(">=") for b in blocks)
    providers = {name: spec for b in blocks for p in b.get("required_providers", [])
                 for name, spec in p.items() if not name.startswith("__")}
    assert providers
    for name, spec in providers.items():
        assert unquote(spec.get("source", "")), f"{name}: no source"
        assert re.fullmatch(r"~> \d+\.\d+", unquote(spec.get("version", ""))), f"{name}: unpinned"


def test_no_secret_values_in_outputs() -> None:
    """Outputs hand out references and endpoints; nothing named like a credential is output."""
    for directory in tf_dirs():
        for name, body in labelled(load_dir(directory), "output"):
            value = str(body.get("value", ""))
            assert not re.search(r"random_password|\.result\b|password|secret_string", value), name


def test_skip_comments_name_a_check_and_a_reason() -> None:
    texts = {p: p.read_text(encoding="utf-8") for p in terraform_dir.rglob("*.tf")}
    assert any("checkov:skip=" in t for t in texts.values())
    assert {str(p): bad_skips(t) for p, t in texts.items() if bad_skips(t)} == {}


def test_bad_skips_are_caught() -> None:
    assert bad_skips("#checkov:skip=CKV_AWS_18:Access logs of an access-log bucket.") == []
    assert bad_skips("#checkov:skip=CKV_AWS_18") == ["skip of CKV_AWS_18: no reason"]
    assert bad_skips("#checkov:skip=CKV_AWS_18:because") == ["skip of CKV_AWS_18: no reason"]
    assert bad_skips("#checkov:skip=ALL:reason given here at length") == [
        "skip of 'ALL': not a check id"]


def test_checkov_passes() -> None:
    uvx = shutil.which("uvx")
    if uvx is None:
        pytest.fail("uvx (from uv) is needed to run checkov in its own environment")
    # --skip-download: no call to the Bridgecrew platform (unreachable here; nothing needed).
    command = [uvx, "--from", f"checkov=={checkov_version}", "checkov", "-d", "terraform",
               "--framework", "terraform", "--quiet", "--compact", "--skip-download", "-o", "json"]
    try:
        done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True,
                              timeout=checkov_timeout_s, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"checkov took more than {checkov_timeout_s} s")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov exited {done.returncode} without a JSON report:\n"
                    f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    passed, failures = checkov_failures(report)
    assert failures == []
    assert passed > 0, "checkov checked nothing"
    assert done.returncode == 0, done.stderr[-4000:]


def test_checkov_report_reading() -> None:
    failed = {"summary": {"passed": 3, "failed": 1, "parsing_errors": 0},
              "results": {"failed_checks": [{"check_id": "CKV_AWS_1", "resource": "a.b",
                                             "file_path": "/x.tf", "file_line_range": [1, 2]}]}}
    clean = {"summary": {"passed": 5, "failed": 0, "parsing_errors": 0}, "results": {}}
    assert checkov_failures(clean) == (5, [])
    assert checkov_failures([clean, failed]) == (8, ["CKV_AWS_1 a.b (/x.tf:[1, 2])"])
    assert checkov_failures({"summary": {"failed": 2}, "results": {}})[1] == ["2 failed check(s)"]


def test_terraform_agrees_with_regions_yaml() -> None:
    wiring, roots = wiring_and_roots()
    topology = load(regions_file)
    for root in roots:
        assert topology_disagreements(topology, regions_file, wiring, root) == []


def _modified_copy(tmp_path: Path, change: Any) -> tuple[Topology, Path]:
    raw = yaml.safe_load(regions_file.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load(path), path


def _region(raw: dict[str, Any], code: str) -> dict[str, Any]:
    return next(r for r in raw["regions"] if r["code"] == code)


def _disagreements(tmp_path: Path, change: Any) -> list[str]:
    wiring, roots = wiring_and_roots()
    topology, path = _modified_copy(tmp_path, change)
    # The roots read the real file; compare with the copy's content, not its path.
    return [p for root in roots
            for p in topology_disagreements(topology, path, wiring,
                                            RootEnvironment(root.name, path.resolve(),
                                                            root.alicloud_alias_region,
                                                            root.cockroach_cloud_provider))]


def test_a_region_on_a_cloud_without_module_disagrees(tmp_path: Path) -> None:
    problems = _disagreements(tmp_path, lambda raw: _region(raw, "us-east").update(
        cloud="gcp", location="us-east4"))
    assert "region us-east: cloud gcp has no Terraform module" in problems


def test_an_alibaba_location_without_provider_disagrees(tmp_path: Path) -> None:
    problems = _disagreements(tmp_path, lambda raw: _region(raw, "ap-southeast").update(
        location="ap-northeast-1"))
    assert any(p.startswith("region ap-southeast: Alibaba Cloud location ap-northeast-1")
               for p in problems)
    assert any("wires Alibaba Cloud location ap-southeast-1" in p for p in problems)


def test_a_removed_region_leaves_nothing_behind_in_terraform(tmp_path: Path) -> None:
    def remove_uk_south(raw: dict[str, Any]) -> None:
        raw["regions"] = [r for r in raw["regions"] if r["code"] != "uk-south"]

    assert _disagreements(tmp_path, remove_uk_south) == []


def test_a_region_of_a_cloud_cluster_needs_a_database_region(tmp_path: Path) -> None:
    new = {"code": "eu-west", "jurisdictions": ["EU"], "cloud": "azure", "location": "westeurope",
           "cluster": "global", "sovereign": False, "amqp_vhost": "corridor-eu-west",
           "status": "planned"}
    problems = _disagreements(tmp_path, lambda raw: raw["regions"].append(new))
    assert any(p.startswith("region eu-west: no database_region") for p in problems)
    new["database_region"] = "eu-west-1"
    assert _disagreements(tmp_path, lambda raw: raw["regions"].append(new)) == []


def test_an_aws_region_homed_elsewhere_disagrees(tmp_path: Path) -> None:
    problems = _disagreements(tmp_path, lambda raw: _region(raw, "us-east").update(
        database_region="us-west-2"))
    assert ("region us-east: on aws in us-east-1, but its rows would live in us-west-2 "
            "(database_region)") in problems


def test_the_cockroachdb_module_reads_database_region() -> None:
    """The same names reach the database twice: through Terraform's cluster regions and through
    regions/ddl.py's ADD REGION. Terraform must take them from regions.yaml, not keep its own."""
    module = terraform_dir / "modules" / "cockroachdb"
    main = load_hcl(module / "main.tf")
    cloud_region = str(locals_of(main)["cloud_region"])
    assert "database_region" in cloud_region
    assert "location" not in cloud_region
    for variables in (module / "variables.tf", environment_module_dir / "variables.tf"):
        text = variables.read_text(encoding="utf-8")
        assert re.search(r"database_region\s*=\s*optional\(string\)", text), variables
    assert "database_region" in (module / "self_hosted.tf").read_text(encoding="utf-8")


def test_a_moved_sovereign_region_disagrees(tmp_path: Path) -> None:
    problems = _disagreements(tmp_path, lambda raw: _region(raw, "cn-east").update(
        location="cn-beijing"))
    assert any(p.startswith("region cn-east: sovereign cluster cn") for p in problems)
    assert any("location cn-beijing has no alicloud provider" in p for p in problems)


def test_a_new_aws_region_is_one_entry(tmp_path: Path) -> None:
    new = {"code": "eu-west", "jurisdictions": ["EU"], "cloud": "aws", "location": "eu-west-1",
           "cluster": "global", "sovereign": False, "amqp_vhost": "corridor-eu-west",
           "status": "planned", "database_region": "eu-west-1"}
    assert _disagreements(tmp_path, lambda raw: raw["regions"].append(new)) == []


def test_an_environment_reading_another_file_disagrees(tmp_path: Path) -> None:
    wiring, roots = wiring_and_roots()
    other = RootEnvironment("staging", tmp_path / "elsewhere.yaml", roots[0].alicloud_alias_region,
                            roots[0].cockroach_cloud_provider)
    problems = topology_disagreements(load(regions_file), regions_file, wiring, other)
    assert problems == [f"environment staging reads {other.regions_file}, not {regions_file}"]
