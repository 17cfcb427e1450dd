"""docker-compose.yml, the production shape: no secret has a default there (compose stops
until each is set), and none of the settings whose built-in value is a public demo one is
left out (CC would refuse it anyway: the sim-* hosts are not local)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from channels.registry import Settings
from core.secrets import DemoDefault

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):\?[^}]+\}$")  # ${NAME:?message}


def cc_env() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env: dict[str, str] = compose["x-cc-env"]
    assert all(service.get("environment", env) is env for service in _cc_services(compose))
    return env


def _cc_services(compose: dict[str, dict[str, dict[str, object]]]) -> list[dict[str, object]]:
    return [s for s in compose["services"].values() if s.get("build") == "."]


def demo_guarded() -> list[str]:
    return [
        f"CC_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if any(isinstance(mark, DemoDefault) for mark in field.metadata)
    ]


def test_every_demo_guarded_secret_the_metrics_token_and_the_operator_key_must_be_set() -> None:
    env = cc_env()
    for name in [*demo_guarded(), "CC_METRICS_TOKEN", "CC_OPERATOR_KEY", "CC_PAYLOAD_KEYS"]:
        assert name in env, f"docker-compose.yml does not pass {name}"
        required = REQUIRED.match(str(env[name]))
        assert required and required["name"] == name, f"{name}: {env[name]} has a default"


def test_no_demo_value_is_left_in_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name, field in Settings.model_fields.items():
        if any(isinstance(mark, DemoDefault) for mark in field.metadata):
            assert str(field.default) not in text, name


def test_the_simulators_recordings_pass_the_egress_policy() -> None:
    """The sim-* hosts resolve to the compose network's private addresses, which the egress
    policy refuses unless allowed: each simulator's host:port is, and nothing wider."""
    allowed = Settings(egress_allow=yaml.safe_load(cc_env()["CC_EGRESS_ALLOW"])).egress_allow
    for channel in ("e9", "hw", "jy"):
        host_port = urlsplit(cc_env()[f"CC_{channel.upper()}_BASE_URL"]).netloc
        assert host_port in allowed
    assert all(":" in entry for entry in allowed)  # host:port entries, no network


def test_temporal_is_not_published_and_its_ui_only_on_loopback() -> None:
    """Issue 21: Temporal's frontend has no authentication in this file, so no host port
    reaches it; the UI is on the host's loopback only and asks CC's codec endpoint (with the
    browser's credentials: the operator's codec session) to show payloads."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "ports" not in services["temporal"]
    assert all(str(port).startswith("127.0.0.1:") for port in services["temporal-ui"]["ports"])
    ui_env = services["temporal-ui"]["environment"]
    assert ui_env["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")
    assert ui_env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
