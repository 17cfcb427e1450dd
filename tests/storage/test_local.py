"""LocalStore: keys map to files under one root, writes are whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import LocalStore, StorageError


async def test_put_head_read_delete(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    source.write_bytes(b"RIFF" + bytes(range(256)) * 300)
    store = LocalStore(tmp_path / "root")
    stored = await store.put("t/2026/01/01/c1.wav", source, "audio/wav")
    assert (stored.size, stored.content_type) == (source.stat().st_size, "audio/wav")
    assert stored.url == "local:t/2026/01/01/c1.wav" == store.reference(stored.key)
    assert store.key_of(stored.url) == stored.key and store.key_of("oss://b/k") is None
    assert b"".join([c async for c in store.read(stored.key)]) == source.read_bytes()
    assert await store.signed_url(stored.key, 60) is None  # the API serves the bytes
    leftovers = [p.name for p in (tmp_path / "root/t/2026/01/01").iterdir()]
    assert leftovers == ["c1.wav"]  # the temp file was renamed, not left behind
    await store.delete(stored.key)
    assert await store.head(stored.key) is None


async def test_a_second_put_replaces_the_first_whole(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "b").write_bytes(b"y" * 10)
    await store.put("k.wav", tmp_path / "a", "audio/wav")
    stored = await store.put("k.wav", tmp_path / "b", "audio/wav")
    assert stored.size == 10 and (tmp_path / "k.wav").read_bytes() == b"y" * 10


@pytest.mark.parametrize("key", ["../escape.wav", "/abs.wav", "a//b.wav", "a/./b.wav"])
async def test_keys_cannot_leave_the_root(tmp_path: Path, key: str) -> None:
    (tmp_path / "src").write_bytes(b"x")
    with pytest.raises(StorageError):
        await LocalStore(tmp_path / "root").put(key, tmp_path / "src", "audio/wav")
    assert not (tmp_path / "escape.wav").exists()


async def test_reading_a_missing_key_raises(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        [c async for c in LocalStore(tmp_path).read("none.wav")]
