"""``python -m scripts.keys``: a new key of the asked scope, stored hashed, usable at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlmodel import Session

from store.db import make_engine
from store.migrate import upgrade
from store.tenants import hash_key, key_for

ROOT = Path(__file__).resolve().parents[1]


def test_creates_a_masked_key_for_a_new_tenant(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    env = {"CC_DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    out = subprocess.run([sys.executable, "-m", "scripts.keys", "acme", "--scope", "masked"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    raw_key = out.stdout.strip()
    engine = make_engine(url)
    with Session(engine) as session:
        key = key_for(session, raw_key)
        assert key is not None and (key.tenant, key.scope) == ("acme", "masked")
        assert key.key_hash == hash_key(raw_key) != raw_key
    engine.dispose()
