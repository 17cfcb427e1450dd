"""The API harness of tests/api (the real app in-process, a fake Temporal client)."""

from tests.api.conftest import harness  # noqa: F401  (fixture)
