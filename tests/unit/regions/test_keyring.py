"""The local keyring: a private file, versioned KEKs per region, wrapped keys bound to region."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from payments.crypto import new_data_key
from regions.keyring import (
    KeyUnavailable,
    LocalKeyring,
    RegionalKeys,
    WrappedKey,
    provider_from_settings,
)

regions = ("eu-central", "us-east")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def ring(path: Path) -> LocalKeyring:
    return LocalKeyring(path, regions)


def test_file_is_created_private(ring: LocalKeyring, path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [ring.current_version(r) for r in regions] == [1, 1]
    assert list(path.parent.iterdir()) == [path]


def test_round_trip(ring: LocalKeyring) -> None:
    data_key = new_data_key()
    wrapped = ring.wrap("eu-central", data_key)
    assert wrapped.kek_id == "local:eu-central:v1"
    assert data_key not in wrapped.ciphertext
    assert ring.unwrap("eu-central", wrapped) == data_key


def test_rotate_wraps_with_new_version_and_keeps_old(ring: LocalKeyring, path: Path) -> None:
    data_key = new_data_key()
    old = ring.wrap("eu-central", data_key)
    assert ring.rotate("eu-central") == "local:eu-central:v2"
    assert ring.current_version("eu-central") == 2
    assert ring.current_kek_id("eu-central") == "local:eu-central:v2"
    assert ring.current_version("us-east") == 1
    new = ring.wrap("eu-central", data_key)
    assert new.kek_id == "local:eu-central:v2"
    assert ring.unwrap("eu-central", old) == data_key
    assert ring.unwrap("eu-central", new) == data_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wrapped_key_of_one_region_fails_under_another(ring: LocalKeyring) -> None:
    wrapped = ring.wrap("eu-central", new_data_key())
    with pytest.raises(KeyUnavailable):
        ring.unwrap("us-east", wrapped)
    relabelled = replace(wrapped, kek_id="local:us-east:v1")
    with pytest.raises(KeyUnavailable):
        ring.unwrap("us-east", relabelled)


def test_reload_unwraps_keys_wrapped_before(ring: LocalKeyring, path: Path) -> None:
    data_key = new_data_key()
    before = ring.wrap("us-east", data_key)
    ring.rotate("us-east")
    after = ring.wrap("us-east", data_key)
    reloaded = LocalKeyring(path, regions)
    assert reloaded.current_version("us-east") == 2
    assert reloaded.unwrap("us-east", before) == data_key
    assert reloaded.unwrap("us-east", after) == data_key


def test_reload_adds_new_regions_and_keeps_old(ring: LocalKeyring, path: Path) -> None:
    data_key = new_data_key()
    wrapped = ring.wrap("eu-central", data_key)
    grown = LocalKeyring(path, ("eu-central", "ap-southeast"))
    assert grown.current_version("ap-southeast") == 1
    assert LocalKeyring(path, ()).unwrap("eu-central", wrapped) == data_key


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_refuses_file_open_to_group_or_others(ring: LocalKeyring, path: Path, mode: int) -> None:
    path.chmod(mode)
    with pytest.raises(PermissionError, match="chmod 600"):
        LocalKeyring(path, regions)


@pytest.mark.parametrize(
    "kek_id", ["local:eu-central:v9", "local:eu-central:v", "local:eu-central:vx", "kms:eu:v1"]
)
def test_unknown_kek_version_is_unavailable(ring: LocalKeyring, kek_id: str) -> None:
    wrapped = ring.wrap("eu-central", new_data_key())
    with pytest.raises(KeyUnavailable):
        ring.unwrap("eu-central", replace(wrapped, kek_id=kek_id))


def test_tampered_wrapped_key_is_unavailable(ring: LocalKeyring) -> None:
    wrapped = ring.wrap("eu-central", new_data_key())
    flipped = bytes([wrapped.ciphertext[-1] ^ 1])
    with pytest.raises(KeyUnavailable):
        ring.unwrap("eu-central", WrappedKey(wrapped.kek_id, wrapped.ciphertext[:-1] + flipped))


def test_unknown_region_is_unavailable(ring: LocalKeyring) -> None:
    with pytest.raises(KeyUnavailable):
        ring.wrap("mars-north", new_data_key())


def test_provider_from_settings(path: Path) -> None:
    keys = provider_from_settings("local", path, regions)
    data_key = new_data_key()
    assert keys.unwrap("us-east", keys.wrap("us-east", data_key)) == data_key
    with pytest.raises(KeyUnavailable, match="no key provider"):
        keys.wrap("cn-east", data_key)
    with pytest.raises(ValueError, match="supported: local, aws-kms, vault-transit, "
                                         "azure-keyvault, alicloud-kms"):
        provider_from_settings("kms", path, regions)
    with pytest.raises(ValueError, match="path"):
        provider_from_settings("local", None, regions)
    with pytest.raises(ValueError, match="needs a key"):
        provider_from_settings("local", path, regions, {"us-east": "aws-kms:"})
    with pytest.raises(ValueError, match="unknown regions"):
        provider_from_settings("local", path, regions, {"mars-north": "local"})
    with pytest.raises(ValueError, match="names one key but would serve regions"):
        provider_from_settings("vault-transit:transit/one", path, regions)


def test_rewrap_moves_a_key_to_the_current_version(ring: LocalKeyring) -> None:
    data_key = new_data_key()
    old = ring.wrap("eu-central", data_key)
    assert ring.rewrap("eu-central", old) == old
    ring.rotate("eu-central")
    moved = ring.rewrap("eu-central", old)
    assert moved.kek_id == "local:eu-central:v2"
    assert ring.unwrap("eu-central", moved) == data_key


def test_a_running_process_sees_another_process_rotate(path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import regions.keyring as keyring

    monkeypatch.setattr(keyring, "reload_check_s", 0.0)
    running = LocalKeyring(path, regions)
    operator = LocalKeyring(path, regions)
    data_key = new_data_key()
    operator.rotate("eu-central")
    rotated = operator.wrap("eu-central", data_key)
    assert rotated.kek_id == "local:eu-central:v2"
    assert running.unwrap("eu-central", rotated) == data_key
    assert running.current_kek_id("eu-central") == "local:eu-central:v2"


def test_each_region_gets_the_provider_its_spec_names(path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Built from configuration alone: no provider is called until a key is wrapped."""
    for name, value in {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id",
                        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
                        "VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t",
                        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}.items():
        monkeypatch.setenv(name, value)
    keys = provider_from_settings("local", path, (
        "eu-central", "us-east", "uk-south", "cn-east", "ap-southeast"), {
        "us-east": "aws-kms:arn:aws:kms:us-east-1:111122223333:key/"
                   "1234abcd-12ab-34cd-56ef-1234567890ab",
        "uk-south": "azure-keyvault:https://corridor-uk.vault.azure.net/keys/kek",
        "cn-east": "alicloud-kms:cn-shanghai/key-shh0123456789",
        "ap-southeast": "vault-transit:transit/corridor-ap-southeast"})
    assert isinstance(keys, RegionalKeys)
    kinds = {r: type(p).__name__ for r, p in keys._providers.items()}
    assert kinds == {"eu-central": "LocalKeyring", "us-east": "AwsKmsKeys",
                     "uk-south": "AzureKeyVaultKeys", "cn-east": "AlicloudKmsKeys",
                     "ap-southeast": "VaultTransitKeys"}
