"""Field encryption of personal data: AES-256-GCM under a per-tenant data key (DESIGN.md §6).

Pure: no I/O beyond the random source. A sealed blob reads

    format version (1 byte) | key version (4 bytes, big endian) | nonce (12 bytes) | ciphertext+tag

The header is authenticated together with the caller's associated data, so flipping the key
version (or any other bit) fails to open rather than sending a reader to the wrong key. The
associated data names where the value lives (``field_aad``), so a ciphertext copied into another
tenant, table, column or row does not decrypt there.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

data_key_bytes = 32
nonce_bytes = 12
tag_bytes = 16
format_version = 1
key_version_max = 2**32 - 1
# NIST SP 800-38D bounds a key to 2**32 invocations with random 96-bit nonces; we stop at half
# that so a caller that rotates on this count keeps a wide margin against nonce collisions.
messages_per_key_max = 2**31

_header = struct.Struct(">BI")
_part_length = struct.Struct(">I")
_overhead_bytes = _header.size + nonce_bytes + tag_bytes


class Undecryptable(Exception):
    """The blob does not open: tampered, truncated, unknown format, wrong key or wrong place.

    The causes are deliberately not told apart, so a caller learns nothing it could probe with.
    """

    def __init__(self) -> None:
        super().__init__("the sealed value cannot be decrypted")


def new_data_key() -> bytes:
    return os.urandom(data_key_bytes)


def length_prefixed(*parts: str) -> bytes:
    """Each part as its UTF-8 length (4 bytes, big endian) then its bytes: no separator to forge."""
    out = bytearray()
    for part in parts:
        raw = part.encode("utf-8")
        out += _part_length.pack(len(raw))
        out += raw
    return bytes(out)


def field_aad(tenant_id: str, table: str, column: str, row_id: str) -> bytes:
    return length_prefixed("corridor-field", tenant_id, table, column, row_id)


def seal_bytes(key: bytes, plaintext: bytes, aad: bytes, *, key_version: int) -> bytes:
    """Encrypt under a fresh random nonce; the caller counts messages against the key."""
    _check_key(key)
    if not 0 <= key_version <= key_version_max:
        raise ValueError(f"key version {key_version} is outside 0..{key_version_max}")
    header = _header.pack(format_version, key_version)
    nonce = os.urandom(nonce_bytes)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + aad)


def open_sealed_bytes(key: bytes, blob: bytes, aad: bytes) -> bytes:
    _check_key(key)
    blob_key_version(blob)
    header, nonce = blob[: _header.size], blob[_header.size : _header.size + nonce_bytes]
    try:
        return AESGCM(key).decrypt(nonce, blob[_header.size + nonce_bytes :], header + aad)
    except InvalidTag:
        raise Undecryptable() from None


def seal(key: bytes, plaintext: str, aad: bytes, *, key_version: int) -> bytes:
    return seal_bytes(key, plaintext.encode("utf-8"), aad, key_version=key_version)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> str:
    # Authenticated bytes were UTF-8 when sealed, so decoding cannot fail here.
    return open_sealed_bytes(key, blob, aad).decode("utf-8")


def blob_key_version(blob: bytes) -> int:
    """Which data key version to fetch; not yet authenticated, ``open_sealed`` checks it."""
    if len(blob) < _overhead_bytes:
        raise Undecryptable()
    version, key_version = _header.unpack_from(blob)
    if version != format_version:
        raise Undecryptable()
    return int(key_version)


def _check_key(key: bytes) -> None:
    # AESGCM also accepts 128- and 192-bit keys; refuse them rather than silently weaken.
    if len(key) != data_key_bytes:
        raise ValueError(f"a data key is {data_key_bytes} bytes, got {len(key)}")
