"""What a tenant may name of the vendors' resources: channels, line ids, and the resources
the platform operator provisions (store.provisions)."""

from __future__ import annotations

import re

from api.deps import AppState
from api.errors import Problem, invalid_field


def known_channel(state: AppState, channel: str, field: str = "channel") -> None:
    if channel not in state.channels:
        allowed = f"one of {sorted(state.channels)}"
        raise invalid_field(field, allowed, f"unknown channel {channel}")


def valid_line_id(state: AppState, channel: str, agent: str, field: str = "agent") -> None:
    """A line id as the channel's vendor writes them (``Channel.line_id_pattern``), else 422:
    an id with a ``/`` or ``..`` never reaches a vendor's path."""
    known_channel(state, channel)
    pattern = state.channels[channel].line_id_pattern
    if re.fullmatch(pattern, agent) is None:
        raise invalid_field(field, f"a {channel} line id: {pattern}", f"not a {channel} line id")


def not_provisioned(what: str) -> Problem:
    """The same 403 whether another tenant holds the resource or nobody does."""
    detail = f"{what} is not provisioned to this tenant: the platform operator provisions it"
    return Problem(403, "not_provisioned", detail)
