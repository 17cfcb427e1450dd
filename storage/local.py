"""Recordings as files under one directory: the embedded default, no service needed."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from storage.base import StorageError, StoredObject, content_type_for

SCHEME = "local:"
CHUNK = 64 * 1024


class LocalStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        # Keys come from our own layout, but a key must never climb out of the root.
        if any(part in ("..", ".", "") or "\\" in part for part in parts):
            raise StorageError(f"invalid key {key!r}")
        return self.root.joinpath(*parts)

    def reference(self, key: str) -> str:
        return SCHEME + key

    def key_of(self, reference: str) -> str | None:
        return reference.removeprefix(SCHEME) if reference.startswith(SCHEME) else None

    async def put(self, key: str, source: Path, content_type: str) -> StoredObject:
        target = self._path(key)
        await asyncio.to_thread(_atomic_copy, source, target)
        stored = await self.head(key)
        if stored is None:
            raise StorageError(f"{key} vanished right after it was written")
        return stored

    async def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        return StoredObject(key, size, content_type_for(key), self.reference(key))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(self._path(key).open, "rb")
        except FileNotFoundError as exc:
            raise StorageError(f"no object {key}") from exc
        with handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk

    async def signed_url(self, key: str, ttl_s: int) -> str | None:
        return None  # the API serves local files itself

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy into a temp file beside the target, flush it to disk, then rename over the
    target: a reader sees the old file or the whole new one, never a half-written one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
