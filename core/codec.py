"""What CC hands Temporal is ciphertext: every payload (workflow inputs and results, signals,
updates, queries, activity inputs and results, memos, failure details and, through
``DefaultFailureConverterWithEncodedAttributes``, failure messages and stack traces) is sealed
with AES-256-GCM before it leaves a client or a worker, so neither Temporal's database, nor
``temporal workflow show``, nor its UI without CC's codec endpoint sees a customer's number.

The keys come from ``CC_PAYLOAD_KEYS``, a JSON list of ``"<id>:<base64 of 32 bytes>"``: the
first seals, every one opens (the key id travels in each payload's metadata and is bound to
the ciphertext as associated data). Rotation: put the new key first and keep the old ones
listed while any history sealed with them is still kept. A payload that is not sealed (a
workflow started before the codec) is read as it is. This follows the Temporal Python
samples' ``encryption`` codec.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256


class PayloadKeyError(ValueError):
    """A payload key setting is malformed, or a payload names a key CC does not hold."""


def parse_keys(entries: Iterable[str]) -> dict[str, bytes]:
    """``["k2:<base64>", "k1:<base64>"]`` as ``{"k2": ..., "k1": ...}``, in order."""
    keys: dict[str, bytes] = {}
    for entry in entries:
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or not key_id.isascii() or not key_id.isprintable():
            raise PayloadKeyError("a payload key is '<id>:<base64 of 32 bytes>'")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error as exc:
            raise PayloadKeyError(f"payload key {key_id!r} is not base64") from exc
        if len(key) != KEY_BYTES:
            raise PayloadKeyError(f"payload key {key_id!r} is not 32 bytes (AES-256)")
        if key_id in keys:
            raise PayloadKeyError(f"payload key {key_id!r} is listed twice")
        keys[key_id] = key
    return keys


def new_key_entry(key_id: str) -> str:
    """A fresh ``CC_PAYLOAD_KEYS`` entry (``make run`` makes one; ``python -m core.codec new
    k2`` prints one)."""
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class EncryptionCodec(PayloadCodec):
    """Seals with the first key, opens with any; leaves unsealed payloads as they are."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise PayloadKeyError("an encryption codec needs at least one key")
        self._current = next(iter(keys))
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @property
    def key_id(self) -> str:
        return self._current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(payload) for payload in payloads]

    def seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current.encode()
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # not sealed: written before the codec, or by another party
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(f"payload sealed with key {key_id!r}, not in CC_PAYLOAD_KEYS")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))


def codec_of(key_entries: Iterable[str]) -> EncryptionCodec | None:
    keys = parse_keys(key_entries)
    return EncryptionCodec(keys) if keys else None


def data_converter(key_entries: Iterable[str]) -> DataConverter:
    """The converter of every Temporal client and worker CC builds: pydantic payloads, sealed
    with the keys (none: plain, as before the codec; CC warns at start), failure messages and
    stack traces moved into the sealed attributes."""
    codec = codec_of(key_entries)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


if __name__ == "__main__":  # python -m core.codec new <id>: a CC_PAYLOAD_KEYS entry
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "new":
        sys.exit("usage: python -m core.codec new <key id>")
    print(new_key_entry(sys.argv[2]))
