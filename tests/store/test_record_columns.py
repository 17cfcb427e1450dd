"""The unified record is declared once (callflow.record.CallRecordBase): the table, the
workflow's live record, the call view and the CSV export all follow from it."""

from __future__ import annotations

from sqlalchemy import inspect

from api.schemas import EXPORT_COLUMNS, public_columns
from callflow.record import CallRecord, CallRecordBase
from core.types import CallState, CloseType, DisplayPolicy
from store import calls
from store.models import CallRecordRow
from store.views import CallPublic

RECORD = set(CallRecordBase.model_fields)
# The record's words as RECORD.md, the table, the API and Temporal's histories spell them: the
# vendor's id is ``vendor_call_id`` in code and ``call_id`` everywhere else.
WORDS = {field.serialization_alias or name for name, field in CallRecordBase.model_fields.items()}


def a_row() -> CallRecordRow:
    return CallRecordRow(
        cc_call_id="c1", tenant="t1", agent="+861080000000", caller="+8613800000001",
        called="+8613800000002", channel="e9", display="platform", state="close",
        close_type="4", conn_time=1_000, close_time=3_500, duration=3, created=1, updated=2,
        attempts='[{"channel": "e9", "agent": "a", "at": 1, "outcome": "placed"}]',
    )  # fmt: skip


def test_every_record_column_is_in_the_table_the_live_record_and_the_view() -> None:
    assert {attribute.key for attribute in inspect(CallRecordRow).column_attrs} >= RECORD
    assert {column.name for column in inspect(CallRecordRow).columns} >= WORDS
    assert inspect(CallRecordRow).columns["vendor_call_id"].name == "call_id"
    assert set(CallRecord.model_fields) >= RECORD
    shown = set(public_columns(CallPublic))
    # CC's call id is the view's ``id``; how a bridge time was learnt is CC's own business.
    assert WORDS - {"cc_call_id", "conn_time_implied"} <= shown
    assert {"id", "record", "attempts", "updated", "user", "max_duration"} <= shown
    assert "cc_call_id" not in shown and "conn_time_implied" not in shown


def test_the_export_shows_view_columns_only_and_every_record_column_but_cc_notes() -> None:
    assert len(set(EXPORT_COLUMNS)) == len(EXPORT_COLUMNS)
    assert set(EXPORT_COLUMNS) <= set(public_columns(CallPublic))
    assert WORDS - {"cc_call_id", "conn_time_implied", "recording_error"} <= set(EXPORT_COLUMNS)


def test_a_row_and_its_live_record_convert_both_ways() -> None:
    row = a_row()
    record = calls.record_of(row)
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.B_BUSY)
    assert record.display is DisplayPolicy.PLATFORM
    # Every column holds the same value, the enums as the row stores them (close_type: text).
    as_stored = record.model_dump(mode="json", include=RECORD) | {"close_type": "4"}
    assert as_stored == row.model_dump(include=RECORD)
    view = CallPublic.from_row(row).model_dump(mode="json", by_alias=True)
    assert (view["id"], view["close_type"], view["record"]) == ("c1", 4, True)
    assert view["attempts"][0]["outcome"] == "placed" and "cc_call_id" not in view
