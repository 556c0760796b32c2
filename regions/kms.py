"""AWS KMS as a region's key-encryption key: ``aws-kms:<key ARN or alias ARN>``.

One ``AwsKmsKeys`` serves one Corridor region with one symmetric KMS key, called in the AWS
region named by the ARN. Credentials come from boto3's standard chain (environment, profile,
instance or task role), never from Corridor's configuration. Data keys go to KMS only to be
encrypted or decrypted; ``rewrap`` uses ``ReEncrypt``, so there the data key never reaches
Corridor at all.

Every call carries an encryption context naming the Corridor region and the purpose. KMS
authenticates it with the ciphertext, so a key wrapped for one region does not unwrap for
another even if both were configured with the same KMS key. The context is logged in CloudTrail
in the clear, and holds nothing secret.

A KMS key keeps all its backing keys: ciphertext names the one that encrypted it, and KMS
decrypts with it whatever rotations followed, while encryption always uses the newest. KMS tells
us nothing about backing keys beyond the list of completed rotations, so the ``kek_id`` is
``aws-kms:<key ARN>#r<n>`` with ``n`` the number of rotations listed. It is a label for
``corridor keys rotate``, which rewraps the rows whose label is not the current one, not
something decryption depends on. It is cached per process and listed again after
``label_check_s``, and at once after ``rotate``. A process holding a stale label stamps new rows
with it although KMS encrypted them under the newest backing key; the only cost is one
superfluous rewrap at the next rotation. ``wrap`` and ``rewrap`` read the label before calling
KMS, so a label is never newer than the backing key used, up to KMS's eventual consistency.
An alias ARN is resolved to its key's ARN on first use, so labels name the key, not the alias.

On-demand rotation completes in the background (and KMS allows only a few per key): ``rotate``
waits for it to be listed, at most ``rotation_wait_s_max``. If a rotation is already in progress
it waits for that one instead of starting another, so running ``corridor keys rotate`` again
after a timeout is safe.

Permissions on the key: ``kms:Encrypt``, ``kms:Decrypt``, ``kms:ReEncrypt*``,
``kms:ListKeyRotations`` and ``kms:DescribeKey`` (for an alias); to rotate, also
``kms:RotateKeyOnDemand`` and ``kms:GetKeyRotationStatus``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from payments.crypto import data_key_bytes
from regions.keyring import KeyUnavailable, WrappedKey

label_check_s = 5.0
rotation_wait_s_max = 120.0
rotation_poll_s = 2.0
kms_connect_timeout_s = 5.0
kms_read_timeout_s = 10.0
kms_attempts_max = 3
context_purpose = "corridor-data-key"
_kek_id_prefix = "aws-kms:"


class Paginator(Protocol):
    def paginate(self, **kwargs: Any) -> Iterable[Mapping[str, Any]]: ...


class KmsClient(Protocol):
    """The part of boto3's KMS client used here."""

    def describe_key(self, *, KeyId: str) -> Mapping[str, Any]: ...

    def encrypt(self, *, KeyId: str, Plaintext: bytes,
                EncryptionContext: Mapping[str, str]) -> Mapping[str, Any]: ...

    def decrypt(self, *, CiphertextBlob: bytes, KeyId: str,
                EncryptionContext: Mapping[str, str]) -> Mapping[str, Any]: ...

    def re_encrypt(self, *, CiphertextBlob: bytes, SourceKeyId: str,
                   SourceEncryptionContext: Mapping[str, str], DestinationKeyId: str,
                   DestinationEncryptionContext: Mapping[str, str]) -> Mapping[str, Any]: ...

    def get_key_rotation_status(self, *, KeyId: str) -> Mapping[str, Any]: ...

    def rotate_key_on_demand(self, *, KeyId: str) -> Mapping[str, Any]: ...

    def get_paginator(self, operation_name: str) -> Paginator: ...


