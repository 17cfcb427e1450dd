"""Every registered channel has a simulator that `make run` and the tests can start."""

from __future__ import annotations

import importlib

from channels.registry import CHANNELS
from simulators.registry import SIMULATORS


def test_every_channel_names_a_simulator_with_an_app() -> None:
    assert set(CHANNELS) <= set(SIMULATORS)
    for module in SIMULATORS.values():
        assert callable(importlib.import_module(module).create_app)
