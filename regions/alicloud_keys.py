"""Alibaba Cloud KMS as a region's key-encryption key: ``alicloud-kms:<region id>/<key>``.

One ``AlicloudKmsKeys`` serves one Corridor region with one symmetric KMS key (Aliyun_AES_256,
created with its automatic rotation policy by Terraform). ``from_spec`` takes what follows
``alicloud-kms:``: the Alibaba Cloud region id, a slash, and the key id or an alias, for example
``cn-shanghai/key-shh6xxxxxxxx`` or ``ap-southeast-1/alias/corridor-ap-southeast``. An alias is
resolved to its key id on first use, so kek_ids name the key, not the alias; a process keeps
using that key until it restarts, even if the alias is moved.

Where KMS is reached. The SDK calls ``https://kms.<region id>.aliyuncs.com``, KMS's shared
gateway on the Internet. Set ``CORRIDOR_ALICLOUD_KMS_NETWORK=vpc`` to call
``kms-vpc.<region id>.aliyuncs.com`` instead, the same gateway reached from inside an Alibaba
Cloud VPC. A key held in a KMS instance is reachable through the shared gateway only when the
instance allows it.

Credentials come from Alibaba Cloud's standard variables, read once by ``from_spec``:
``ALIBABA_CLOUD_ACCESS_KEY_ID`` and ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``, and
``ALIBABA_CLOUD_SECURITY_TOKEN`` for STS credentials. The SDK's default credential chain (OIDC,
ECS RAM role, profile files) is not used, and an STS token is not renewed here: give the process
a RAM user's AccessKey, or restart it before its token expires. The RAM policy, on the key's ARN
``acs:kms:<region id>:<account>:key/<key id>``: ``kms:Encrypt``, ``kms:Decrypt`` and
``kms:DescribeKey`` to serve; ``kms:ReEncrypt*`` (ReEncryptFrom and ReEncryptTo) and
``kms:CreateKeyVersion`` for whoever runs ``corridor keys rotate``.

What is sent. Encrypt's ``Plaintext`` is a string that KMS requires to be base64, so the data key
is sent base64 encoded, and Decrypt's ``Plaintext`` is decoded back to 32 bytes. Every call
carries an encryption context naming the purpose and the Corridor region,
``{"corridor:purpose": "corridor-data-key", "corridor:region": "<region>"}``, which the SDK sends
as the JSON string the API takes. KMS authenticates it with the ciphertext, so a key wrapped for
one region does not unwrap for another even if both were configured with the same KMS key. It is
not secret and appears in ActionTrail. ``WrappedKey.ciphertext`` is KMS's ``CiphertextBlob``
string, as ASCII bytes.

Versions and kek_ids. A KMS key keeps every key version; Encrypt uses the primary one and
answers its ``KeyVersionId``, and Decrypt picks the version the ciphertext names. The kek_id is
``alicloud-kms:<region id>/<key id>#<key version id>``, stamped from the answer of the call that
made the ciphertext, so a rotation shows up as a new kek_id and ``unwrap`` refuses a kek_id that
Decrypt's answer contradicts. ``current_kek_id`` reads DescribeKey's ``PrimaryKeyVersion``, cached
for ``kek_cache_s``, so a rotation elsewhere reaches this process within that time.

Rotation happens by the key's automatic rotation policy, which Terraform sets (KMS's
UpdateRotationPolicy; Corridor does not change it). ``rotate`` asks for one now with
CreateKeyVersion and waits, at most ``rotation_wait_s_max``, until DescribeKey names the new
version primary. Alibaba's current reference allows CreateKeyVersion for symmetric keys in a KMS
instance of the software key management type (an older one: asymmetric keys only, one new
version per seven days at most); where KMS refuses it, ``rotate`` raises ``KeyUnavailable`` with
KMS's error code, and rotation is left to the policy.

``rewrap`` calls ReEncrypt with the key as destination, so the data key is decrypted and
encrypted again inside KMS under the primary version and never reaches Corridor; the result is
stamped with the ``KeyVersionId`` ReEncrypt answers. Should that answer name the source version
while another version is primary, the new ciphertext's version is unknown, and ``rewrap`` refuses
rather than stamp a wrong kek_id: the wrapped key stays as it was.

Each call has a connect timeout of ``kms_connect_timeout_ms`` and a read timeout of
``kms_read_timeout_ms``, set in the SDK's runtime options, and one attempt: the SDK retries
nothing unless given retry options, and CreateKeyVersion is not idempotent. Any SDK failure or
malformed answer becomes ``KeyUnavailable`` naming the operation and the key, with KMS's error
code, HTTP status and request id. The SDK sends the parameters in the URL, the data key among
them for Encrypt, and network errors quote that URL: they are reported by kind only, and the SDK
exception is not chained.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from alibabacloud_kms20160120 import models as kms_models  # type: ignore[import-untyped]
from alibabacloud_kms20160120.client import Client as SdkClient  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.exceptions import (  # type: ignore[import-untyped]
    AlibabaCloudException,
)
from alibabacloud_tea_openapi.utils_models import Config  # type: ignore[import-untyped]
from darabonba.runtime import RuntimeOptions  # type: ignore[import-untyped]
from Tea.exceptions import TeaException, UnretryableException  # type: ignore[import-untyped]

from payments.crypto import data_key_bytes
from regions.keyring import KeyUnavailable, WrappedKey

provider_prefix = "alicloud-kms:"
context_purpose = "corridor-data-key"
kek_cache_s = 5.0
kms_connect_timeout_ms = 5_000
kms_read_timeout_ms = 10_000
rotation_wait_s_max = 30.0
rotation_poll_s = 1.0
id_chars_max = 128
ciphertext_chars_max = 6_144
plaintext_chars_max = 64
access_key_id_env = "ALIBABA_CLOUD_ACCESS_KEY_ID"
access_key_secret_env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable name
security_token_env = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 - a variable name
network_env = "CORRIDOR_ALICLOUD_KMS_NETWORK"
endpoints = {"public": "kms.{}.aliyuncs.com", "vpc": "kms-vpc.{}.aliyuncs.com"}

_region_id = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+){1,4}")
_id = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")  # key ids and key version ids
_alias = re.compile(r"alias/[A-Za-z0-9_/-]{1,249}")
_base64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class KmsApi(Protocol):
    """The calls made on the SDK's client, ``alibabacloud_kms20160120.client.Client``."""

    def encrypt_with_options(self, request: kms_models.EncryptRequest,
                             runtime: RuntimeOptions) -> kms_models.EncryptResponse: ...

    def decrypt_with_options(self, request: kms_models.DecryptRequest,
                             runtime: RuntimeOptions) -> kms_models.DecryptResponse: ...

    def re_encrypt_with_options(self, request: kms_models.ReEncryptRequest,
                                runtime: RuntimeOptions) -> kms_models.ReEncryptResponse: ...

    def describe_key_with_options(self, request: kms_models.DescribeKeyRequest,
                                  runtime: RuntimeOptions) -> kms_models.DescribeKeyResponse: ...

    def create_key_version_with_options(
            self, request: kms_models.CreateKeyVersionRequest,
            runtime: RuntimeOptions) -> kms_models.CreateKeyVersionResponse: ...


