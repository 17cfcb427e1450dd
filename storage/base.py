"""The one small interface every recording store implements, and what it returns.

A stored recording is referred to by a stable URL-like reference (``local:<key>`` or
``oss://<bucket>/<key>``) kept in the call record's ``audio_url``; only the store that
wrote it turns it back into bytes or a signed link, so a signed (expiring) URL is never
persisted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

DEFAULT_CONTENT_TYPE = "audio/wav"
DEFAULT_EXTENSION = "wav"

# Media types vendors use for the same audio, and the one name we store them under.
_CANONICAL_TYPES = {
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mpeg": "audio/mpeg",
    "audio/mp3": "audio/mpeg",
    "audio/ogg": "audio/ogg",
    "audio/amr": "audio/amr",
}
_EXTENSIONS = {"audio/wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/amr": "amr"}
_TYPES_BY_EXTENSION = {ext: media for media, ext in _EXTENSIONS.items()}


def canonical_content_type(value: str | None) -> str:
    """``audio/x-wav; charset=…`` → ``audio/wav``; other types are kept as sent, bare, and
    none as ``""``. An answer that does not say it is audio (no type, or
    ``application/octet-stream``) is never taken for audio: it is not a supported type."""
    bare = (value or "").split(";", 1)[0].strip().lower()
    return _CANONICAL_TYPES.get(bare, bare)


def is_supported(content_type: str) -> bool:
    """Whether recordings of this media type can be kept (and served back as that type):
    the audio types above only."""
    return canonical_content_type(content_type) in _EXTENSIONS


def extension_for(content_type: str) -> str:
    return _EXTENSIONS.get(canonical_content_type(content_type), DEFAULT_EXTENSION)


def content_type_for(key: str) -> str:
    """The media type a key's extension stands for (the local store keeps no metadata)."""
    return _TYPES_BY_EXTENSION.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def recording_key(tenant: str, cc_call_id: str, created_ms: int, extension: str) -> str:
    """``<tenant>/<yyyy>/<mm>/<dd>/<call id>.<ext>``, dated by the call's creation (UTC)."""
    day = datetime.fromtimestamp(created_ms / 1000, UTC).strftime("%Y/%m/%d")
    return f"{_UNSAFE.sub('_', tenant)}/{day}/{_UNSAFE.sub('_', cc_call_id)}.{extension}"


def recording_keys(tenant: str, cc_call_id: str, created_ms: int) -> list[str]:
    """Every key a copy of this call's recording may be stored under (one per audio type): what
    deleting a recording whose copy may still be landing removes."""
    return [recording_key(tenant, cc_call_id, created_ms, ext) for ext in _EXTENSIONS.values()]


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str
    url: str  # the stable reference kept in ``audio_url``


class StorageError(Exception):
    """The store refused or failed a write or read (network, auth, disk)."""


class RecordingStore(Protocol):
    async def put(self, key: str, source: Path, content_type: str) -> StoredObject:
        """Store the file at ``source`` under ``key``, replacing any earlier copy whole."""
        ...

    async def head(self, key: str) -> StoredObject | None:
        """What is stored under ``key`` (size, media type), or None when nothing is."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks; raises ``StorageError`` when the object is missing."""
        ...

    async def signed_url(self, key: str, ttl_s: int) -> str | None:
        """A short-lived link a client can GET without credentials, or None when the
        store cannot make one (then the API serves the bytes itself)."""
        ...

    async def delete(self, key: str) -> None: ...

    def reference(self, key: str) -> str:
        """The stable reference of ``key`` in this store (what ``audio_url`` holds)."""
        ...

    def key_of(self, reference: str) -> str | None:
        """The key a reference names, or None when it belongs to another store."""
        ...
