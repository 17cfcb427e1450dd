"""`make run` (scripts/run.py): a taken port is named before anything starts, and any number
of stop signals stops every child, whatever the children do with SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from channels.registry import Settings
from core.codec import new_key_entry, parse_keys
from core.secrets import seal, unseal
from scripts import ports, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is already listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize(
    ("settings_of", "setting", "what"),
    [
        (lambda port: Settings(api_port=port), "CC_API_PORT", "the API"),
        (lambda port: Settings(temporal_address=f"127.0.0.1:{port}"), "CC_TEMPORAL_ADDRESS",
         "the Temporal dev server"),
        (lambda port: Settings(temporal_ui_port=port), "CC_TEMPORAL_UI_PORT",
         "the Temporal Web UI"),
        (lambda port: Settings(e9_base_url=f"http://127.0.0.1:{port}"), "CC_E9_BASE_URL",
         "the e9 simulator"),
    ],
)  # fmt: skip
def test_a_taken_port_is_named_with_the_setting_that_moves_it(
    taken_port: int, settings_of: Callable[[int], Settings], setting: str, what: str
) -> None:
    problems = ports.port_problems(settings_of(taken_port))
    # Other engineers' stacks may hold the default ports on this machine: look at ours only.
    (ours,) = [p for p in problems if p.startswith(f"port {taken_port} ")]
    assert f"({what}, 127.0.0.1:{taken_port}) is already in use" in ours
    assert f"set {setting} to move it (e.g. {setting}=" in ours


def test_two_parts_of_the_stack_on_one_port_are_named(taken_port: int) -> None:
    settings = Settings(api_port=taken_port, hw_base_url=f"http://localhost:{taken_port}")
    ours = [p for p in ports.port_problems(settings) if p.startswith(f"port {taken_port} ")]
    assert any("is set for both the API and the hw simulator" in p for p in ours)
    assert any("CC_HW_BASE_URL=http://localhost:" in p for p in ours)


def test_a_real_vendor_needs_no_simulator() -> None:
    settings = Settings(e9_base_url="https://app.e9.example.com:8883", e9_auth_token="real")
    assert "sim-e9" not in [sim.name for sim in ports.simulators(settings)]
    assert all(wanted.port != 8883 for wanted in ports.listeners(settings))


def test_make_run_exits_before_starting_anything_when_a_port_is_taken(
    taken_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("started something")

    settings = Settings(api_port=taken_port, var_dir=str(tmp_path))
    monkeypatch.setattr(run, "get_settings", lambda: settings)
    for step in ("upgrade", "seed_demo", "start", "run_stack"):
        monkeypatch.setattr(run, step, never)
    with pytest.raises(SystemExit) as exited:
        run.main()
    message = str(exited.value.code)  # a message: Python prints it and exits with status 1
    assert f"port {taken_port} (the API" in message and "CC_API_PORT" in message


# A parent that manages one child the way `make run` does. The child and its own child
# ignore SIGTERM, so only the SIGKILL after the stop timeout ends them.
PARENT = """
import sys, time
from pathlib import Path
from scripts import processes

out = Path(sys.argv[1])
stop = processes.StopSignals().install()
children = []
stubborn = f"trap '' TERM; sleep 600 & echo $! > {out / 'grandchild.pid'}; wait"
processes.start("stubborn", ["sh", "-c", stubborn], children, log_dir=out)
print("child", children[0][1].pid, flush=True)
while not stop.requested:
    time.sleep(0.02)
print("stopping", flush=True)
processes.stop_all(children, timeout_s=2.0)
print("stopped", flush=True)
"""


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put("<eof>")

    threading.Thread(target=read, daemon=True).start()
    return lines


def next_line(lines: queue.Queue[str], prefix: str) -> str:
    while True:
        line = lines.get(timeout=30)
        if line.startswith(prefix) or line == "<eof>":
            assert line.startswith(prefix), f"no line starting with {prefix!r}"
            return line


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # dead, waiting to be reaped by init


def poll(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_every_child_is_stopped_whatever_the_number_of_signals(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    pids: list[int] = []
    try:
        lines = lines_of(parent)
        pids.append(int(next_line(lines, "child ").split()[1]))
        pid_file = tmp_path / "grandchild.pid"
        poll(lambda: pid_file.is_file() and pid_file.read_text().strip() != "", 30, "sleep")
        pids.append(int(pid_file.read_text()))

        parent.send_signal(signal.SIGTERM)
        next_line(lines, "stopping")
        parent.send_signal(signal.SIGTERM)  # used to abandon the children half-way
        parent.send_signal(signal.SIGINT)
        next_line(lines, "stopped")
        assert parent.wait(timeout=30) == 0
        poll(lambda: all(gone(pid) for pid in pids), 10, "the child and its own child to go")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in pids:  # only if the test failed: never leave our sleeps behind
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_make_run_keeps_one_secret_key_for_what_it_seals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: notification secrets (and seat passwords) are sealed with CC_SECRET_KEY; the
    demo makes one once and reuses it, so what it sealed opens after a restart."""
    monkeypatch.setattr(run, "VAR", tmp_path)
    monkeypatch.delenv("CC_SECRET_KEY", raising=False)
    first = run.ensure_secret_key(Settings(secret_key=""))
    sealed = seal("whsec_x", first.secret_key)
    again = run.ensure_secret_key(Settings(secret_key=""))
    assert again.secret_key == first.secret_key and unseal(sealed, again.secret_key) == "whsec_x"
    assert os.environ["CC_SECRET_KEY"] == first.secret_key  # the stack's processes inherit it
    assert run.ensure_secret_key(Settings(secret_key="mine")).secret_key == "mine"


