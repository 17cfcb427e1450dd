"""OssStore through the real oss2 client against simulators/oss.py on a real port: oss2's own
signing, multipart upload and signed URLs are what is exercised, and the simulator checks
every signature the way OSS does."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import oss2
import pytest

from channels.registry import Settings
from simulators.oss import create_app
from storage import OssStore, StorageError
from tests.support import ServerThread, free_port


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    settings = Settings(oss_endpoint=f"http://127.0.0.1:{free_port()}")
    server = ServerThread(create_app(settings), settings.port_of(settings.oss_endpoint)).start()
    yield settings
    server.stop()


def store_for(settings: Settings, secret: str | None = None, **kwargs: int) -> OssStore:
    return OssStore(settings.oss_endpoint, settings.oss_bucket, settings.oss_access_key_id,
                    secret or settings.oss_access_key_secret, **kwargs)  # fmt: skip


def sim_requests(settings: Settings) -> list[dict[str, str]]:
    log: list[dict[str, str]] = httpx.get(f"{settings.oss_endpoint}/_sim/log").json()["requests"]
    return log


CONTENT = os.urandom(2500)


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "call.wav"
    path.write_bytes(CONTENT)
    return path


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


async def test_put_then_signed_url_gives_the_bytes(settings: Settings, audio: Path) -> None:
    store = store_for(settings)
    stored = await store.put("t/2026/01/01/c1.wav", audio, "audio/wav")
    assert (stored.size, stored.content_type) == (2500, "audio/wav")
    assert stored.url == f"oss://{settings.oss_bucket}/t/2026/01/01/c1.wav"
    assert store.key_of(stored.url) == stored.key and store.key_of("local:x") is None
    url = await store.signed_url(stored.key, 60)
    assert url is not None and urlsplit(url).path == f"/{settings.oss_bucket}/{stored.key}"
    answer = await fetch(url)  # a plain client, no credentials: the link is the credential
    assert answer.status_code == 200 and answer.content == CONTENT
    assert answer.headers["content-type"] == "audio/wav"
    assert b"".join([c async for c in store.read(stored.key)]) == CONTENT
    upload = [r for r in sim_requests(settings) if r["path"].endswith("/c1.wav")][0]
    assert upload["headers"]["authorization"].startswith("OSS ")
    assert upload["headers"]["content-md5"]  # checked by the simulator


async def test_large_files_go_up_in_parts(settings: Settings, audio: Path) -> None:
    store = store_for(settings, multipart_threshold=1000, part_size=1000)
    stored = await store.put("t/multi.wav", audio, "audio/wav")
    assert stored.size == 2500
    queries = [r["query"] for r in sim_requests(settings) if r["path"].endswith("/t/multi.wav")]
    part_numbers = [dict(parse_qsl(q)).get("partNumber") for q in queries if "partNumber" in q]
    assert part_numbers == ["1", "2", "3"]
    assert any(q == "uploads" or q == "uploads=" for q in queries)
    url = await store.signed_url(stored.key, 60)
    assert url is not None and (await fetch(url)).content == CONTENT


async def test_signed_url_stops_working_after_expiry_or_tampering(
    settings: Settings, audio: Path
) -> None:
    store = store_for(settings)
    await store.put("t/exp.wav", audio, "audio/wav")
    url = await store.signed_url("t/exp.wav", 60)
    assert url is not None
    base, query = url.split("?", 1)
    params = dict(parse_qsl(query))
    tampered = {**params, "Expires": str(int(params["Expires"]) + 3600)}
    answer = await fetch(f"{base}?{urlencode(tampered)}")
    assert answer.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in answer.content
    # An honestly signed link whose time is up: oss2 signs it, the simulator refuses it.
    bucket = oss2.Bucket(oss2.Auth(settings.oss_access_key_id, settings.oss_access_key_secret),
                         settings.oss_endpoint, settings.oss_bucket)  # fmt: skip
    expired = bucket.sign_url("GET", "t/exp.wav", -1, slash_safe=True)
    assert int(dict(parse_qsl(expired.split("?", 1)[1]))["Expires"]) < time.time()
    answer = await fetch(expired)
    assert answer.status_code == 403 and b"<Code>AccessDenied</Code>" in answer.content


async def test_private_bucket_and_wrong_keys_are_refused(settings: Settings, audio: Path) -> None:
    await store_for(settings).put("t/private.wav", audio, "audio/wav")
    anonymous = await fetch(f"{settings.oss_endpoint}/{settings.oss_bucket}/t/private.wav")
    assert anonymous.status_code == 403 and b"AccessDenied" in anonymous.content
    with pytest.raises(StorageError, match="SignatureDoesNotMatch"):
        await store_for(settings, secret="not-the-secret").put("t/x.wav", audio, "audio/wav")
    assert await store_for(settings).head("t/x.wav") is None


async def test_a_corrupted_body_fails_the_content_md5_check(settings: Settings) -> None:
    bucket = oss2.Bucket(oss2.Auth(settings.oss_access_key_id, settings.oss_access_key_secret),
                         settings.oss_endpoint, settings.oss_bucket)  # fmt: skip
    wrong_md5 = {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}  # the MD5 of b""
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        bucket.put_object("t/md5.wav", b"not empty", headers=wrong_md5)
    assert (refused.value.status, refused.value.code) == (400, "InvalidDigest")
