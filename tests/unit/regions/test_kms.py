"""The AWS KMS key provider, against moto's emulation of KMS (not AWS itself).

Moto does not refuse a disabled key, and its on-demand rotations complete at once; the tests
that need KMS's real behaviour there stand it in with botocore's ``before-call`` hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws

from payments.crypto import new_data_key
from regions import kms as kms_module
from regions.keyring import KeyUnavailable, WrappedKey, provider_from_settings
from regions.kms import AwsKmsKeys, KmsClient

aws_region = "eu-central-1"


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    with mock_aws():
        yield boto3.client("kms", region_name=aws_region)


@pytest.fixture
def key_arn(kms: Any) -> str:
    arn: str = kms.create_key(Description="corridor eu-central")["KeyMetadata"]["Arn"]
    return arn


@pytest.fixture
def keys(kms: KmsClient, key_arn: str) -> AwsKmsKeys:
    return AwsKmsKeys("eu-central", key_arn, kms)


def answered(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    """What a ``before-call`` hook returns to answer a call itself, instead of moto."""
    return AWSResponse(f"https://kms.{aws_region}.amazonaws.com/", 200, HTTPHeaders(), None), parsed


def test_round_trip(keys: AwsKmsKeys, key_arn: str) -> None:
    data_key = new_data_key()
    wrapped = keys.wrap("eu-central", data_key)
    assert wrapped.kek_id == f"aws-kms:{key_arn}#r0"
    assert data_key not in wrapped.ciphertext
    assert keys.unwrap("eu-central", wrapped) == data_key


def test_other_regions_are_refused(keys: AwsKmsKeys) -> None:
    wrapped = keys.wrap("eu-central", new_data_key())
    with pytest.raises(KeyUnavailable, match="us-east"):
        keys.wrap("us-east", new_data_key())
    with pytest.raises(KeyUnavailable):
        keys.unwrap("us-east", wrapped)
    with pytest.raises(KeyUnavailable):
        keys.current_kek_id("us-east")


def test_encryption_context_binds_the_region(kms: KmsClient, key_arn: str,
                                            keys: AwsKmsKeys) -> None:
    """Two regions misconfigured with one KMS key still cannot read each other's keys."""
    us_east = AwsKmsKeys("us-east", key_arn, kms)
    wrapped = keys.wrap("eu-central", new_data_key())
    with pytest.raises(KeyUnavailable, match="InvalidCiphertextException"):
        us_east.unwrap("us-east", wrapped)


def test_tampered_or_foreign_ciphertext_is_refused(keys: AwsKmsKeys) -> None:
    data_key = new_data_key()
    wrapped = keys.wrap("eu-central", data_key)
    flipped = wrapped.ciphertext[:-1] + bytes([wrapped.ciphertext[-1] ^ 1])
    for ciphertext in (flipped, b"not a KMS ciphertext", b""):
        with pytest.raises(KeyUnavailable) as raised:
            keys.unwrap("eu-central", replace(wrapped, ciphertext=ciphertext))
        assert data_key.hex() not in str(raised.value)


def test_kek_id_of_another_key_or_provider_is_refused(kms: Any, keys: AwsKmsKeys) -> None:
    other_arn = kms.create_key()["KeyMetadata"]["Arn"]
    other = AwsKmsKeys("eu-central", other_arn, kms)
    foreign = other.wrap("eu-central", new_data_key())
    with pytest.raises(KeyUnavailable, match="not a version"):
        keys.unwrap("eu-central", foreign)
    wrapped = keys.wrap("eu-central", new_data_key())
    for kek_id in ("local:eu-central:v1", wrapped.kek_id + "x", wrapped.kek_id[:-1]):
        with pytest.raises(KeyUnavailable, match="not a version"):
            keys.unwrap("eu-central", replace(wrapped, kek_id=kek_id))


def test_ciphertext_of_another_key_is_refused_under_this_key_label(
        kms: Any, keys: AwsKmsKeys) -> None:
    other = AwsKmsKeys("eu-central", kms.create_key()["KeyMetadata"]["Arn"], kms)
    foreign = other.wrap("eu-central", new_data_key())
    relabelled = WrappedKey(keys.current_kek_id("eu-central"), foreign.ciphertext)
    with pytest.raises(KeyUnavailable):
        keys.unwrap("eu-central", relabelled)


