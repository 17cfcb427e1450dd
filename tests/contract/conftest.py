"""The contract suite runs once per registered channel, on the shared live stack."""

from __future__ import annotations

import pytest

from channels.registry import CHANNELS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Read at collection time: a channel registered before the run joins the suite.
    if "channel" in metafunc.fixturenames:
        metafunc.parametrize("channel", list(CHANNELS))
