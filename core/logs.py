"""Logging set-up: one line per event, key=value fields, and never a phone number in full.

Callers mask numbers they log on purpose; ``install_redaction`` is the safety net for the
ones that slip in by accident (an exception text with SQL parameters, a query string in an
access log line). It wraps the process's log record factory, so it covers every logger and
handler, including uvicorn's, whenever they were configured.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any

# E.164 (also %2B-encoded, as in query strings and form bodies), and CN mobile numbers of
# 11 digits, bare or behind 86 / 0086; a 13-digit epoch-ms timestamp is not matched.
_PHONE = re.compile(r"(?:\+|%2[bB])\d{6,15}(?!\d)|(?<![\d.])(?:0086|86)?1[3-9]\d{9}(?![\d.])")


def mask_digits(number: str) -> str:
    """``+8613800000002`` → ``+86138****0002``: the one masked form, in logs and views."""
    if len(number) < 8:
        return "****"
    return f"{number[:-8]}****{number[-4:]}"


def redact(text: str) -> str:
    """``text`` with every phone-number-looking run masked."""
    return _PHONE.sub(lambda m: mask_digits(m.group(0)), text)


def _redact_arg(value: Any) -> Any:
    # Numbers stay numbers (``%d``); anything else (an exception, a dict) is printed as text
    # by ``%s`` anyway, so it is turned into text here and redacted.
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else str(value))


def _redacting_factory(make: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = make(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            # Shape kept: formatters such as uvicorn's access formatter unpack the args.
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters reuse exc_text when set, so the traceback is redacted once, here.
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        return record

    factory.redacts_phone_numbers = True  # type: ignore[attr-defined]
    return factory


def install_redaction() -> None:
    """Mask phone numbers in every log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacts_phone_numbers", False):
        logging.setLogRecordFactory(_redacting_factory(current))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (as logging's last resort does), so
    a process that swaps stderr (a test runner's capture) never writes to a closed stream."""

    cc_handler = True  # marks the one handler configure_logging installs

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Set up the process's logging, the same for the API and the worker: one line per
    record, ``<time> <LEVEL> <logger> <message>``, on stderr, at ``level`` (a name, any case),
    phone numbers redacted. Idempotent: a second call adjusts the level and adds nothing.

    Only the root logger is touched: uvicorn's own loggers keep their handlers (and do not
    propagate), so no line is printed twice.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "cc_handler", False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    install_redaction()
