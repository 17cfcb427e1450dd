"""Every channel CC can use, by name. Adding a vendor = one adapter module, one simulator
module and one line in ``CHANNELS``; the contract suite then runs on it too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from channels.base import Channel
from channels.e9 import E9Channel
from channels.hw import HwChannel
from channels.jy import JyChannel
from core.config import Settings


@dataclass(frozen=True)
class ChannelSpec:
    build: Callable[[Settings], Channel]
    base_url: Callable[[Settings], str]  # where the vendor (or its simulator) listens
    simulator: str  # module with create_app(settings), run by `make run` and the tests


def status_url(settings: Settings, channel: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/webhooks/{channel}"


def _e9(s: Settings) -> Channel:
    return E9Channel(s.e9_base_url, s.e9_account_sid, s.e9_auth_token, status_url(s, "e9"),
                     s.vendor_timeout_s)  # fmt: skip


def _hw(s: Settings) -> Channel:
    return HwChannel(s.hw_base_url, s.hw_app_key, s.hw_app_secret, s.vendor_timeout_s)


def _jy(s: Settings) -> Channel:
    return JyChannel(s.jy_base_url, s.jy_account_sid, s.jy_auth_token, status_url(s, "jy"),
                     s.vendor_timeout_s)  # fmt: skip


CHANNELS: dict[str, ChannelSpec] = {
    "e9": ChannelSpec(_e9, lambda s: s.e9_base_url, "simulators.e9"),
    "hw": ChannelSpec(_hw, lambda s: s.hw_base_url, "simulators.hw"),
    "jy": ChannelSpec(_jy, lambda s: s.jy_base_url, "simulators.jy"),
}


def build_channels(settings: Settings) -> dict[str, Channel]:
    return {name: spec.build(settings) for name, spec in CHANNELS.items()}
