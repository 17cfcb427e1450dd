"""How many polls an idle, signed-in hw seat costs a minute (issue 11).

Serves the hw simulator (a CC-Gateway) on a free port, signs one seat in through the
adapter and long-polls it the way SeatWorkflow's activity does, with no call, for
``--seconds``; prints the polls per minute the gateway answered.

    .venv/bin/python -m bench.hw_idle_polls [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from channels.events import SeatContext, SeatLogin
from channels.hw import build
from channels.protocols import MemorySessions
from channels.registry import Settings
from scripts.inprocess import ServerThread, free_port
from simulators.registry import simulator_app


async def main(seconds: float) -> None:
    port = free_port()
    settings = Settings(hw_base_url=f"http://127.0.0.1:{port}")
    server = ServerThread(simulator_app("hw", settings), port).start()
    channel = build(settings, MemorySessions())
    login = SeatLogin(seat="10001", password="", phonenum="+8613800000001")
    await channel.sign_in(login)
    context, polls, started = SeatContext(), 0, time.monotonic()
    while time.monotonic() - started < seconds:
        context = (await channel.poll_seat(login, context)).context
        polls += 1
    elapsed = time.monotonic() - started
    await channel.sign_out(login.seat)
    await channel.aclose()
    server.stop()
    print(f"idle hw seat: {polls} polls in {elapsed:.0f} s = {polls * 60 / elapsed:.1f} / min")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args().seconds))
