"""What `make run`'s stack listens on, and whether it can: each port named with the setting
that moves it (scripts/run.py checks them all before it starts anything)."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from channels.registry import CHANNELS, Settings
from simulators.registry import SIMULATORS


@dataclass(frozen=True)
class Simulator:
    name: str  # child name, e.g. sim-e9
    module: str
    base_url: str
    setting: str  # the environment variable that moves it


@dataclass(frozen=True)
class Listener:
    what: str
    host: str
    port: int
    setting: str
    example: str  # the setting with {port} to fill in, e.g. CC_API_PORT={port}


def local_address(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost")


def simulators(settings: Settings) -> list[Simulator]:
    """The simulators to start: those whose vendor URL points at this machine (a real
    vendor's URL needs none)."""
    found = [
        Simulator(
            f"sim-{name}", SIMULATORS[name], spec.base_url(settings), f"CC_{name.upper()}_BASE_URL"
        )
        for name, spec in CHANNELS.items()
    ]
    if settings.storage_backend == "oss":
        found.append(
            Simulator("sim-oss", "simulators.oss", settings.oss_endpoint, "CC_OSS_ENDPOINT")
        )
    return [sim for sim in found if local_address(sim.base_url)]


def temporal_host_port(settings: Settings) -> tuple[str, int]:
    host, _, port = settings.temporal_address.rpartition(":")
    return host or "127.0.0.1", int(port)


def listeners(settings: Settings) -> list[Listener]:
    host, port = temporal_host_port(settings)
    found = [
        Listener(
            "the API", settings.api_host, settings.api_port, "CC_API_PORT", "CC_API_PORT={port}"
        ),
        Listener(
            "the Temporal dev server",
            host,
            port,
            "CC_TEMPORAL_ADDRESS",
            f"CC_TEMPORAL_ADDRESS={host}:{{port}}",
        ),
        Listener(
            "the Temporal Web UI",
            host,
            settings.temporal_ui_port,
            "CC_TEMPORAL_UI_PORT",
            "CC_TEMPORAL_UI_PORT={port}",
        ),
    ]
    for sim in simulators(settings):
        url = urlsplit(sim.base_url)
        found.append(
            Listener(
                f"the {sim.name.removeprefix('sim-')} simulator",
                "127.0.0.1",
                settings.port_of(sim.base_url),
                sim.setting,
                f"{sim.setting}={url.scheme}://{url.hostname}:{{port}}",
            )
        )
    return found


def _bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on (host, port), or None if it could."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            # As the servers do: a port held only by old connections (TIME_WAIT) is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        return exc
    return None


def free_port_on(host: str) -> int | str:
    try:
        with socket.socket() as sock:
            sock.bind((host if host not in ("", "::") else "0.0.0.0", 0))
            return int(sock.getsockname()[1])
    except OSError:
        return "<port>"


def port_problems(settings: Settings) -> list[str]:
    """One line per port the stack cannot listen on, naming the setting that moves it."""
    problems = []
    by_port: dict[int, Listener] = {}
    for wanted in listeners(settings):
        hint = f"set {wanted.setting} to move it (e.g. {wanted.example} make run)"
        example = hint.format(port=free_port_on(wanted.host))
        if (other := by_port.get(wanted.port)) is not None:
            problems.append(
                f"port {wanted.port} is set for both {other.what} and {wanted.what}: {example}"
            )
            continue
        by_port[wanted.port] = wanted
        if (error := _bind_error(wanted.host, wanted.port)) is None:
            continue
        why = (
            "is already in use"
            if error.errno == errno.EADDRINUSE
            else f"cannot be listened on ({error.strerror or error})"
        )
        problems.append(
            f"port {wanted.port} ({wanted.what}, {wanted.host}:{wanted.port}) "
            f"{why}: stop what holds it, or {example}"
        )
    return problems
