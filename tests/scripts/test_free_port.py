"""scripts.inprocess.free_port: a port for a server started next, chosen below the kernel's
ephemeral range, where no outgoing connection can take it before the server binds it (a
suite beside another once failed "address already in use" on a port bound to 0)."""

from __future__ import annotations

import socket

import pytest

from scripts import inprocess
from scripts.inprocess import free_port


def test_ports_come_from_below_the_ephemeral_range_and_are_free() -> None:
    low = inprocess._ephemeral_range()[0]
    ports = {free_port() for _ in range(50)}
    assert all(10_000 <= port < low for port in ports), ports
    for port in sorted(ports)[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        taken, other = held.getsockname()[1], free_port()

        class Picks:
            def __init__(self) -> None:
                self.next = iter([taken, other])

            def randrange(self, _low: int, _high: int) -> int:
                return next(self.next)

        monkeypatch.setattr(inprocess, "_PORTS", Picks())
        assert free_port() == other
