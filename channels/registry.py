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

from pydantic import model_validator

from channels import e9, hw, jy
from channels.protocols import Channel, MemorySessions, SessionStore
from core.secrets import refuse_demo_defaults


class Settings(e9.E9Settings, hw.HwSettings, jy.JySettings):
    """All configuration: CC's own (``core.config.CoreSettings``) and every registered
    vendor's, read once from the environment (prefix ``CC_``) or a ``.env`` file."""

    @model_validator(mode="after")
    def _no_demo_secret_off_this_machine(self) -> Settings:
        # A vendor's (or OSS') demo secret is public: anyone could sign its webhooks. Every
        # process (API, worker, scripts, simulators) reads this class, so none starts with one
        # while the vendor's URL is not a local simulator (``core.secrets.DemoDefault``).
        refuse_demo_defaults(self)
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()


@dataclass(frozen=True)
class ChannelSpec:
    # The adapter, given the settings and the sessions every process shares (polled vendors).
    build: Callable[[Settings, SessionStore], Channel]
    base_url: Callable[[Settings], str]  # where the vendor (or its simulator) listens


CHANNELS: dict[str, ChannelSpec] = {
    "e9": ChannelSpec(lambda s, _: e9.build(s), lambda s: s.e9_base_url),
    "hw": ChannelSpec(hw.build, lambda s: s.hw_base_url),
    "jy": ChannelSpec(lambda s, _: jy.build(s), lambda s: s.jy_base_url),
}


def build_channels(settings: Settings, sessions: SessionStore | None = None) -> dict[str, Channel]:
    """Every channel; ``sessions`` is the store every process shares (``store.seats``), an
    in-process one when None (tests, a single process)."""
    shared = sessions if sessions is not None else MemorySessions()
    return {name: spec.build(settings, shared) for name, spec in CHANNELS.items()}
