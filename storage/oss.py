"""Recordings in Aliyun OSS through the real ``oss2`` client: a private bucket, signed links.

``oss2`` is synchronous, so every call runs in a thread. Large files go up as an explicit
multipart upload (each part with its Content-MD5, the whole checked by OSS's CRC64), so a
flaky network costs one part, not the whole file; the threshold is configurable so tests can
force the multipart path with a small file.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import oss2
from oss2.models import PartInfo

from storage.base import StorageError, StoredObject

MULTIPART_THRESHOLD = 10 * 1024 * 1024
PART_SIZE = 5 * 1024 * 1024
CHUNK = 64 * 1024


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


class OssStore:
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key_id: str,
        access_key_secret: str,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        connect_timeout_s: float = 10.0,
    ) -> None:
        auth = oss2.Auth(access_key_id, access_key_secret)
        self._bucket = oss2.Bucket(auth, endpoint, bucket, connect_timeout=connect_timeout_s)
        self.bucket_name = bucket
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size

    def reference(self, key: str) -> str:
        return f"oss://{self.bucket_name}/{key}"

    def key_of(self, reference: str) -> str | None:
        prefix = f"oss://{self.bucket_name}/"
        return reference.removeprefix(prefix) if reference.startswith(prefix) else None

    async def put(self, key: str, source: Path, content_type: str) -> StoredObject:
        await self._run(self._put, key, source, content_type)
        stored = await self.head(key)
        if stored is None:
            raise StorageError(f"oss: {key} missing right after upload")
        return stored

    def _put(self, key: str, source: Path, content_type: str) -> None:
        if source.stat().st_size >= self.multipart_threshold:
            self._put_multipart(key, source, content_type)
        else:
            self._put_whole(key, source, content_type)

    def _put_whole(self, key: str, source: Path, content_type: str) -> None:
        headers = {"Content-Type": content_type, "Content-MD5": file_md5(source)}
        with source.open("rb") as handle:
            self._bucket.put_object(key, handle, headers=headers)

    def _put_multipart(self, key: str, source: Path, content_type: str) -> None:
        upload_id = self._bucket.init_multipart_upload(
            key, headers={"Content-Type": content_type}
        ).upload_id
        try:
            with source.open("rb") as handle:
                parts = self._upload_parts(key, upload_id, handle)
            # Sizes and CRCs let oss2 check the assembled object's CRC64 against OSS's.
            self._bucket.complete_multipart_upload(key, upload_id, parts)
        except BaseException:
            self._bucket.abort_multipart_upload(key, upload_id)
            raise

    def _upload_parts(self, key: str, upload_id: str, handle: BinaryIO) -> list[PartInfo]:
        parts: list[PartInfo] = []
        while data := handle.read(self.part_size):
            number = len(parts) + 1
            result = self._bucket.upload_part(
                key, upload_id, number, data, headers={"Content-MD5": content_md5(data)}
            )
            parts.append(PartInfo(number, result.etag, size=len(data), part_crc=result.crc))
        return parts

    async def head(self, key: str) -> StoredObject | None:
        try:
            meta = await self._run(self._bucket.head_object, key)
        except StorageError as exc:
            if isinstance(exc.__cause__, oss2.exceptions.NotFound):
                return None
            raise
        content_type = str(meta.content_type or "application/octet-stream")
        return StoredObject(key, int(meta.content_length), content_type, self.reference(key))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        stream = await self._run(self._bucket.get_object, key)
        with stream:
            while chunk := await self._run(stream.read, CHUNK):
                yield chunk

    async def signed_url(self, key: str, ttl_s: int) -> str | None:
        url: str = await self._run(self._bucket.sign_url, "GET", key, ttl_s, slash_safe=True)
        return url

    async def delete(self, key: str) -> None:
        await self._run(self._bucket.delete_object, key)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking oss2 call in a thread; its errors become ``StorageError``."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except oss2.exceptions.OssError as exc:
            raise StorageError(f"oss: {exc.__class__.__name__} {_describe(exc)}") from exc


def _describe(exc: oss2.exceptions.OssError) -> str:
    status = getattr(exc, "status", "")
    code = getattr(exc, "code", "") or getattr(exc, "message", "")
    return f"{status} {code}".strip()