class AlicloudKmsKeys:
    """The ``KeyProvider`` of one Corridor region backed by one Alibaba Cloud KMS key."""

    def __init__(self, region: str, region_id: str, key: str, client: KmsApi, *,
                 cache_s: float = kek_cache_s, connect_timeout_ms: int = kms_connect_timeout_ms,
                 read_timeout_ms: int = kms_read_timeout_ms) -> None:
        if parse_spec(region, f"{region_id}/{key}") != (region_id, key):
            raise ValueError(f"region {region}: {region_id!r} is not an Alibaba Cloud region id"
                             f" or {key!r} not a key id or alias")
        self._region = region
        self._region_id = region_id
        self._key = key
        self._kms = client
        self._context = {"corridor:purpose": context_purpose, "corridor:region": region}
        self._key_id: str | None = None if _alias.fullmatch(key) else key
        self._cache_s = cache_s
        self._primary: tuple[float, str] | None = None
        self._timeouts_ms = (connect_timeout_ms, read_timeout_ms)

    @classmethod
    def from_spec(cls, region: str, spec: str) -> AlicloudKmsKeys:
        """The provider of ``<region id>/<key id or alias>``, with credentials and endpoint
        from the environment (``client_config``)."""
        region_id, key = parse_spec(region, spec)
        return cls(region, region_id, key, SdkClient(client_config(region, region_id, os.environ)))

    def wrap(self, region: str, plaintext_key: bytes) -> WrappedKey:
        self._check_region(region)
        if len(plaintext_key) != data_key_bytes:
            raise ValueError(f"a data key is {data_key_bytes} bytes, got {len(plaintext_key)}")
        request = kms_models.EncryptRequest(key_id=self.key_id(), plaintext=_b64(plaintext_key),
                                            encryption_context=self._context)
        with _kms_errors(f"wrap a data key of region {region!r} under {self._name}"):
            answer = _answer(self._kms.encrypt_with_options(request, self._runtime()))
        version = self._answered_version(answer, "Encrypt")
        return WrappedKey(self._kek_id(version), _ciphertext(answer, "Encrypt"))

    def unwrap(self, region: str, wrapped: WrappedKey) -> bytes:
        version = self._checked(region, wrapped.kek_id)
        request = kms_models.DecryptRequest(ciphertext_blob=_blob(wrapped),
                                            encryption_context=self._context)
        with _kms_errors(f"unwrap a data key of region {region!r} under {wrapped.kek_id!r}"):
            answer = _answer(self._kms.decrypt_with_options(request, self._runtime()))
        if self._answered_version(answer, "Decrypt") != version:
            raise KeyUnavailable(f"{wrapped.kek_id!r} disagrees with its ciphertext, which KMS"
                                 f" decrypted with another version of {self._name}")
        key = base64.b64decode(_text(answer, "Plaintext", _base64, plaintext_chars_max, "Decrypt"))
        if len(key) != data_key_bytes:
            raise KeyUnavailable(f"{wrapped.kek_id!r} does not hold a {data_key_bytes}-byte"
                                 f" data key")
        return key

    def rewrap(self, region: str, wrapped: WrappedKey) -> WrappedKey:
        """Re-encrypted inside KMS under the key's primary version; unchanged if already."""
        source = self._checked(region, wrapped.kek_id)
        if source == self._primary_version():
            return wrapped
        request = kms_models.ReEncryptRequest(
            ciphertext_blob=_blob(wrapped), destination_key_id=self.key_id(),
            source_encryption_context=self._context, destination_encryption_context=self._context)
        with _kms_errors(f"rewrap a data key of region {region!r} from {wrapped.kek_id!r}"):
            answer = _answer(self._kms.re_encrypt_with_options(request, self._runtime()))
        version = self._answered_version(answer, "ReEncrypt")
        if version == source and (primary := self._primary_version(fresh=True)) != source:
            raise KeyUnavailable(f"KMS answered ReEncrypt with the source version {source!r}"
                                 f" while {primary!r} is primary; {wrapped.kek_id!r} is left as"
                                 f" it was")
        return WrappedKey(self._kek_id(version), _ciphertext(answer, "ReEncrypt"))

    def rotate(self, region: str) -> str:
        """A new primary version by CreateKeyVersion, once DescribeKey shows it; its kek_id."""
        self._check_region(region)
        request = kms_models.CreateKeyVersionRequest(key_id=self.key_id())
        with _kms_errors(f"create a version of {self._name}"):
            answer = _answer(self._kms.create_key_version_with_options(request, self._runtime()))
        version = self._answered_version(answer.get("KeyVersion"), "CreateKeyVersion")
        deadline = time.monotonic() + rotation_wait_s_max
        while self._primary_version(fresh=True) != version:
            if time.monotonic() >= deadline:
                raise KeyUnavailable(f"KMS created version {version!r} of {self._name} but did not"
                                     f" make it primary within {rotation_wait_s_max:.0f} s")
            time.sleep(rotation_poll_s)
        return self._kek_id(version)

    def current_kek_id(self, region: str) -> str:
        self._check_region(region)
        return self._kek_id(self._primary_version())

    def key_id(self) -> str:
        """The key's id; an alias is resolved by DescribeKey on first use."""
        if self._key_id is None:
            self._primary_version(fresh=True)
        assert self._key_id is not None
        return self._key_id

    @property
    def _name(self) -> str:
        return f"KMS key {self._region_id}/{self._key}"

    def _runtime(self) -> RuntimeOptions:
        connect_ms, read_ms = self._timeouts_ms
        return RuntimeOptions(connect_timeout=connect_ms, read_timeout=read_ms)

    def _kek_id(self, version: str) -> str:
        return f"{provider_prefix}{self._region_id}/{self.key_id()}#{version}"

    def _check_region(self, region: str) -> None:
        if region != self._region:
            raise KeyUnavailable(f"{self._name} holds the KEK of region {self._region!r},"
                                 f" not {region!r}")

    def _checked(self, region: str, kek_id: str) -> str:
        """The key version a kek_id names, once it names this provider, region id and key."""
        self._check_region(region)
        version = kek_id.removeprefix(self._kek_id(""))
        if version == kek_id or len(version) > id_chars_max or not _id.fullmatch(version):
            raise KeyUnavailable(f"{kek_id!r} is not a version of the {self._name} of region"
                                 f" {region!r}")
        return version

    def _answered_version(self, answer: Any, operation: str) -> str:
        """The ``KeyVersionId`` of a KMS answer, once its ``KeyId`` is this key's."""
        key_id = _text(answer, "KeyId", _id, id_chars_max, operation)
        if key_id != self.key_id():
            raise KeyUnavailable(f"KMS answered {operation} for key {key_id!r}, not for the"
                                 f" {self._name}")
        return _text(answer, "KeyVersionId", _id, id_chars_max, operation)

    def _primary_version(self, *, fresh: bool = False) -> str:
        """DescribeKey's ``PrimaryKeyVersion``, read at most once per ``cache_s`` unless
        ``fresh``; the first call resolves an alias to the key id."""
        now = time.monotonic()
        if self._primary is not None and now < self._primary[0] and not fresh:
            return self._primary[1]
        request = kms_models.DescribeKeyRequest(key_id=self._key_id or self._key)
        with _kms_errors(f"describe the {self._name}"):
            answer = _answer(self._kms.describe_key_with_options(request, self._runtime()))
        metadata = answer.get("KeyMetadata")
        key_id = _text(metadata, "KeyId", _id, id_chars_max, "DescribeKey")
        if self._key_id is None:
            self._key_id = key_id
        elif key_id != self._key_id:
            raise KeyUnavailable(f"KMS described key {key_id!r}, not the {self._name}")
        version = _text(metadata, "PrimaryKeyVersion", _id, id_chars_max, "DescribeKey")
        self._primary = (now + self._cache_s, version)
        return version


