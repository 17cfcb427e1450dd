"""Issue 9, ``GET /v1/calls/export.csv``: no cell a spreadsheet would run as a formula
(OWASP CSV injection: a leading ``'``), and ``limit`` is honoured."""

from __future__ import annotations

import csv
import io

from api.schemas import EXPORT_COLUMNS, csv_cell
from tests.api.conftest import UNIT_TENANT, Harness
from tests.api.seed import bulk_insert, call_row

CREATED = 1_800_000_000_000
FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1"]  # fmt: skip


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_formula_cells_are_quoted_and_numbers_kept(harness: Harness) -> None:
    bulk_insert(harness.state.engine, [
        call_row(UNIT_TENANT, CREATED + i, biz_data=value, ch_state="=cmd", ivr_text="@x",
                 user="-u", agent="+a1")
        for i, value in enumerate(FORMULAS)
    ])  # fmt: skip
    response = await harness.api.get("/v1/calls/export.csv")
    assert response.status_code == 200
    rows = read(response.text)
    assert sorted(row["biz_data"] for row in rows) == sorted("'" + f for f in FORMULAS)
    for row in rows:
        assert (row["ch_state"], row["ivr_text"], row["user"], row["agent"]) == (
            "'=cmd", "'@x", "'-u", "'+a1")  # fmt: skip
        # E.164 numbers (a "+" and digits) cannot call anything: kept as they are.
        assert (row["caller"], row["called"]) == ("+8613800000001", "+8613900000002")
        assert row["duration"] == "3" and row["close_type"] == "0"
        assert not any(cell.startswith(("=", "@", "\t", "\r")) for cell in row.values())


def test_csv_cell() -> None:
    assert csv_cell(None) == ""
    assert csv_cell(-5) == -5  # numbers are numbers
    assert csv_cell("plain") == "plain"
    assert csv_cell("+8613900000002") == "+8613900000002"
    assert csv_cell("+86139****0002") == "+86139****0002"  # masked view
    assert csv_cell("+1+1") == "'+1+1"
    assert csv_cell("+86139 HYPERLINK") == "'+86139 HYPERLINK"
    assert csv_cell("＝1") == "＝1"


async def test_limit_is_honoured(harness: Harness) -> None:
    empty = await harness.api.get("/v1/calls/export.csv", params={"limit": 3})
    assert (empty.status_code, empty.text) == (200, ",".join(EXPORT_COLUMNS) + "\r\n")
    bulk_insert(harness.state.engine, [call_row(UNIT_TENANT, CREATED + i) for i in range(1203)])
    for limit, expected in [(1, 1), (7, 7), (500, 500), (501, 501), (1203, 1203), (5000, 1203)]:
        response = await harness.api.get("/v1/calls/export.csv", params={"limit": limit})
        rows = read(response.text)
        assert len(rows) == expected, limit
        assert [int(r["created"]) for r in rows] == [CREATED + 1202 - i for i in range(expected)]
    everything = await harness.api.get("/v1/calls/export.csv")
    assert len(read(everything.text)) == 1203
    assert list(read(everything.text)[0]) == list(EXPORT_COLUMNS)
    for bad in (0, -1, "x"):
        response = await harness.api.get("/v1/calls/export.csv", params={"limit": bad})
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")