def test_make_run_makes_the_operator_key_once_and_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: the operator's credential (never a tenant key) is made once, kept 0600 in
    var/operator.key, inherited by the stack and shown in the banner; a set one is kept."""
    monkeypatch.setattr(run, "VAR", tmp_path)
    monkeypatch.delenv("CC_OPERATOR_KEY", raising=False)
    first = run.ensure_operator_key(Settings(operator_key=""))
    assert len(first.operator_key) >= 32
    assert (tmp_path / "operator.key").stat().st_mode & 0o777 == 0o600
    assert run.ensure_operator_key(Settings(operator_key="")).operator_key == first.operator_key
    assert os.environ["CC_OPERATOR_KEY"] == first.operator_key
    assert run.ensure_operator_key(Settings(operator_key="mine")).operator_key == "mine"
    assert first.operator_key in run.banner(first, "demo-key")


def test_make_run_makes_the_payload_key_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21: the stack seals what it hands Temporal with a key made once, kept 0600 in
    var/payload.key and inherited by every process; a set CC_PAYLOAD_KEYS is kept."""
    monkeypatch.setattr(run, "VAR", tmp_path)
    monkeypatch.delenv("CC_PAYLOAD_KEYS", raising=False)
    first = run.ensure_payload_key(Settings(payload_keys=[]))
    [entry] = first.payload_keys
    assert parse_keys([entry]).keys() == {"k1"}
    assert (tmp_path / "payload.key").stat().st_mode & 0o777 == 0o600
    assert run.ensure_payload_key(Settings(payload_keys=[])).payload_keys == [entry]
    assert json.loads(os.environ["CC_PAYLOAD_KEYS"]) == [entry]
    mine = [new_key_entry("mine")]
    assert run.ensure_payload_key(Settings(payload_keys=mine)).payload_keys == mine


# Another `make run` holding a folder: takes its lock, says so, and waits to be killed.
HOLDER = """
import sys, time
from pathlib import Path
from channels.registry import Settings
from scripts import ports, run

held = run.hold_var(Path(sys.argv[1]), Settings())
print("holding", flush=True)
time.sleep(600)
"""


def test_a_second_make_run_in_the_same_folder_names_the_first_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22: two stacks on one folder meant two Temporal servers on one SQLite file."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("started something")

    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == "holding\n"
        settings = Settings(var_dir=str(tmp_path))
        monkeypatch.setattr(run, "get_settings", lambda: settings)
        for step in ("port_problems", "upgrade", "seed_demo", "start", "run_stack"):
            monkeypatch.setattr(run, step, never)
        with pytest.raises(SystemExit) as refused:
            run.main()
        message = str(refused.value.code)
        assert f"CC is already running here (pid {first.pid}" in message
        assert f"kill {first.pid}" in message
        assert f"CC_VAR_DIR={tmp_path.name}2 CC_API_PORT=" in message  # a second stack's way
    finally:
        first.kill()  # SIGKILL: the kernel drops the lock with the process
        first.wait()
    held = run.hold_var(tmp_path, Settings(var_dir=str(tmp_path)))
    assert (tmp_path / run.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    held.close()


def test_a_folder_of_its_own_holds_the_whole_stack() -> None:
    assert (Settings().database_url, Settings().storage_dir) == (
        "sqlite:///./var/cc.db",
        "./var/recordings",
    )
    beside = Settings(var_dir="var2")
    assert (beside.database_url, beside.storage_dir) == ("sqlite:///var2/cc.db", "var2/recordings")
    assert run.var_path(beside) == ROOT / "var2"
    command = run.temporal_command(beside, run.var_path(beside))
    assert command[command.index("--db-filename") + 1] == str(ROOT / "var2" / "temporal.db")


def test_make_run_keeps_one_demo_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22: the README's commands keep working after a restart (a new key each time
    left the last one's commands failing with 401)."""
    monkeypatch.setattr(run, "VAR", tmp_path)
    monkeypatch.delenv("CC_DEMO_API_KEY", raising=False)
    first = run.ensure_demo_key(Settings(demo_api_key=None))
    assert first.demo_api_key and first.demo_api_key.startswith("cc_")
    assert (tmp_path / "demo.key").stat().st_mode & 0o777 == 0o600
    assert run.ensure_demo_key(Settings(demo_api_key=None)).demo_api_key == first.demo_api_key
    assert os.environ["CC_DEMO_API_KEY"] == first.demo_api_key
    assert run.ensure_demo_key(Settings(demo_api_key="mine")).demo_api_key == "mine"


def test_the_banner_gives_every_address_a_newcomer_needs() -> None:
    settings = Settings(operator_key="op", e9_base_url="http://127.0.0.1:19101")
    shown = run.banner(settings, "demo-key")
    assert "e9 http://127.0.0.1:19101" in shown and "hw http://127.0.0.1:9102" in shown
    assert "/docs" in shown and "demo-key" in shown and str(run.VAR) in shown