def parse_spec(region: str, spec: str) -> tuple[str, str]:
    """``<region id>/<key id or alias/name>`` as (region id, key); ``ValueError`` naming what
    is wrong."""
    region_id, _, key = spec.partition("/")
    problem = None
    if not key:
        problem = "names no key after the region id"
    elif not _region_id.fullmatch(region_id):
        problem = f"does not start with an Alibaba Cloud region id ({region_id!r})"
    elif not (_alias.fullmatch(key) or (len(key) <= id_chars_max and _id.fullmatch(key))):
        problem = f"names no key id or alias/<name> ({key!r})"
    if problem is not None:
        raise ValueError(f"region {region}: alicloud-kms key {spec!r} {problem}; expected"
                         f" <region id>/<key id> or <region id>/alias/<name>, for example"
                         f" cn-shanghai/key-shh6xxxxxxxx")
    return region_id, key


def client_config(region: str, region_id: str, environ: Mapping[str, str]) -> Config:
    """The SDK configuration: credentials from Alibaba Cloud's variables, HTTPS to the public
    endpoint, or to the VPC one when ``CORRIDOR_ALICLOUD_KMS_NETWORK=vpc``."""
    access_key_id = environ.get(access_key_id_env, "")
    secret = environ.get(access_key_secret_env, "")
    missing = [name for name, value in ((access_key_id_env, access_key_id),
                                        (access_key_secret_env, secret)) if not value]
    if missing:
        raise ValueError(f"region {region}: the alicloud-kms key provider needs"
                         f" {' and '.join(missing)} set in the environment")
    network = environ.get(network_env) or "public"
    if network not in endpoints:
        raise ValueError(f"region {region}: {network_env} is {network!r}; expected"
                         f" {' or '.join(endpoints)}")
    return Config(access_key_id=access_key_id, access_key_secret=secret,
                  security_token=environ.get(security_token_env) or None, region_id=region_id,
                  endpoint=endpoints[network].format(region_id), protocol="HTTPS")


