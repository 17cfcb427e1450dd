"""Row 9 and row 7 of the security issue: the files CC writes secrets and customer data to
are never readable by others, not even for a moment; and no process starts with a vendor's
public demo secret while that vendor's URL is not a local simulator."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from channels.registry import Settings
from core.secrets import DemoDefault, DemoSecretInUse
from scripts import run
from store.db import make_engine

# --- Watching a directory's file modes at every step ------------------------------------------

_watched: list[tuple[Path, dict[str, set[int]]]] = []
_in_hook = False


def _note_modes(event: str, args: tuple[Any, ...]) -> None:
    # An audit hook runs before every open, chmod, link, rename, remove... the code under test
    # makes: the modes it notes are those each file had at every one of those moments.
    global _in_hook
    if not _watched or _in_hook:
        return
    _in_hook = True
    try:
        for directory, seen in _watched:
            for entry in os.scandir(directory):
                if entry.is_file(follow_symlinks=False):
                    mode = entry.stat(follow_symlinks=False).st_mode & 0o777
                    seen.setdefault(entry.name, set()).add(mode)
    except FileNotFoundError:
        pass
    finally:
        _in_hook = False


sys.addaudithook(_note_modes)  # hooks cannot be removed: it is idle outside ``modes_seen``


@contextmanager
def modes_seen(directory: Path, umask: int = 0) -> Iterator[dict[str, set[int]]]:
    """Every mode each file in ``directory`` had during the block, run with ``umask`` (0: a
    file made by plain ``open`` then ``chmod`` is 0666 until the chmod, and that shows)."""
    seen: dict[str, set[int]] = {}
    old = os.umask(umask)
    _watched.append((directory, seen))
    try:
        yield seen
    finally:
        _watched.remove((directory, seen))
        os.umask(old)
    _note_modes("end", ())  # and the modes left at the end
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False):
            seen.setdefault(entry.name, set()).add(entry.stat().st_mode & 0o777)


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


# --- Files ------------------------------------------------------------------------------------


def test_the_demo_key_file_is_created_0600_with_no_wider_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "VAR", tmp_path)
    monkeypatch.delenv("CC_SECRET_KEY", raising=False)
    with modes_seen(tmp_path, umask=0) as seen:
        settings = run.ensure_secret_key(Settings(secret_key=""))
    assert mode(tmp_path / "secret.key") == 0o600
    assert seen and all(modes == {0o600} for modes in seen.values()), seen
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temporary file left
    Fernet(settings.secret_key.encode())  # the whole key was written
    assert (tmp_path / "secret.key").read_text() == settings.secret_key


def test_a_second_run_reads_the_key_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "VAR", tmp_path)
    monkeypatch.delenv("CC_SECRET_KEY", raising=False)
    first = run.ensure_secret_key(Settings(secret_key="")).secret_key
    before = os.stat(tmp_path / "secret.key")
    assert run.ensure_secret_key(Settings(secret_key="")).secret_key == first
    after = os.stat(tmp_path / "secret.key")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_the_sqlite_database_and_its_wal_and_shm_files_are_0600(tmp_path: Path) -> None:
    directory = tmp_path / "var"  # missing: CC creates it
    with modes_seen(tmp_path, umask=0):
        engine = make_engine(f"sqlite:///{directory / 'cc.db'}")
    assert mode(directory) == 0o700
    assert mode(directory / "cc.db") == 0o600  # created before SQLite opened it
    with modes_seen(directory, umask=0) as seen:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            connection.commit()
            wal_files = {"cc.db-wal", "cc.db-shm"} & {p.name for p in directory.iterdir()}
            assert wal_files == {"cc.db-wal", "cc.db-shm"}  # open in WAL mode
            assert all(mode(directory / name) == 0o600 for name in wal_files)
        engine.dispose()
    assert all(modes == {0o600} for modes in seen.values()), seen


def test_make_runs_var_directory_is_0700_even_if_it_was_wider(tmp_path: Path) -> None:
    created, existing = tmp_path / "new-var", tmp_path / "old-var"
    existing.mkdir(mode=0o755)
    old = os.umask(0)
    try:
        run.private_var(created)
        run.private_var(existing)
    finally:
        os.umask(old)
    assert mode(created) == 0o700 and mode(existing) == 0o700


# --- Demo secrets -----------------------------------------------------------------------------

# Each demo-valued secret, the URL setting that decides, and the host of a real vendor.
DEMO_SECRETS = {
    "e9_auth_token": ("e9_base_url", "https://app.cloopen.example.com:8883"),
    "hw_seat_password": ("hw_base_url", "https://cec.huawei.example.com:28443"),
    "jy_auth_token": ("jy_base_url", "https://api.twilio.example.com"),
    "oss_access_key_id": ("oss_endpoint", "https://oss-cn-hangzhou.aliyuncs.com"),
    "oss_access_key_secret": ("oss_endpoint", "https://oss-cn-hangzhou.aliyuncs.com"),
}


def test_every_vendor_secret_with_a_demo_default_is_guarded() -> None:
    marked = {
        name: mark.url_setting
        for name, field in Settings.model_fields.items()
        for mark in field.metadata
        if isinstance(mark, DemoDefault)
    }
    assert marked == {name: url for name, (url, _) in DEMO_SECRETS.items()}


@pytest.mark.parametrize("secret", sorted(DEMO_SECRETS))
def test_a_demo_secret_with_a_real_vendor_url_is_refused(secret: str) -> None:
    url_setting, real_url = DEMO_SECRETS[secret]
    others: dict[str, Any] = {
        s: "set" for s, (u, _) in DEMO_SECRETS.items() if u == url_setting and s != secret
    }
    with pytest.raises(DemoSecretInUse) as refused:
        Settings(**{url_setting: real_url, **others})
    message = str(refused.value)
    assert f"CC_{secret.upper()}" in message and f"CC_{url_setting.upper()}" in message
    assert str(Settings.model_fields[secret].default) not in message  # the value never shows
    assert not any(f"CC_{s.upper()}" in message for s in others)


def test_the_refusal_comes_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_E9_BASE_URL", "https://app.cloopen.example.com:8883")
    with pytest.raises(DemoSecretInUse, match="CC_E9_AUTH_TOKEN"):
        Settings()
    monkeypatch.setenv("CC_E9_AUTH_TOKEN", "the-accounts-own-token")
    assert Settings().e9_base_url == "https://app.cloopen.example.com:8883"


LOCAL = [
    "http://127.0.0.1:9101",
    "http://localhost:9101",
    "http://[::1]:9101",
    "http://127.0.0.2:1",
]


@pytest.mark.parametrize("local", LOCAL)
def test_a_local_simulator_keeps_the_demo_secrets(local: str) -> None:
    settings = Settings(e9_base_url=local, hw_base_url=local, jy_base_url=local, oss_endpoint=local)
    assert settings.e9_auth_token == Settings.model_fields["e9_auth_token"].default


def test_a_real_vendor_with_its_own_secret_is_accepted() -> None:
    real: dict[str, Any] = {url: host for url, host in DEMO_SECRETS.values()}
    own: dict[str, Any] = {secret: f"own-{secret}" for secret in DEMO_SECRETS}
    settings = Settings(**real, **own)
    assert settings.jy_auth_token == "own-jy_auth_token"