class AwsKmsKeys:
    """The ``KeyProvider`` of one Corridor region backed by one KMS key."""

    def __init__(self, region: str, key: str, kms: KmsClient) -> None:
        aws_region_of(region, key)
        self._region = region
        self._key = key
        self._kms = kms
        self._context = {"corridor:purpose": context_purpose, "corridor:region": region}
        self._key_arn: str | None = None if ":alias/" in key else key
        self._rotations: tuple[float, int] | None = None

    @classmethod
    def from_spec(cls, region: str, spec: str) -> AwsKmsKeys:
        """The provider for ``aws-kms:<spec>``; the client calls the ARN's AWS region."""
        config = Config(connect_timeout=kms_connect_timeout_s, read_timeout=kms_read_timeout_s,
                        retries={"max_attempts": kms_attempts_max, "mode": "standard"})
        client = boto3.client("kms", region_name=aws_region_of(region, spec), config=config)
        return cls(region, spec, client)

    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey:
        self._check(region)
        if len(plaintext_key) != data_key_bytes:
            raise ValueError(f"a data key is {data_key_bytes} bytes, got {len(plaintext_key)}")
        kek_id = self.current_kek_id(region)
        with _kms_errors(f"wrap a data key of region {region!r} under {kek_id!r}"):
            out = self._kms.encrypt(KeyId=self.key_arn(), Plaintext=plaintext_key,
                                    EncryptionContext=self._context)
        return WrappedKey(kek_id=kek_id, ciphertext=out["CiphertextBlob"])

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        self._check(region, wrapped.kek_id)
        with _kms_errors(f"unwrap a data key of region {region!r} under {wrapped.kek_id!r}"):
            out = self._kms.decrypt(CiphertextBlob=wrapped.ciphertext, KeyId=self.key_arn(),
                                    EncryptionContext=self._context)
        plaintext_key: bytes = out["Plaintext"]
        if len(plaintext_key) != data_key_bytes:
            raise KeyUnavailable(f"what {wrapped.kek_id!r} unwraps to is not a data key")
        return plaintext_key

    def rewrap(self, region: str, wrapped: WrappedKey) -> WrappedKey:
        """Re-encrypted inside KMS under the key's newest backing key."""
        current = self.current_kek_id(region)
        if wrapped.kek_id == current:
            return wrapped
        self._check(region, wrapped.kek_id)
        with _kms_errors(f"rewrap a data key of region {region!r} from {wrapped.kek_id!r}"):
            out = self._kms.re_encrypt(
                CiphertextBlob=wrapped.ciphertext, SourceKeyId=self.key_arn(),
                SourceEncryptionContext=self._context, DestinationKeyId=self.key_arn(),
                DestinationEncryptionContext=self._context)
        return WrappedKey(kek_id=current, ciphertext=out["CiphertextBlob"])

    def rotate(self, region: str) -> str:
        """Rotate the key's backing key (or join a rotation in progress) and wait until it
        is listed; returns the new ``kek_id``."""
        self._check(region)
        before = self._list_rotations()
        with _kms_errors(f"rotate {self.key_arn()!r}"):
            status = self._kms.get_key_rotation_status(KeyId=self.key_arn())
            if status.get("OnDemandRotationStartDate") is None:
                self._kms.rotate_key_on_demand(KeyId=self.key_arn())
        deadline = time.monotonic() + rotation_wait_s_max
        while (count := self._list_rotations()) <= before:
            if time.monotonic() >= deadline:
                raise KeyUnavailable(
                    f"KMS rotation of {self.key_arn()!r} had not completed after "
                    f"{rotation_wait_s_max:.0f} s; run `corridor keys rotate` again to wait for it")
            time.sleep(rotation_poll_s)
        return self._kek_id(count)

    def current_kek_id(self, region: str) -> str:
        self._check(region)
        cached = self._rotations
        if cached is not None and time.monotonic() - cached[0] < label_check_s:
            return self._kek_id(cached[1])
        return self._kek_id(self._list_rotations())

    def key_arn(self) -> str:
        """The key's ARN; an alias is resolved once, on first use."""
        if self._key_arn is None:
            with _kms_errors(f"resolve {self._key!r}"):
                arn: str = self._kms.describe_key(KeyId=self._key)["KeyMetadata"]["Arn"]
            self._key_arn = arn
        return self._key_arn

    def _list_rotations(self) -> int:
        """The number of completed rotations of the key, remembered for ``label_check_s``."""
        with _kms_errors(f"list the rotations of {self.key_arn()!r}"):
            pages = self._kms.get_paginator("list_key_rotations").paginate(
                KeyId=self.key_arn(), IncludeKeyMaterial="ROTATIONS_ONLY")
            count = sum(len(page["Rotations"]) for page in pages)
        self._rotations = (time.monotonic(), count)
        return count

    def _kek_id(self, rotations: int) -> str:
        return f"{_kek_id_prefix}{self.key_arn()}#r{rotations}"

    def _check(self, region: str, kek_id: str | None = None) -> None:
        """Refuse another region, and a ``kek_id`` that is not of this key."""
        if region != self._region:
            raise KeyUnavailable(f"{self._key!r} is the key of region {self._region!r}, "
                                 f"not of {region!r}")
        if kek_id is None:
            return
        digits = kek_id.removeprefix(f"{_kek_id_prefix}{self.key_arn()}#r")
        if digits == kek_id or not digits.isascii() or not digits.isdigit():
            raise KeyUnavailable(f"{kek_id!r} is not a version of the KMS key of region "
                                 f"{region!r}")


def aws_region_of(region: str, arn: str) -> str:
    """The AWS region of a KMS key ARN or alias ARN; ``ValueError`` naming what is wrong."""
    fields = arn.split(":", 5)
    problem = _arn_problem(fields)
    if problem is not None:
        raise ValueError(f"region {region}: aws-kms key {arn!r} {problem}; expected "
                         "arn:aws:kms:<aws region>:<account>:key/<key id> or ...:alias/<name>")
    return fields[3]


def _arn_problem(fields: list[str]) -> str | None:
    if len(fields) != 6 or fields[0] != "arn":
        return "is not an ARN"
    _, partition, service, aws_region, account, resource = fields
    kind, _, name = resource.partition("/")
    if not partition.startswith("aws"):
        return f"names partition {partition!r}, not an AWS one"
    if service != "kms":
        return f"is an ARN of {service!r}, not of 'kms'"
    if not aws_region:
        return "names no AWS region"
    if not (account.isascii() and account.isdigit() and len(account) == 12):
        return f"has account {account!r}, not 12 digits"
    if kind not in ("key", "alias"):
        return f"names a {kind!r}, not a 'key' or an 'alias'"
    if not name:
        return f"names no {kind}"
    return None


@contextlib.contextmanager
def _kms_errors(doing: str) -> Iterator[None]:
    """KMS and botocore failures as ``KeyUnavailable``, naming only the error: no request
    parameters, so no key material, reach the message."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "unknown error")
        raise KeyUnavailable(f"KMS could not {doing}: {code}") from None
    except BotoCoreError as exc:
        raise KeyUnavailable(f"KMS could not {doing}: {type(exc).__name__}") from None