def test_rotate_changes_the_label_and_old_keys_still_unwrap(keys: AwsKmsKeys,
                                                             key_arn: str) -> None:
    data_key = new_data_key()
    old = keys.wrap("eu-central", data_key)
    assert keys.rotate("eu-central") == f"aws-kms:{key_arn}#r1"
    assert keys.current_kek_id("eu-central") == f"aws-kms:{key_arn}#r1"
    assert keys.unwrap("eu-central", old) == data_key
    moved = keys.rewrap("eu-central", old)
    assert moved.kek_id == f"aws-kms:{key_arn}#r1"
    assert moved.ciphertext != old.ciphertext
    assert keys.unwrap("eu-central", moved) == data_key
    assert keys.wrap("eu-central", data_key).kek_id == f"aws-kms:{key_arn}#r1"
    assert keys.rotate("eu-central") == f"aws-kms:{key_arn}#r2"
    assert keys.unwrap("eu-central", old) == data_key


def test_rewrap_of_a_current_key_is_unchanged(keys: AwsKmsKeys) -> None:
    wrapped = keys.wrap("eu-central", new_data_key())
    assert keys.rewrap("eu-central", wrapped) is wrapped


def test_another_process_sees_a_rotation_after_label_check(
        kms: KmsClient, key_arn: str, keys: AwsKmsKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Until it lists again, a process stamps the old label; the row is merely rewrapped."""
    other_process = AwsKmsKeys("eu-central", key_arn, kms)
    assert other_process.current_kek_id("eu-central") == f"aws-kms:{key_arn}#r0"
    keys.rotate("eu-central")
    data_key = new_data_key()
    stale = other_process.wrap("eu-central", data_key)
    assert stale.kek_id == f"aws-kms:{key_arn}#r0"
    monkeypatch.setattr(kms_module, "label_check_s", 0.0)
    assert other_process.current_kek_id("eu-central") == f"aws-kms:{key_arn}#r1"
    moved = keys.rewrap("eu-central", stale)
    assert moved.kek_id == f"aws-kms:{key_arn}#r1"
    assert other_process.unwrap("eu-central", moved) == data_key


def test_rotation_not_completed_in_time_is_reported(
        kms: Any, keys: AwsKmsKeys, key_arn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kms.meta.events.register("before-call.kms.RotateKeyOnDemand",
                             lambda **_: answered({"KeyId": key_arn}))
    monkeypatch.setattr(kms_module, "rotation_wait_s_max", 0.0)
    with pytest.raises(KeyUnavailable, match="had not completed"):
        keys.rotate("eu-central")
    assert keys.current_kek_id("eu-central") == f"aws-kms:{key_arn}#r0"


def test_rotation_in_progress_is_awaited_not_started_again(
        kms: Any, keys: AwsKmsKeys, key_arn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    started_by_someone_else = boto3.client("kms", region_name=aws_region)

    def in_progress(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        started_by_someone_else.rotate_key_on_demand(KeyId=key_arn)
        return answered({"KeyId": key_arn, "KeyRotationEnabled": False,
                         "OnDemandRotationStartDate": datetime.now(UTC)})

    def refuse(**_: Any) -> None:
        raise AssertionError("a second rotation was started")

    kms.meta.events.register("before-call.kms.GetKeyRotationStatus", in_progress)
    kms.meta.events.register("before-call.kms.RotateKeyOnDemand", refuse)
    assert keys.rotate("eu-central") == f"aws-kms:{key_arn}#r1"


def test_alias_arn_resolves_to_the_key_arn(kms: Any, key_arn: str) -> None:
    kms.create_alias(AliasName="alias/corridor-eu-central", TargetKeyId=key_arn)
    alias_arn = key_arn.split(":key/")[0] + ":alias/corridor-eu-central"
    described: list[str] = []
    kms.meta.events.register("before-call.kms.DescribeKey",
                             lambda **_: described.append("DescribeKey"))
    keys = AwsKmsKeys("eu-central", alias_arn, kms)
    data_key = new_data_key()
    wrapped = keys.wrap("eu-central", data_key)
    assert wrapped.kek_id == f"aws-kms:{key_arn}#r0"
    assert keys.unwrap("eu-central", wrapped) == data_key
    assert keys.rotate("eu-central") == f"aws-kms:{key_arn}#r1"
    assert described == ["DescribeKey"]


def test_unknown_alias_is_unavailable(kms: Any, key_arn: str) -> None:
    alias_arn = key_arn.split(":key/")[0] + ":alias/nobody"
    keys = AwsKmsKeys("eu-central", alias_arn, kms)
    with pytest.raises(KeyUnavailable, match="NotFoundException"):
        keys.wrap("eu-central", new_data_key())


@pytest.mark.parametrize(("spec", "problem"), [
    ("corridor-eu-central", "is not an ARN"),
    ("alias/corridor-eu-central", "is not an ARN"),
    ("arn:aws:s3:::bucket/key", "not of 'kms'"),
    ("arn:aws:kms::111122223333:key/1234abcd", "names no AWS region"),
    ("arn:aws:kms:eu-central-1:1111:key/1234abcd", "not 12 digits"),
    ("arn:aws:kms:eu-central-1:111122223333:grant/1234abcd", "not a 'key' or an 'alias'"),
    ("arn:aws:kms:eu-central-1:111122223333:key/", "names no key"),
    ("arn:aws:kms:eu-central-1:111122223333:alias", "names no alias"),
    ("arn:gcp:kms:eu-central-1:111122223333:key/1234abcd", "not an AWS one"),
])
def test_bad_specs_are_refused(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        AwsKmsKeys.from_spec("eu-central", spec)
    assert "region eu-central" in str(raised.value)


def test_from_spec_calls_the_arn_aws_region(kms: Any) -> None:
    arn = boto3.client("kms", region_name="ap-southeast-2").create_key()["KeyMetadata"]["Arn"]
    keys = AwsKmsKeys.from_spec("ap-southeast", arn)
    data_key = new_data_key()
    assert keys.unwrap("ap-southeast", keys.wrap("ap-southeast", data_key)) == data_key


def test_disabled_key_is_unavailable(kms: Any, keys: AwsKmsKeys, key_arn: str) -> None:
    wrapped = keys.wrap("eu-central", new_data_key())
    kms.disable_key(KeyId=key_arn.rsplit("/", 1)[1])
    assert kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"] == "Disabled"

    def disabled(**_: Any) -> None:
        # AWS refuses a disabled key so; moto would still decrypt.
        raise kms.exceptions.DisabledException(
            {"Error": {"Code": "DisabledException", "Message": f"{key_arn} is disabled."}},
            "Decrypt")

    kms.meta.events.register("before-call.kms.Decrypt", disabled)
    with pytest.raises(KeyUnavailable, match="DisabledException"):
        keys.unwrap("eu-central", wrapped)


def test_missing_key_is_unavailable(kms: Any, key_arn: str) -> None:
    missing = AwsKmsKeys("eu-central", key_arn[:-4] + "0000", kms)
    with pytest.raises(KeyUnavailable, match="NotFoundException"):
        missing.wrap("eu-central", new_data_key())


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_wrong_length_data_key_is_refused(keys: AwsKmsKeys, length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        keys.wrap("eu-central", bytes(length))


def test_non_data_key_plaintext_is_unavailable(kms: Any, keys: AwsKmsKeys, key_arn: str) -> None:
    """Something else encrypted under this key and context is still not a data key."""
    context = {"corridor:purpose": kms_module.context_purpose, "corridor:region": "eu-central"}
    ciphertext = kms.encrypt(KeyId=key_arn, Plaintext=b"short", EncryptionContext=context)
    wrapped = WrappedKey(keys.current_kek_id("eu-central"), ciphertext["CiphertextBlob"])
    with pytest.raises(KeyUnavailable, match="not a data key"):
        keys.unwrap("eu-central", wrapped)


def test_provider_from_settings(kms: Any, key_arn: str, tmp_path: Path) -> None:
    provider = provider_from_settings("local", tmp_path / "k.json", ["eu-central", "us-east"],
                                      {"eu-central": f"aws-kms:{key_arn}"})
    for region in ("eu-central", "us-east"):
        data_key = new_data_key()
        wrapped = provider.wrap(region, data_key)
        assert provider.unwrap(region, wrapped) == data_key
    assert provider.current_kek_id("eu-central") == f"aws-kms:{key_arn}#r0"
    assert provider.current_kek_id("us-east") == "local:us-east:v1"
