"""The UI's view of a call (callflow.summary): masked numbers, ISO times, close types named."""

from __future__ import annotations

from callflow.record import CallRecord
from callflow.summary import (
    close_name,
    current_details,
    iso,
    save_summary,
    start_details,
    start_summary,
)
from core.types import CallState, CloseType, Direction, DisplayPolicy

CALLER, CALLED = "+8613800000001", "+8613900000002"


def record(**changes: object) -> CallRecord:
    base = CallRecord(cc_call_id="c1", tenant="t1", channel="jy", agent="+8610880000001",
                      caller=CALLER, called=CALLED, display=DisplayPolicy.PLATFORM,
                      created=1796000000123)  # fmt: skip
    return base.model_copy(update=changes)


def test_times_read_as_the_ui_writes_them() -> None:
    assert iso(1796000000123) == "2026-11-30 00:53:20Z"
    assert iso(None) == "-"


def test_close_types_by_code_and_name() -> None:
    assert close_name(CloseType.MAX_DURATION) == "5 max duration"
    assert close_name(None) == "-"


def test_the_summary_names_the_kind_and_masks_both_legs() -> None:
    assert start_summary(record()) == "callback jy +86138****0001 → +86139****0002"
    inbound = record(direction=Direction.IN.value)
    assert start_summary(inbound).startswith("inbound jy ")


def test_details_never_hold_a_full_number() -> None:
    closed = record(state=CallState.CLOSE, close_type=CloseType.B_BUSY, close_time=1796000060000,
                    vendor_call_id="v-9", duration=0)  # fmt: skip
    for text in (start_details(closed, 600), current_details(closed)):
        assert CALLER not in text and CALLED not in text
    now = current_details(closed)
    assert "| state | close |" in now and "| close type | 4 b busy |" in now
    assert "| closed | 2026-11-30 00:54:20Z |" in now and "| vendor call id | v-9 |" in now
    assert "| max duration | 600 s |" in start_details(closed, 600)


def test_each_save_says_the_state_it_writes() -> None:
    assert save_summary(record(state=CallState.CONN), line_freed=False) == "save conn"
    closed = record(state=CallState.CLOSE, close_type=CloseType.NORMAL)
    assert save_summary(closed, line_freed=True) == "save close (0 normal), line freed"
