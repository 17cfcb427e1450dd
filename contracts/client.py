"""The connection to Temporal that the API, the worker and the scripts share: CC's data
converter (pydantic payloads sealed with ``CC_PAYLOAD_KEYS``, core/codec.py) and, from the
settings, TLS (a CA, a client certificate for mTLS) and an API key."""

from __future__ import annotations

import logging
from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from core.codec import data_converter
from core.config import CoreSettings as Settings

log = logging.getLogger("cc.temporal")


def tls_of(settings: Settings) -> TLSConfig | bool:
    """TLS when any TLS setting is given (an API key alone does not turn it on)."""
    files = (settings.temporal_tls_ca, settings.temporal_tls_cert, settings.temporal_tls_key)
    if not settings.temporal_tls and not any(files):
        return False
    if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
        raise ValueError("CC_TEMPORAL_TLS_CERT and CC_TEMPORAL_TLS_KEY go together (mTLS)")

    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca),
        client_cert=read(settings.temporal_tls_cert),
        client_private_key=read(settings.temporal_tls_key),
        domain=settings.temporal_tls_server_name or None,
    )


async def connect_temporal(settings: Settings) -> Client:
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.payload_keys),
        tls=tls_of(settings),
        api_key=settings.temporal_api_key or None,
    )
    if not settings.payload_keys:  # told once connected, not at every attempt before
        log.warning("CC_PAYLOAD_KEYS is unset: payloads (numbers included) go to Temporal in clear")
    return client
