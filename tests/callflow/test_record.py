"""The record state machine: unit rules, and order/duplication independence (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter

from callflow.record import (
    CallRecord,
    apply_event,
    apply_events,
    implied_times,
    past_max_duration,
)
from channels.events import CallEvent
from core.types import CallState, CloseType, DisplayPolicy, EventKind

T0 = 1_700_000_000_000


def new_record() -> CallRecord:
    return CallRecord(
        cc_call_id="c1",
        tenant="t",
        channel="e9",
        agent="+8613800000000",
        caller="+8613800000001",
        called="+8613800000002",
        display=DisplayPolicy.PASSTHROUGH,
        created=T0,
    )


def ev(kind: EventKind, at: int, **kw: object) -> CallEvent:
    return CallEvent(
        cc_call_id="c1",
        vendor_call_id="V1",
        kind=kind,
        at=at,
        ch_state=kw.pop("ch_state", kind.value),  # type: ignore[arg-type]
        dedupe_key=f"{kind.value}-{at}",
        **kw,  # type: ignore[arg-type]
    )


def normal_call(talk_ms: int = 4500) -> list[CallEvent]:
    return [
        ev(EventKind.A_DIALING, T0 + 100),
        ev(EventKind.A_RINGING, T0 + 200),
        ev(EventKind.A_ANSWERED, T0 + 1000),
        ev(EventKind.B_DIALING, T0 + 1100),
        ev(EventKind.B_RINGING, T0 + 1200),
        ev(EventKind.B_ANSWERED, T0 + 2000),
        ev(EventKind.BRIDGED, T0 + 2000),
        ev(
            EventKind.HANGUP,
            T0 + 2000 + talk_ms,
            close_type=CloseType.NORMAL,
            recording_url="http://v/rec.wav",
        ),
    ]


def test_the_vendors_call_id_keeps_its_word_call_id_in_temporals_histories() -> None:
    """In code the vendor's id is ``vendor_call_id``; a history keeps RECORD.md's ``call_id``,
    so a call begun before the rename (and a worker not yet upgraded) reads it."""
    converter = pydantic_data_converter.payload_converter
    rec = apply_events(new_record(), normal_call())
    (payload,) = converter.to_payloads([rec])
    written = json.loads(payload.data)
    assert written["call_id"] == "V1" and "vendor_call_id" not in written
    older = {**written}  # as the code before the rename wrote it: the same word
    (back,) = converter.from_payloads([payload], [CallRecord])
    assert back == rec
    assert CallRecord.model_validate(older).vendor_call_id == "V1"


def test_clean_run_fills_every_timestamp_in_order() -> None:
    rec = apply_events(new_record(), normal_call())
    assert rec.state is CallState.CLOSE
    assert rec.close_type is CloseType.NORMAL
    assert rec.vendor_call_id == "V1"
    times = [
        rec.a_call_time,
        rec.a_offhook_time,
        rec.b_call_time,
        rec.b_offhook_time,
        rec.conn_time,
        rec.close_time,
    ]
    assert None not in times
    assert times == sorted(times)  # type: ignore[type-var]
    assert rec.duration == 5  # ceil(4.5 s)
    assert rec.ch_state == "hangup"
    assert rec.ch_audio_url == "http://v/rec.wav"


def test_state_never_moves_backwards() -> None:
    rec = apply_event(new_record(), ev(EventKind.BRIDGED, T0 + 10))
    assert rec.state is CallState.CONN
    rec = apply_event(rec, ev(EventKind.A_DIALING, T0 + 1))
    assert rec.state is CallState.CONN
    rec = apply_event(rec, ev(EventKind.HANGUP, T0 + 20, close_type=CloseType.NORMAL))
    rec = apply_event(rec, ev(EventKind.B_ANSWERED, T0 + 5))
    assert rec.state is CallState.CLOSE


def test_repeated_event_changes_nothing() -> None:
    once = apply_events(new_record(), normal_call())
    twice = apply_events(once, normal_call())
    assert twice == once


def test_never_bridged_has_zero_duration() -> None:
    events = [
        ev(EventKind.A_DIALING, T0),
        ev(EventKind.HANGUP, T0 + 30_000, close_type=CloseType.A_BUSY),
    ]
    rec = apply_events(new_record(), events)
    assert rec.duration == 0
    assert rec.close_type is CloseType.A_BUSY
    assert rec.conn_time is None


def test_hangup_without_close_type_is_other() -> None:
    rec = apply_event(new_record(), ev(EventKind.HANGUP, T0))
    assert rec.close_type is CloseType.OTHER


def test_earliest_close_wins_whatever_arrives_first() -> None:
    vendor = ev(EventKind.HANGUP, T0 + 5000, close_type=CloseType.MAX_DURATION)
    watchdog = ev(EventKind.HANGUP, T0 + 9000, close_type=CloseType.OTHER)
    a = apply_events(new_record(), [watchdog, vendor])
    b = apply_events(new_record(), [vendor, watchdog])
    assert a == b
    assert a.close_type is CloseType.MAX_DURATION
    assert a.close_time == T0 + 5000


def test_at_the_same_instant_a_specific_reason_beats_a_plain_hangup() -> None:
    limit = ev(EventKind.HANGUP, T0 + 5000, close_type=CloseType.MAX_DURATION)
    hung_up = ev(EventKind.HANGUP, T0 + 5000, close_type=CloseType.NORMAL)
    other = ev(EventKind.HANGUP, T0 + 5000, close_type=CloseType.OTHER)
    for order in ([limit, hung_up, other], [other, hung_up, limit], [hung_up, other, limit]):
        assert apply_events(new_record(), order).close_type is CloseType.MAX_DURATION
    assert apply_events(new_record(), [other, hung_up]).close_type is CloseType.NORMAL


def test_input_record_is_not_mutated() -> None:
    rec = new_record()
    apply_event(rec, ev(EventKind.BRIDGED, T0))
    assert rec.state is CallState.INIT
    assert rec.conn_time is None


def test_a_vendor_reason_replaces_ccs_other_close_whatever_the_times() -> None:
    watchdog = ev(EventKind.HANGUP, T0 + 5000, close_type=CloseType.OTHER)
    vendor = ev(EventKind.HANGUP, T0 + 9000, close_type=CloseType.B_BUSY)
    for order in ([watchdog, vendor], [vendor, watchdog]):
        rec = apply_events(new_record(), order)
        assert (rec.close_type, rec.close_time) == (CloseType.B_BUSY, T0 + 9000)


def test_a_lost_bridge_is_implied_by_the_hangups_duration() -> None:
    lost_bridge = [e for e in normal_call() if e.kind is not EventKind.BRIDGED]
    lost_bridge[-1] = lost_bridge[-1].model_copy(update={"duration_s": 5})
    rec = apply_events(new_record(), lost_bridge)
    assert rec.conn_time == T0 + 2000 + 4500 - 5000
    assert rec.duration == 5
    # The bridge event, when it turns up after all, is the truth.
    rec = apply_event(rec, ev(EventKind.BRIDGED, T0 + 2000))
    assert (rec.conn_time, rec.duration) == (T0 + 2000, 5)


def test_a_duration_never_moves_a_known_bridge() -> None:
    call = normal_call()
    call[-1] = call[-1].model_copy(update={"duration_s": 9})
    assert apply_events(new_record(), call).conn_time == T0 + 2000


def test_a_call_past_its_max_duration_closes_with_5_at_the_vendors_time() -> None:
    rec = apply_events(new_record(), normal_call(talk_ms=9000))  # bridged T0+2 s, closed +9 s
    cut = past_max_duration(rec, max_duration_ms=5000)
    assert (cut.close_type, cut.close_time, cut.duration) == (CloseType.MAX_DURATION,
                                                              rec.close_time, 9)  # fmt: skip
    assert past_max_duration(rec, max_duration_ms=9000) == rec  # not past it: unchanged
    assert past_max_duration(cut, max_duration_ms=5000) == cut


def test_a_moment_stamped_at_receipt_is_kept_no_later_than_the_next_one() -> None:
    """Chaos scenario 8 (issue 19): hw stamps an event without eventGenTime at receipt, an
    upper bound of its moment; delivered late (after a lost session), A's answer came out
    later than B's dial, stamped by the gateway. The record keeps the moments in order."""
    events = [ev(EventKind.A_DIALING, T0), ev(EventKind.B_DIALING, T0 + 700),
              ev(EventKind.A_ANSWERED, T0 + 900), ev(EventKind.BRIDGED, T0 + 1500),
              ev(EventKind.B_ANSWERED, T0 + 1600),
              ev(EventKind.HANGUP, T0 + 1400, close_type=CloseType.NORMAL)]  # fmt: skip
    record = apply_events(new_record(), events)
    assert (record.a_offhook_time, record.b_call_time) == (T0 + 700, T0 + 700)
    assert (record.b_offhook_time, record.conn_time, record.close_time) == (T0 + 1400,) * 3
    assert record.duration == 0
    # CC's own 255 close bounds nothing: a vendor's later word replaces it.
    watchdog = ev(EventKind.HANGUP, T0 - 50, close_type=CloseType.OTHER)
    cut = apply_events(new_record(), [ev(EventKind.A_DIALING, T0), watchdog])
    assert cut.a_call_time == T0


