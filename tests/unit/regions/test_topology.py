"""The regions file: the shipped file loads as documented, bad files fail naming where and what."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from regions import topology
from regions.topology import RegionsFileError, Topology, load, parse

Raw = dict[str, Any]


@pytest.fixture
def raw() -> Raw:
    """A fresh, mutable copy of the shipped regions file."""
    return yaml.safe_load(topology.default_path.read_text(encoding="utf-8"))


def _region(raw: Raw, code: str) -> Raw:
    return next(r for r in raw["regions"] if r["code"] == code)


def _cluster(raw: Raw, name: str) -> Raw:
    return next(c for c in raw["clusters"] if c["name"] == name)


def _fails(raw: Raw) -> RegionsFileError:
    with pytest.raises(RegionsFileError) as info:
        parse(raw)
    return info.value


def _assert_names(err: RegionsFileError, where: str, field: str) -> None:
    assert err.where == where, str(err)
    assert err.field == field, str(err)
    assert where in str(err), str(err)
    assert repr(field) in str(err), str(err)


# --- the shipped file ----------------------------------------------------------------------------


def test_shipped_file_loads() -> None:
    topo = load()
    assert isinstance(topo, Topology)
    assert [r.code for r in topo.regions] == [
        "eu-central", "uk-south", "us-east", "ap-southeast", "cn-east"]
    assert topo.control_cluster == "global"
    assert topo.control_database_url_env == "CORRIDOR_CONTROL_DATABASE_URL"
    assert [c.name for c in topo.clusters] == ["global", "cn"]
    assert all(r.status == "active" for r in topo.regions)


def test_load_default_path_is_the_repo_regions_file() -> None:
    assert topology.default_path == Path(__file__).resolve().parents[3] / "regions.yaml"
    assert load() == load(topology.default_path)


def test_cn_east_is_sovereign_on_its_own_cluster() -> None:
    topo = load()
    cn = topo.region("cn-east")
    assert cn.sovereign is True
    assert cn.cluster == "cn"
    assert cn.cluster != topo.control_cluster
    assert [r.code for r in topo.regions_of("cn")] == ["cn-east"]
    assert topo.cluster("cn").primary_region == "cn-east"
    assert [r.code for r in topo.regions if r.sovereign] == ["cn-east"]


def test_sg_and_hk_are_served_by_ap_southeast() -> None:
    topo = load()
    assert [r.code for r in topo.regions_for("SG")] == ["ap-southeast"]
    assert [r.code for r in topo.regions_for("HK")] == ["ap-southeast"]
    assert topo.region("ap-southeast").jurisdictions == ("SG", "HK")


def test_every_known_jurisdiction_is_served_exactly_once() -> None:
    topo = load()
    served = {j: [r.code for r in topo.regions_for(j)] for j in topology.jurisdictions_known}
    assert served == {
        "EU": ["eu-central"], "UK": ["uk-south"], "US": ["us-east"],
        "SG": ["ap-southeast"], "HK": ["ap-southeast"], "CN": ["cn-east"],
    }


def test_global_cluster_holds_the_non_sovereign_regions() -> None:
    topo = load()
    glob = topo.cluster("global")
    assert glob.primary_region == "eu-central"
    assert glob.database_url_env == "CORRIDOR_DATABASE_URL_GLOBAL"
    assert [r.code for r in topo.regions_of("global")] == [
        "eu-central", "uk-south", "us-east", "ap-southeast"]
    assert topo.cluster("cn").database_url_env == "CORRIDOR_DATABASE_URL_CN"


def test_region_fields_are_parsed() -> None:
    r = load().region("uk-south")
    assert r == topology.Region(
        code="uk-south", jurisdictions=("UK",), cloud="azure", location="uksouth",
        cluster="global", sovereign=False, amqp_vhost="corridor-uk-south", status="active",
        database_region="eu-west-2")


def test_database_region_defaults_to_the_code(raw: Raw) -> None:
    del _region(raw, "us-east")["database_region"]
    topo = parse(raw)
    assert topo.region("us-east").database_region == "us-east"
    assert topo.region("cn-east").database_region == "cn-east"
    assert topo.database_regions("global") == {
        "eu-central": "eu-central-1", "uk-south": "eu-west-2", "us-east": "us-east",
        "ap-southeast": "ap-southeast-1"}


def test_database_region_twice_in_one_cluster(raw: Raw) -> None:
    _region(raw, "us-east")["database_region"] = "eu-central-1"
    err = _fails(raw)
    _assert_names(err, "cluster global: database region eu-central-1", "database_region")


def test_the_same_database_region_in_two_clusters_is_fine(raw: Raw) -> None:
    _region(raw, "cn-east")["database_region"] = "eu-central-1"
    assert parse(raw).region("cn-east").database_region == "eu-central-1"


@pytest.mark.parametrize("bad", ["", "EU-CENTRAL-1", "eu central", "x", 7, "eu'1"])
def test_database_region_malformed(raw: Raw, bad: object) -> None:
    _region(raw, "us-east")["database_region"] = bad
    _assert_names(_fails(raw), "region us-east", "database_region")


def test_topology_is_immutable() -> None:
    topo = load()
    with pytest.raises(AttributeError):
        topo.control_cluster = "cn"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        topo.regions[0].cluster = "cn"  # type: ignore[misc]
    assert isinstance(topo.regions, tuple)
    assert isinstance(topo.clusters, tuple)


# --- Topology helpers ----------------------------------------------------------------------------


def test_region_and_cluster_lookups() -> None:
    topo = load()
    assert topo.region("us-east").location == "us-east-1"
    assert topo.cluster("global").name == "global"
    assert topo.has_region("eu-central")
    assert not topo.has_region("eu-west")
    with pytest.raises(KeyError):
        topo.region("eu-west")
    with pytest.raises(KeyError):
        topo.cluster("nowhere")


def test_regions_of_unknown_cluster_and_regions_for_unknown_jurisdiction_are_empty() -> None:
    topo = load()
    assert topo.regions_of("nowhere") == []
    assert topo.regions_for("FR") == []
    assert topo.regions_for("eu") == []  # case-sensitive: jurisdictions are upper case


def test_regions_for_returns_every_region_serving_a_jurisdiction(raw: Raw) -> None:
    _region(raw, "uk-south")["jurisdictions"] = ["UK", "EU"]
    topo = parse(raw)
    assert [r.code for r in topo.regions_for("EU")] == ["eu-central", "uk-south"]
    assert [r.code for r in topo.regions_for("UK")] == ["uk-south"]


def test_parse_accepts_the_file_unchanged(raw: Raw) -> None:
    assert parse(copy.deepcopy(raw)) == load()


# --- bad files: region fields --------------------------------------------------------------------


@pytest.mark.parametrize("cloud", ["oracle", "AWS", ""])
def test_unknown_cloud(raw: Raw, cloud: str) -> None:
    _region(raw, "us-east")["cloud"] = cloud
    _assert_names(_fails(raw), "region us-east", "cloud")


@pytest.mark.parametrize("code", ["EU-central", "eucentral", "eu_central", "eu-", "-eu", "1eu-x",
                                  "eu central", "eu-central;drop"])
def test_bad_region_code_format(raw: Raw, code: str) -> None:
    raw["regions"][1]["code"] = code  # uk-south, the second region
    err = _fails(raw)
    _assert_names(err, "region #2", "code")
    assert repr(code) in str(err)


def test_missing_region_code(raw: Raw) -> None:
    del raw["regions"][2]["code"]
    _assert_names(_fails(raw), "region #3", "code")


def test_duplicate_region_code(raw: Raw) -> None:
    dup = copy.deepcopy(_region(raw, "uk-south"))
    dup["amqp_vhost"] = "corridor-uk-south-2"
    raw["regions"].append(dup)
    _assert_names(_fails(raw), "region uk-south", "code")
    assert "appears twice" in str(_fails(raw))


def test_unknown_cluster_reference(raw: Raw) -> None:
    _region(raw, "us-east")["cluster"] = "us"
    err = _fails(raw)
    _assert_names(err, "region us-east", "cluster")
    assert "'us'" in str(err)


def test_sovereign_region_sharing_a_cluster(raw: Raw) -> None:
    _region(raw, "uk-south")["cluster"] = "cn"
    err = _fails(raw)
    _assert_names(err, "region cn-east", "sovereign")
    assert "'cn'" in str(err)


def test_sovereign_flag_on_a_shared_cluster_region(raw: Raw) -> None:
    _region(raw, "us-east")["sovereign"] = True
    _assert_names(_fails(raw), "region us-east", "sovereign")


def test_sovereign_region_on_the_control_cluster(raw: Raw) -> None:
    # cn-east alone on its cluster, but that cluster is made the control-plane cluster.
    raw["control"]["cluster"] = "cn"
    err = _fails(raw)
    _assert_names(err, "region cn-east", "cluster")
    assert "control" in str(err)


@pytest.mark.parametrize("jurisdiction", ["FR", "eu", "", None, 1])
def test_unknown_jurisdiction(raw: Raw, jurisdiction: object) -> None:
    _region(raw, "eu-central")["jurisdictions"] = ["EU", jurisdiction]
    err = _fails(raw)
    _assert_names(err, "region eu-central", "jurisdictions")
    assert repr(jurisdiction) in str(err)


@pytest.mark.parametrize("value", [[], None, "EU", {"EU": True}])
def test_empty_or_non_list_jurisdictions(raw: Raw, value: object) -> None:
    _region(raw, "eu-central")["jurisdictions"] = value
    _assert_names(_fails(raw), "region eu-central", "jurisdictions")


def test_missing_jurisdictions(raw: Raw) -> None:
    del _region(raw, "eu-central")["jurisdictions"]
    _assert_names(_fails(raw), "region eu-central", "jurisdictions")


@pytest.mark.parametrize("value", ["true", "false", "yes", 1, 0, None])
def test_non_bool_sovereign(raw: Raw, value: object) -> None:
    _region(raw, "cn-east")["sovereign"] = value
    _assert_names(_fails(raw), "region cn-east", "sovereign")


@pytest.mark.parametrize("status", ["retired", "ACTIVE", "", None])
def test_bad_status(raw: Raw, status: object) -> None:
    _region(raw, "ap-southeast")["status"] = status
    _assert_names(_fails(raw), "region ap-southeast", "status")


@pytest.mark.parametrize("status", sorted(topology.statuses))
def test_every_documented_status_is_accepted(raw: Raw, status: str) -> None:
    _region(raw, "ap-southeast")["status"] = status
    assert parse(raw).region("ap-southeast").status == status


@pytest.mark.parametrize("field", ["location", "amqp_vhost", "cluster", "cloud", "status"])
def test_missing_region_string_field(raw: Raw, field: str) -> None:
    del _region(raw, "us-east")[field]
    _assert_names(_fails(raw), "region us-east", field)


def test_region_entry_not_a_mapping(raw: Raw) -> None:
    raw["regions"][3] = "ap-southeast"
    _assert_names(_fails(raw), "region #4", "-")


# --- bad files: clusters and control -------------------------------------------------------------


def test_cluster_primary_region_not_among_its_regions(raw: Raw) -> None:
    _cluster(raw, "global")["primary_region"] = "cn-east"
    err = _fails(raw)
    _assert_names(err, "cluster global", "primary_region")
    assert "'cn-east'" in str(err)


def test_cluster_primary_region_unknown(raw: Raw) -> None:
    _cluster(raw, "cn")["primary_region"] = "cn-north"
    _assert_names(_fails(raw), "cluster cn", "primary_region")


def test_cluster_with_no_regions(raw: Raw) -> None:
    raw["clusters"].append({"name": "spare", "database_url_env": "CORRIDOR_DATABASE_URL_SPARE",
                            "primary_region": "eu-central"})
    err = _fails(raw)
    _assert_names(err, "cluster spare", "name")
    assert "no region" in str(err)


def test_duplicate_cluster_name(raw: Raw) -> None:
    raw["clusters"].append({"name": "cn", "database_url_env": "CORRIDOR_DATABASE_URL_CN2",
                            "primary_region": "cn-east"})
    _assert_names(_fails(raw), "cluster cn", "name")


def test_duplicate_cluster_database_url_env(raw: Raw) -> None:
    _cluster(raw, "cn")["database_url_env"] = "CORRIDOR_DATABASE_URL_GLOBAL"
    _assert_names(_fails(raw), "cluster CORRIDOR_DATABASE_URL_GLOBAL", "database_url_env")


@pytest.mark.parametrize("env", ["corridor_url", "1URL", "URL-GLOBAL", ""])
def test_bad_cluster_database_url_env(raw: Raw, env: str) -> None:
    _cluster(raw, "cn")["database_url_env"] = env
    _assert_names(_fails(raw), "cluster cn", "database_url_env")


@pytest.mark.parametrize("name", ["Global", "1cn", "a" * 40, ""])
def test_bad_cluster_name(raw: Raw, name: str) -> None:
    raw["clusters"][1]["name"] = name
    _assert_names(_fails(raw), "cluster #2", "name")


def test_control_cluster_unknown(raw: Raw) -> None:
    raw["control"]["cluster"] = "central"
    err = _fails(raw)
    _assert_names(err, "control", "cluster")
    assert "'central'" in str(err)


def test_control_not_a_mapping(raw: Raw) -> None:
    raw["control"] = "global"
    assert _fails(raw).where == "control"


def test_control_database_url_env_bad(raw: Raw) -> None:
    raw["control"]["database_url_env"] = "lower_case"
    _assert_names(_fails(raw), "control", "database_url_env")


# --- bad files: top level ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 0, "1", None, 1.5])
def test_version_not_1(raw: Raw, version: object) -> None:
    raw["version"] = version
    _assert_names(_fails(raw), "file", "version")


def test_version_missing(raw: Raw) -> None:
    del raw["version"]
    _assert_names(_fails(raw), "file", "version")


def test_version_true_is_not_1(raw: Raw) -> None:
    """YAML ``version: true`` is a bool, not the integer 1 (``True == 1`` in Python)."""
    raw["version"] = True
    _assert_names(_fails(raw), "file", "version")


@pytest.mark.parametrize("regions", [{"eu-central": {}}, "eu-central", None, []])
def test_regions_not_a_non_empty_list(raw: Raw, regions: object) -> None:
    raw["regions"] = regions
    _assert_names(_fails(raw), "file", "regions")


@pytest.mark.parametrize("clusters", [{"global": {}}, None, []])
def test_clusters_not_a_non_empty_list(raw: Raw, clusters: object) -> None:
    raw["clusters"] = clusters
    _assert_names(_fails(raw), "file", "clusters")


def _extra_regions(raw: Raw, total: int) -> None:
    """Pad the file with valid non-sovereign regions on the global cluster up to ``total``."""
    template = _region(raw, "eu-central")
    for i in range(total - len(raw["regions"])):
        extra = copy.deepcopy(template)
        extra["code"] = f"eu-extra{i}"
        extra["amqp_vhost"] = f"corridor-eu-extra{i}"
        extra["database_region"] = f"eu-extra-{i}"
        raw["regions"].append(extra)
    assert len(raw["regions"]) == total


def test_too_many_regions(raw: Raw) -> None:
    _extra_regions(raw, topology.regions_max + 1)
    err = _fails(raw)
    _assert_names(err, "file", "regions")
    assert str(topology.regions_max) in str(err)


def test_regions_max_is_accepted(raw: Raw) -> None:
    _extra_regions(raw, topology.regions_max)
    assert len(parse(raw).regions) == topology.regions_max


@pytest.mark.parametrize("document", [None, [], "version: 1", 1])
def test_file_not_a_mapping(document: object) -> None:
    err = _fails(document)  # type: ignore[arg-type]
    assert err.where == "file"


# --- load() on files -----------------------------------------------------------------------------


def test_load_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text("version: 1\nregions: [\n  - code: eu-central\n", encoding="utf-8")
    with pytest.raises(RegionsFileError) as info:
        load(path)
    assert info.value.where == str(path)
    assert str(path) in str(info.value)
    assert "not valid YAML" in str(info.value)
    assert isinstance(info.value.__cause__, yaml.YAMLError)


def test_load_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(RegionsFileError) as info:
        load(path)
    assert info.value.where == "file"


def test_load_tmp_file_with_one_field_broken(tmp_path: Path, raw: Raw) -> None:
    _region(raw, "us-east")["cloud"] = "oracle"
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(RegionsFileError) as info:
        load(path)
    _assert_names(info.value, "region us-east", "cloud")


def test_load_round_trips_a_valid_copy(tmp_path: Path, raw: Raw) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert load(path) == load()


def test_regions_file_error_is_a_value_error() -> None:
    err = RegionsFileError("region x-y", "cloud", "bad")
    assert isinstance(err, ValueError)
    assert str(err) == "regions file: region x-y: field 'cloud': bad"
