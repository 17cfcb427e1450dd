"""Secrets CC keeps in its database (hw seat passwords), sealed with ``CC_SECRET_KEY``.

Fernet (``cryptography``): authenticated encryption, so a sealed value read back is exactly
what was sealed or an error. The key is a urlsafe-base64 32-byte key
(``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


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
