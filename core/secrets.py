"""Secrets CC keeps: values in its database (hw seat passwords), sealed with ``CC_SECRET_KEY``;
the files it writes them to (the demo's key file, the SQLite database), created private; and
the public demo values a setting may keep only while it talks to a local simulator.

Fernet (``cryptography``): authenticated encryption, so a sealed value read back is exactly
what was sealed or an error. The key is a urlsafe-base64 32-byte key
(``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from pydantic_settings import BaseSettings

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY


class SecretKeyMissing(Exception):
    """A secret must be sealed or opened but ``CC_SECRET_KEY`` is not set."""


class SecretUnreadable(Exception):
    """A sealed secret that this key did not seal (key rotated or value damaged)."""


def _fernet(key: str) -> Fernet:
    if not key:
        raise SecretKeyMissing("set CC_SECRET_KEY to store secrets")
    return Fernet(key.encode())


def seal(plain: str, key: str) -> str:
    return _fernet(key).encrypt(plain.encode()).decode()


def unseal(token: str, key: str) -> str:
    try:
        return _fernet(key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("a stored secret cannot be opened with CC_SECRET_KEY") from exc


# --- Files only their owner reads -------------------------------------------------------------
# Created with their final mode in the one open(2) that creates them (O_EXCL, 0600): there is
# no moment at which another user could open them, whatever the umask (it only narrows).


def private_dir(path: Path) -> None:
    """``path`` as a directory; created 0700 when missing (an existing one is left as is)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def create_private(path: Path) -> bool:
    """An empty file at ``path`` only its owner can read and write, unless one exists there
    already (left as is). True when it was created."""
    try:
        os.close(os.open(path, _CREATE, PRIVATE_FILE))
    except FileExistsError:
        return False
    return True


def write_private_once(path: Path, content: str) -> str:
    """The text of the file at ``path``; written as ``content`` first if there is none.

    ``content`` goes to a private temporary file beside it, which is then hard-linked into
    place (fails if the file appeared meanwhile): a reader, e.g. a second ``make run``, sees
    no file or the whole of it, never an empty or a half-written one, and never a wider mode.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    with os.fdopen(os.open(temporary, _CREATE, PRIVATE_FILE), "w") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # made by someone else first: theirs is the one
    finally:
        temporary.unlink()
    return path.read_text()


# --- Public demo values -----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoDefault:
    """Marks a setting (``Annotated[str, DemoDefault("e9_base_url")]``) whose default is a
    public demo value, which the local simulators share: acceptable only while the setting
    named here is a URL on this machine."""

    url_setting: str


class DemoSecretInUse(Exception):
    """A setting still has its public demo value while its URL is not a local simulator."""


def is_local_url(url: str) -> bool:
    """Whether ``url``'s host is this machine (``localhost`` or a loopback address)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_defaults_in_use(settings: BaseSettings) -> list[str]:
    """One line per setting marked ``DemoDefault`` that keeps its demo value although its URL
    is not local: names the settings and the host, never a value."""
    prefix = settings.model_config.get("env_prefix") or ""
    found = []
    for name, field in type(settings).model_fields.items():
        for mark in field.metadata:
            if not isinstance(mark, DemoDefault) or getattr(settings, name) != field.default:
                continue
            url = str(getattr(settings, mark.url_setting))
            if not is_local_url(url):
                found.append(
                    f"{(prefix + name).upper()} is still the public demo value while "
                    f"{(prefix + mark.url_setting).upper()} points at {urlsplit(url).hostname}, "
                    "not a local simulator"
                )
    return found


def refuse_demo_defaults(settings: BaseSettings) -> None:
    """Raise ``DemoSecretInUse`` naming every demo value a real (non-local) URL would get."""
    if problems := demo_defaults_in_use(settings):
        raise DemoSecretInUse(
            "refusing to start: "
            + "; ".join(problems)
            + ". Set each to the real account's own value."
        )
