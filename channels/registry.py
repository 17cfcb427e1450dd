"""Every channel CC can use, by name. Adding a vendor = one adapter module + one line here."""

from __future__ import annotations

from collections.abc import Callable

from channels.base import Channel
from channels.e9 import E9Channel
from core.config import Settings

ChannelFactory = Callable[[Settings], Channel]


def _e9(settings: Settings) -> Channel:
    return E9Channel(
        base_url=settings.e9_base_url,
        account_sid=settings.e9_account_sid,
        auth_token=settings.e9_auth_token,
        status_url=f"{settings.public_base_url.rstrip('/')}/webhooks/e9",
        timeout_s=settings.vendor_timeout_s,
    )


CHANNELS: dict[str, ChannelFactory] = {
    "e9": _e9,
}


def build_channels(settings: Settings) -> dict[str, Channel]:
    return {name: factory(settings) for name, factory in CHANNELS.items()}
