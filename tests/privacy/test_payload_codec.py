"""Issue 21 part 1, the codec alone: what CC hands Temporal is AES-256-GCM ciphertext with the
key id beside it; rotation adds a key while the old ones still open; a payload written before
the codec reads as it was; a tampered or unknown-key payload is refused, never read wrong."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

from core.codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    PayloadKeyError,
    data_converter,
    new_key_entry,
    parse_keys,
)

K1, K2 = new_key_entry("k1"), new_key_entry("k2")
NUMBER = "+8613912345678"


def plain(value: object) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


async def test_a_sealed_payload_holds_no_plaintext_and_names_its_key() -> None:
    codec = EncryptionCodec(parse_keys([K1]))
    original = plain({"called": NUMBER, "biz_data": "order-42"})
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert NUMBER.encode() not in sealed.SerializeToString()
    assert b"order-42" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # the inner metadata is sealed too
    assert await codec.decode([sealed]) == [original]


async def test_each_seal_is_fresh() -> None:
    codec = EncryptionCodec(parse_keys([K1]))
    original = plain(NUMBER)
    first, second = await codec.encode([original, original])
    assert first.data != second.data  # a new nonce each time: equal numbers do not show


async def test_rotation_seals_with_the_new_key_and_opens_the_old() -> None:
    old = EncryptionCodec(parse_keys([K1]))
    rotated = EncryptionCodec(parse_keys([K2, K1]))
    [by_old] = await old.encode([plain(NUMBER)])
    [by_new] = await rotated.encode([plain(NUMBER)])
    assert by_new.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([by_old, by_new]) == [plain(NUMBER), plain(NUMBER)]
    with pytest.raises(PayloadKeyError, match="'k2', not in CC_PAYLOAD_KEYS"):
        await old.decode([by_new])


async def test_an_unsealed_payload_reads_as_it_was() -> None:
    """A workflow started before the codec: its input was written in clear."""
    codec = EncryptionCodec(parse_keys([K1]))
    assert await codec.decode([plain(NUMBER)]) == [plain(NUMBER)]


async def test_a_tampered_payload_or_a_swapped_key_id_is_refused() -> None:
    codec = EncryptionCodec(parse_keys([K2, K1]))
    [sealed] = await codec.encode([plain(NUMBER)])
    flipped = Payload(
        metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    )
    with pytest.raises(InvalidTag):
        await codec.decode([flipped])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k1"}, data=sealed.data)
    with pytest.raises(InvalidTag):  # the key id is bound to the ciphertext
        await codec.decode([relabelled])


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        (["k1"], "'<id>:<base64 of 32 bytes>'"),
        (["k1:not base64!"], "'k1' is not base64"),
        ([f"k1:{base64.b64encode(b'short').decode()}"], "'k1' is not 32 bytes"),
        ([K1, K1], "'k1' is listed twice"),
    ],
)
def test_a_malformed_key_is_named_and_never_echoed(entries: list[str], words: str) -> None:
    with pytest.raises(PayloadKeyError, match=words) as caught:
        parse_keys(entries)
    secret = entries[-1].partition(":")[2]
    assert not secret or secret not in str(caught.value)


async def test_the_converter_seals_values_and_failure_messages() -> None:
    converter = data_converter([K1])
    assert converter.payload_codec is not None
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    [sealed] = await converter.encode([{"called": NUMBER}])
    assert NUMBER.encode() not in sealed.SerializeToString()
    assert await converter.decode([sealed]) == [{"called": NUMBER}]
    assert data_converter([]) is pydantic_data_converter  # no key: as before, and CC warns


def test_make_runs_key_entry_is_a_valid_aes_256_key() -> None:
    [(key_id, key)] = parse_keys([new_key_entry("k7")]).items()
    assert key_id == "k7" and len(key) == 32
    assert json.loads(json.dumps([new_key_entry("k1")]))  # fits CC_PAYLOAD_KEYS' JSON list
