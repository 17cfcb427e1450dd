"""A channel added to the registry joins the contract suite with no other change."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PLUGIN = """
from channels.registry import CHANNELS, ChannelSpec
from simulators.registry import SIMULATORS

CHANNELS["fake"] = ChannelSpec(CHANNELS["e9"].build, CHANNELS["e9"].base_url)
SIMULATORS["fake"] = "simulators.e9"
"""


def test_a_fourth_channel_is_collected_for_every_contract_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(fake_channel=PLUGIN)
    pytester.syspathinsert()
    # A subprocess: registering the fake channel must not leak into this test session.
    contract = Path(__file__).with_name("test_contract.py")
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "-p", "fake_channel", str(contract)
    )
    collected = [line for line in result.outlines if "::" in line]
    per_channel = {
        name: {line.split("[")[0] for line in collected if f"[{name}" in line}
        for name in ("e9", "hw", "jy", "fake")
    }
    assert per_channel["fake"] and per_channel["fake"] == per_channel["e9"] == per_channel["jy"]
