"""Domain enums shared by every layer (no I/O, safe inside workflow code)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class CallState(StrEnum):
    SCHEDULED = "scheduled"  # waits to be placed (not_before, calling hours, a limit): no line
    INIT = "init"
    CONN = "conn"
    CLOSE = "close"

    @property
    def rank(self) -> int:
        return _STATE_RANK[self]


_STATE_RANK = {CallState.SCHEDULED: -1, CallState.INIT: 0, CallState.CONN: 1, CallState.CLOSE: 2}


class CloseType(IntEnum):
    NORMAL = 0
    A_UNREACHABLE = 1
    B_UNREACHABLE = 2
    A_BUSY = 3
    B_BUSY = 4
    MAX_DURATION = 5
    CHANNEL_SERVER_ERROR = 6
    CHANNEL_NETWORK_ERROR = 7
    OTHER = 255


class EventKind(StrEnum):
    A_DIALING = "a_dialing"
    A_RINGING = "a_ringing"
    A_ANSWERED = "a_answered"
    B_DIALING = "b_dialing"
    B_RINGING = "b_ringing"
    B_ANSWERED = "b_answered"
    BRIDGED = "bridged"
    HANGUP = "hangup"
    RECORDING_READY = "recording_ready"


class DisplayPolicy(StrEnum):
    PASSTHROUGH = "passthrough"
    PLATFORM = "platform"


class Direction(StrEnum):
    """Who called: CC's callback (``out``) or a customer dialling a 400 number (``in``)."""

    OUT = "out"
    IN = "in"


class InboundAction(StrEnum):
    """What CC tells a vendor to do with a customer calling a 400 number."""

    DIAL = "dial"  # bridge the customer to the bound agent, who is shown main_num
    IVR = "ivr"  # ask the customer for the extension, then ask CC again
    REJECT = "reject"  # play a prompt and hang up (unknown or busy extension)


class ChannelMode(StrEnum):
    WEBHOOK = "webhook"
    POLL = "poll"


class ResourceKind(StrEnum):
    """What the platform operator provisions to a tenant (store.models.Provision)."""

    LINE = "line"  # a channel's line id: an hw seat, an e9/jy number
    MAIN_NUM = "main_num"  # a 400 main number, for inbound calls
