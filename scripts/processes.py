"""A stack's child processes: started in sessions of their own with their logs in a folder,
waited for over HTTP, and stopped with everything they started however the stop is asked
for (``make run``, the benchmarks' stacks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from core.secrets import PRIVATE_FILE

ROOT = Path(__file__).resolve().parent.parent
# A child still running this long after SIGTERM is killed, with all its process group.
STOP_TIMEOUT_S = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

Child = tuple[str, "subprocess.Popen[bytes]"]


class Interrupted(Exception):
    """A stop signal arrived: stop everything started so far."""


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP only *ask* for a stop: the handler records the signal and
    never raises, so no signal can cut the start or the stop of the stack half-way (a second
    Ctrl-C used to abandon the children). The main flow calls ``check`` between steps."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def install(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) > 1:  # os.write: print is not safe in a signal handler
            os.write(2, b"already stopping: every child is stopped (or killed) first\n")

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def check(self) -> None:
        if self.received:
            raise Interrupted


def private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)  # a new log file is readable by its owner only


def start(name: str, command: list[str], children: list[Child], log_dir: Path) -> None:
    """Start ``command`` from the checkout, its output in ``log_dir/<name>.log``."""
    print(f"  starting {name:<10} (log: {log_dir.name}/{name}.log)", flush=True)
    with open(log_dir / f"{name}.log", "ab", opener=private_opener) as log:
        # A session of its own: a terminal's Ctrl-C reaches only this script, which stops
        # the children in order; and the child's process group holds all it starts.
        child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    children.append((name, child))


def exited(child: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it: until ``stop_all`` reaps it, its pid
    (its process group's id) cannot be reused, so signalling the group stays safe."""
    if child.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    if child.returncode is None:  # not reaped: the group id is still this child's
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signum)


def stop_all(children: list[Child], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop every child and whatever it started: SIGTERM to each process group (last started
    first), then SIGKILL to every group once the children exited or ``timeout_s`` passed.

    Stop signals arriving meanwhile are held back until all are gone (and then only
    recorded, with ``StopSignals`` installed): stopping is never abandoned half-way.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        for _, child in reversed(children):
            if not exited(child):
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while not all(exited(child) for _, child in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name, child in children:
            if not exited(child):
                print(f"  {name} did not stop within {timeout_s:g} s: killed", file=sys.stderr)
            _signal_group(child, signal.SIGKILL)  # also what it left behind in its group
            child.wait()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def wait_http(url: str, what: str, children: list[Child], stop: StopSignals, log_dir: Path) -> None:
    """Until ``url`` answers 200; a child that exits meanwhile ends the wait."""
    for _ in range(240):
        stop.check()
        for name, child in children:
            if exited(child):
                raise SystemExit(f"{name} exited early; see {log_dir / name}.log")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what} did not become ready at {url}")
