"""Where CC keeps its own copy of call recordings (vendors expire theirs)."""

from __future__ import annotations

from core.config import CoreSettings
from storage.base import (
    RecordingStore,
    StorageError,
    StoredObject,
    canonical_content_type,
    extension_for,
    is_supported,
    recording_key,
    recording_keys,
)
from storage.local import LocalStore
from storage.oss import OssStore

__all__ = [
    "LocalStore",
    "OssStore",
    "RecordingStore",
    "StorageError",
    "StoredObject",
    "build_store",
    "canonical_content_type",
    "extension_for",
    "is_supported",
    "recording_key",
    "recording_keys",
]


def build_store(settings: CoreSettings) -> RecordingStore:
    if settings.storage_backend == "oss":
        return OssStore(
            settings.oss_endpoint,
            settings.oss_bucket,
            settings.oss_access_key_id,
            settings.oss_access_key_secret,
        )
    return LocalStore(settings.storage_dir)
