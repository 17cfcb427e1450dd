"""The registry: each channel says what kind it is, and each vendor's settings keep their
CC_<VENDOR>_* names though its adapter module owns them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from channels.protocols import Channel, PolledChannel, WebhookChannel
from channels.registry import CHANNELS, Settings, build_channels
from core.config import CoreSettings
from core.types import ChannelMode

VENDOR_ENV = {
    "CC_E9_BASE_URL": ("e9_base_url", "http://e9.test:1"),
    "CC_E9_ACCOUNT_SID": ("e9_account_sid", "e9-sid"),
    "CC_E9_AUTH_TOKEN": ("e9_auth_token", "e9-token"),
    "CC_HW_BASE_URL": ("hw_base_url", "http://hw.test:2"),
    "CC_HW_SEAT_PASSWORD": ("hw_seat_password", "hw-seat-pw"),
    "CC_HW_REGION": ("hw_region", "HK"),
    "CC_JY_BASE_URL": ("jy_base_url", "http://jy.test:3"),
    "CC_JY_ACCOUNT_SID": ("jy_account_sid", "jy-sid"),
    "CC_JY_AUTH_TOKEN": ("jy_auth_token", "jy-token"),
}


async def test_every_channel_is_exactly_one_kind_and_its_mode_says_which() -> None:
    channels = build_channels(Settings())
    try:
        for name, channel in channels.items():
            assert isinstance(channel, Channel) and channel.name == name
            webhook, polled = (
                isinstance(channel, WebhookChannel),
                isinstance(channel, PolledChannel),
            )
            assert webhook != polled, name
            assert channel.mode is (ChannelMode.WEBHOOK if webhook else ChannelMode.POLL)
    finally:
        for channel in channels.values():
            await channel.aclose()


def test_vendor_settings_are_read_from_their_cc_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, (_, value) in VENDOR_ENV.items():
        monkeypatch.setenv(env, value)
    settings = Settings()
    assert {env: (field, getattr(settings, field)) for env, (field, _) in VENDOR_ENV.items()} == (
        VENDOR_ENV
    )
    assert {name: spec.base_url(settings) for name, spec in CHANNELS.items()} == {
        "e9": "http://e9.test:1", "hw": "http://hw.test:2", "jy": "http://jy.test:3"
    }  # fmt: skip
    assert not any(field in CoreSettings.model_fields for field, _ in VENDOR_ENV.values())


def test_the_production_registry_imports_no_simulator() -> None:
    code = (
        "import sys, channels.registry, api.app, worker\n"
        "assert not [m for m in sys.modules if m.startswith('simulators')], 'simulator imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
