"""The hw simulator tests' fixture (tests/simulators/hw_support.py)."""

from tests.simulators.hw_support import gw  # noqa: F401  (fixture)
