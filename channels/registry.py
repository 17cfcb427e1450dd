"""Every channel CC can use, by name, and the settings that configure them all.

Adding a vendor = one adapter module (its channel, its ``<Vendor>Settings`` and ``build``),
one simulator module (named in ``simulators/registry.py``), and its registration here: its
line in ``CHANNELS`` and its settings class among ``Settings``' bases. The contract suite
then runs on it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from channels import e9, hw, jy
from channels.base import Channel


class Settings(e9.E9Settings, hw.HwSettings, jy.JySettings):
    """All configuration: CC's own (``core.config.CoreSettings``) and every registered
    vendor's, read once from the environment (prefix ``CC_``) or a ``.env`` file."""


@lru_cache
def get_settings() -> Settings:
    return Settings()


@dataclass(frozen=True)
class ChannelSpec:
    build: Callable[[Settings], Channel]
    base_url: Callable[[Settings], str]  # where the vendor (or its simulator) listens


CHANNELS: dict[str, ChannelSpec] = {
    "e9": ChannelSpec(e9.build, lambda s: s.e9_base_url),
    "hw": ChannelSpec(hw.build, lambda s: s.hw_base_url),
    "jy": ChannelSpec(jy.build, lambda s: s.jy_base_url),
}


def build_channels(settings: Settings) -> dict[str, Channel]:
    return {name: spec.build(settings) for name, spec in CHANNELS.items()}
