"""Create an API key for a tenant: ``python -m scripts.keys <tenant> [--scope masked]``.

Keys are stored hashed, so the raw key is printed once, here. Scopes: ``full`` (sees
customer numbers), ``masked`` (sees them as ``+86139****0002`` everywhere), ``admin`` (full,
and manages the tenant's notifications). No tenant key, whatever its scope, acts on what
every tenant shares: that is the platform operator's credential (``CC_OPERATOR_KEY``; the
operator can also make tenant keys with ``POST /v1/operator/tenants/{id}/keys``).
"""

from __future__ import annotations

import argparse

from channels.registry import get_settings
from store.db import make_engine, session_scope
from store.tenants import add_api_key, ensure_tenant, new_api_key

SCOPES = ("full", "masked", "admin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tenant", help="tenant id (created if missing)")
    parser.add_argument("--scope", choices=SCOPES, default="full")
    args = parser.parse_args()
    engine = make_engine(get_settings().database_url)
    raw_key = new_api_key()
    with session_scope(engine) as session:
        ensure_tenant(session, args.tenant)
        add_api_key(session, args.tenant, raw_key, scope=args.scope)
    engine.dispose()
    print(raw_key)


if __name__ == "__main__":
    main()
