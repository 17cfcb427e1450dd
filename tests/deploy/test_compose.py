"""docker-compose.yml, the production shape: no secret has a default there (compose stops
until each is set), and none of the settings whose built-in value is a public demo one is
left out (CC would refuse it anyway: the sim-* hosts are not local)."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_every_demo_guarded_secret_and_the_metrics_token_must_be_set() -> None:
    env = cc_env()
    for name in [*demo_guarded(), "CC_METRICS_TOKEN"]:
        assert name in env, f"docker-compose.yml does not pass {name}"
        required = REQUIRED.match(str(env[name]))
        assert required and required["name"] == name, f"{name}: {env[name]} has a default"


def test_no_demo_value_is_left_in_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name, field in Settings.model_fields.items():
        if any(isinstance(mark, DemoDefault) for mark in field.metadata):
            assert str(field.default) not in text, name
