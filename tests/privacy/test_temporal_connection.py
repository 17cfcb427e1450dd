"""Issue 21 part 3: how CC connects to Temporal comes from its settings: TLS with a CA, a client
certificate for mTLS, the system's roots, and an API key; plain only when none is given."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from contracts.client import tls_of
from core.config import CoreSettings


def settings(**values: object) -> CoreSettings:
    return CoreSettings(_env_file=None, **values)  # type: ignore[call-arg]


def test_plain_without_any_tls_setting() -> None:
    assert tls_of(settings()) is False
    assert tls_of(settings(temporal_api_key="k")) is False  # an API key alone turns on nothing


def test_the_systems_roots_on_request() -> None:
    tls = tls_of(settings(temporal_tls=True))
    assert isinstance(tls, TLSConfig) and tls.server_root_ca_cert is None


def test_mtls_reads_the_ca_the_certificate_and_its_key(tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for name, path in files.items():
        path.write_bytes(f"-----{name}-----".encode())
    tls = tls_of(
        settings(
            temporal_tls_ca=str(files["ca"]),
            temporal_tls_cert=str(files["cert"]),
            temporal_tls_key=str(files["key"]),
            temporal_tls_server_name="temporal.internal",
        )
    )
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == b"-----ca-----"
    assert (tls.client_cert, tls.client_private_key) == (b"-----cert-----", b"-----key-----")
    assert tls.domain == "temporal.internal"


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"x")
    with pytest.raises(ValueError, match="go together"):
        tls_of(settings(temporal_tls_cert=str(cert)))


def test_secrets_stay_out_of_the_settings_repr() -> None:
    shown = repr(settings(temporal_api_key="api-secret", payload_keys=["k1:c2VjcmV0"]))
    assert "api-secret" not in shown and "c2VjcmV0" not in shown