def test_a_closed_record_names_the_times_its_close_implies() -> None:
    talked = apply_events(new_record(), normal_call())
    assert implied_times(talked) == (
        "a_call_time", "a_offhook_time", "b_call_time", "b_offhook_time", "conn_time")  # fmt: skip
    b_busy = apply_event(new_record(), ev(EventKind.HANGUP, T0, close_type=CloseType.B_BUSY))
    assert implied_times(b_busy) == ("a_call_time", "a_offhook_time", "b_call_time")
    a_busy = apply_event(new_record(), ev(EventKind.HANGUP, T0, close_type=CloseType.A_BUSY))
    assert implied_times(a_busy) == ("a_call_time",)


def _with_duration(events: list[CallEvent], seconds: int) -> list[CallEvent]:
    last = events[-1].model_copy(update={"duration_s": seconds})
    return [*events[:-1], last]


scenarios = st.sampled_from(
    [
        _with_duration(normal_call(), 5),
        [e for e in _with_duration(normal_call(), 5) if e.kind is not EventKind.BRIDGED],
        normal_call(),
        normal_call(talk_ms=1),
        normal_call()[:1] + [ev(EventKind.HANGUP, T0 + 900, close_type=CloseType.A_BUSY)],
        normal_call()[:5] + [ev(EventKind.HANGUP, T0 + 9000, close_type=CloseType.B_UNREACHABLE)],
        # two closes reported (vendor + CC's watchdog), a recording after close
        normal_call()
        + [
            ev(EventKind.HANGUP, T0 + 99_000, close_type=CloseType.OTHER),
            ev(EventKind.RECORDING_READY, T0 + 99_500, recording_url="http://v/late.wav"),
        ],
    ]
)


@given(data=st.data(), events=scenarios)
def test_final_record_independent_of_order_and_duplicates(
    data: st.DataObject, events: list[CallEvent]
) -> None:
    expected = apply_events(new_record(), events)
    extra = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    shuffled = data.draw(st.permutations(events + extra))
    assert apply_events(new_record(), shuffled) == expected
