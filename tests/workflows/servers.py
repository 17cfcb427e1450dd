"""The time-skipping Temporal test server the workflow tests run on."""

from __future__ import annotations

import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment


async def time_skipping_env() -> WorkflowEnvironment:
    """A time-skipping test server (the binary installed beside the venv's python) speaking
    pydantic payloads; the caller shuts it down."""
    server = Path(sys.executable).parent / "temporal-test-server"
    return await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=pydantic_data_converter
    )
