"""Which simulator plays each channel's vendor: ``make run``, the in-process stack and the
tests start them from here. The production registry (``channels/registry.py``) never names
a simulator; a channel registered there names its simulator module here."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from channels.registry import Settings

SIMULATORS: dict[str, str] = {
    "e9": "simulators.e9",
    "hw": "simulators.hw",
    "jy": "simulators.jy",
}


def simulator_app(channel: str, settings: Settings) -> FastAPI:
    """The simulator of ``channel``'s vendor, as an app to serve in this process."""
    app: FastAPI = importlib.import_module(SIMULATORS[channel]).create_app(settings)
    return app
