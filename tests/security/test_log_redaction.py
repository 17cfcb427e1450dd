"""Row 9 of the security issue: a phone number in any format a person could dial is masked in
every log line, through CC's own logging set-up (``configure_logging``), while the ids and
figures CC logs (call ids, epoch ms, UUIDs, addresses) stay readable."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from core.logs import configure_logging, mask_digits

# (as written, its digits, what the log shows instead)
FORMATS = [
    ("010 6552 9988", "01065529988", "010 **** 9988"),  # Beijing landline, national format
    ("(0755) 8888-1234", "075588881234", "(0755) ****-1234"),  # Shenzhen, area code in brackets
    ("021-62345678", "02162345678", "021-****5678"),
    ("+44 20 7946 0958", "442079460958", "+44 20 **** 0958"),  # London
    ("+1 (415) 555-2671", "14155552671", "+1 (41*) ***-2671"),  # San Francisco
    ("+86 139 0000 0055", "8613900000055", "+86 139 **** 0055"),
    ("0086 10 6552 9988", "00861065529988", "0086 10 **** 9988"),
    ("%2B44%2020%207946%200958", "442079460958", "%2B44%2020%20****%200958"),  # query string
]
# Already masked before: kept so.
E164_AND_MOBILES = [
    ("+8613900000055", "8613900000055", "+86139****0055"),
    ("13900000055", "13900000055", "139****0055"),
    ("008613900000055", "008613900000055", "0086139****0055"),
]
# Logged beside numbers, never numbers: a call id (hex), epoch ms and s, a UUID, a hex guid,
# an address with its port, a pid, a byte count.
IDS = [
    "0193a1b2c3d4e5f6a7b8",
    "1733459200000",
    "1733459200",
    "550e8400-e29b-41d4-a716-446655440000",
    "3f2504e04f8911d39a0c0305e82c3301",
    "10.20.30.40:50000",
    "pid=123456",
    "bytes=209715200",
]


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[logging.Logger]:
    configure_logging("INFO")
    capsys.readouterr()
    yield logging.getLogger("cc.test.redaction")


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    """What CC's handler wrote to stderr since the last look."""
    return capsys.readouterr().err


@pytest.mark.parametrize(("written", "number", "masked"), FORMATS)
def test_a_number_in_any_format_is_masked_in_the_message_and_its_args(
    log_lines: logging.Logger,
    capsys: pytest.CaptureFixture[str],
    written: str,
    number: str,
    masked: str,
) -> None:
    log_lines.info(f"customer said call me on {written} tonight")
    log_lines.warning("dialling %s failed", written)
    try:
        raise ValueError(f"vendor refused called={written}")
    except ValueError:
        log_lines.exception("place failed")
    out = logged(capsys)
    assert number not in digits(out.replace(masked, ""))
    assert written not in out
    assert out.count(masked) >= 3, out  # the message, the argument and the traceback


def test_one_line_with_every_kind_of_number_and_id(
    log_lines: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    every = FORMATS + E164_AND_MOBILES
    log_lines.info("numbers: %s; ids: %s", " | ".join(w for w, _, _ in every), " ".join(IDS))
    out = logged(capsys)
    assert " | ".join(m for _, _, m in every) in out  # each masked, the layout kept
    assert " ".join(IDS) in out  # every id as it was


def test_national_numbers_are_read_in_the_default_region(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        configure_logging("INFO", region="GB")
        capsys.readouterr()
        logging.getLogger("cc.test.redaction").info("ring 020 7946 0958 back")
        assert "ring 020 **** 0958 back" in logged(capsys)
    finally:
        configure_logging("INFO")


def test_the_masked_form_is_the_views_one() -> None:
    assert mask_digits("+8613800000002") == "+86138****0002"  # as the API shows it
    assert mask_digits("(0755) 8888-1234") == "(0755) ****-1234"  # digits, not characters
    assert mask_digits("123-4567") == "****"
