"""A workflow's log line with phone numbers in it, in a worker whose ``phonenumbers`` has not
loaded that region yet (a freshly restarted worker). The log redaction then loaded the
region's data inside Temporal's workflow sandbox, which refused the ``threading.Lock`` the
data's module makes; ``phonenumbers`` kept its metadata lock taken, and the worker's event
loop hung at its next number (seen as the chaos suite's notifications not delivered after a
worker restart). Now the metadata is loaded before any log line (``core.logs``) and the
sandbox passes ``phonenumbers`` through (``worker.WORKFLOW_RUNNER``): either is enough. The
test runs the worker as it is, and with the passthrough alone (the preload turned off). Each
run is a fresh process (metadata, once loaded, stays), in a process group of its own, so a
hung run's dev server goes with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("how", ["as the worker runs", "no-preload"])
def test_a_workflow_logging_numbers_leaves_the_worker_working(how: str) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "tests.core.sandboxed_log", how],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = run.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
        raise AssertionError("the worker hung on a workflow's log line") from None
    assert run.returncode == 0, stderr[-3000:]
    lines = stdout.splitlines()  # the dev server's banner comes first
    assert "said" in lines and lines[-1] == "lock free", stderr[-3000:]