def _answer(response: Any) -> dict[str, Any]:
    """A response's body as the API's JSON object (empty when there is none)."""
    body = getattr(response, "body", None)
    answer = body.to_map() if body is not None else None
    return answer if isinstance(answer, dict) else {}


def _text(answer: Any, name: str, pattern: re.Pattern[str], chars_max: int,
          operation: str) -> str:
    """A string field of an answer that matches ``pattern``; the message never holds it."""
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value or len(value) > chars_max \
            or not pattern.fullmatch(value):
        raise KeyUnavailable(f"KMS answered {operation} without a well-formed {name}")
    return value


def _ciphertext(answer: dict[str, Any], operation: str) -> bytes:
    return _text(answer, "CiphertextBlob", _base64, ciphertext_chars_max, operation).encode()


def _blob(wrapped: WrappedKey) -> str:
    """The ``CiphertextBlob`` a wrapped key holds, refused before any call if malformed."""
    blob = wrapped.ciphertext
    if not blob or len(blob) > ciphertext_chars_max or not blob.isascii() \
            or not _base64.fullmatch(blob.decode("ascii")):
        raise KeyUnavailable(f"the key wrapped under {wrapped.kek_id!r} is not a KMS ciphertext")
    return blob.decode("ascii")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@contextlib.contextmanager
def _kms_errors(doing: str) -> Iterator[None]:
    """SDK failures as ``KeyUnavailable``: KMS's error code, or the kind of failure, never the
    exception's text or its chain, which hold the request URL."""
    try:
        yield
    except AlibabaCloudException as exc:
        raise KeyUnavailable(f"KMS could not {doing}: {exc.code} (HTTP {exc.status_code},"
                             f" request {exc.request_id})") from None
    except UnretryableException as exc:
        inner = exc.inner_exception
        if type(inner).__name__ == "RetryError":  # darabonba's wrapper of network errors
            kind = "timed out" if "timed out" in str(inner) else "network error"
        else:
            kind = f"unreadable answer ({type(inner).__name__})"
        raise KeyUnavailable(f"KMS could not {doing}: {kind}") from None
    except TeaException as exc:
        raise KeyUnavailable(f"KMS could not {doing}: {type(exc).__name__}") from None
