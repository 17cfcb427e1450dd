"""Logging set-up: one line per event, key=value fields, and never a phone number in full.

Callers mask numbers they log on purpose; ``install_redaction`` is the safety net for the
ones that slip in by accident (an exception text with SQL parameters, a query string in an
access log line). It wraps the process's log record factory, so it covers every logger and
handler, including uvicorn's, whenever they were configured.

A number is found in any format ``phonenumbers`` can dial: E.164, national format with
separators (``010 6552 9988``, ``(0755) 8888-1234``), foreign (``+44 20 7946 0958``,
``+1 (415) 555-2671``), a Chinese mobile bare or behind ``86``/``0086``, ``%2B``-encoded in a
query string. Its matcher runs at ``Leniency.VALID`` (a number valid in its country, read in
the default region when it has no country code), which leaves ids alone: epoch timestamps
(s and ms), ports, pids, byte counts, IP addresses, UUIDs and hex ids (digits next to a letter
are never a number). A ``+`` followed by 6 to 15 digits is masked even when not valid.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.shortnumberinfo import SUPPORTED_SHORT_REGIONS

# International numbers, masked whether valid or not (the matcher keeps only valid ones).
_E164 = re.compile(r"\+\d{6,15}(?!\d)")
# Where the matcher looks (about 50 µs a candidate): 6 or more digits with at most 4 other
# characters between two of them, none a letter, and no letter or digit right before or after
# (the matcher refuses a number glued to a letter too). Most lines, and hex ids, have none.
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d(?:[^0-9A-Za-z]{0,4}\d){5,}(?![0-9A-Za-z])")
_CONTEXT = 4  # characters the matcher sees either side of a candidate (a leading "+" or "(")
# An IPv4 address, with or without a port (an access line's client): never read as a number.
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?")
# URL escapes of a number's characters, as wide as what replaces them, so that offsets found
# in the decoded view are the offsets in the text.
_URL_ESCAPES = (("%2B", "  +"), ("%2b", "  +"), ("%20", "   "))
_CACHED_UP_TO = 512  # characters: log messages (format strings) repeat; long texts do not

_region = "CN"


def mask_digits(number: str) -> str:
    """``+8613800000002`` → ``+86138****0002``: the one masked form, in logs and views. Of the
    digits, the four before the last four become ``*`` (a formatted number keeps its layout:
    ``(0755) ****-1234``); fewer than 8 digits are masked whole."""
    return _masked(number, number)


def _masked(text: str, view: str) -> str:
    # ``view`` is ``text`` with URL escapes blanked: their digits (``%20``) are not the number's.
    positions = [i for i, ch in enumerate(view) if ch.isdigit()]
    if len(positions) < 8:
        return "****"
    hidden = set(positions[-8:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def redact(text: str) -> str:
    """``text`` with every phone number in it masked."""
    return _redact_cached(text) if len(text) <= _CACHED_UP_TO else _redact(text)


def _redact(text: str) -> str:
    view = text
    for escaped, same_width in _URL_ESCAPES:
        view = view.replace(escaped, same_width)
    spans = [m.span() for m in _E164.finditer(view)]
    rest = view  # what the matcher still has to read: the international ones are found
    for start, end in spans:
        rest = rest[:start] + " " * (end - start) + rest[end:]
    for candidate in _CANDIDATE.finditer(rest):
        if _IPV4.fullmatch(candidate.group()):
            continue
        low = max(candidate.start() - _CONTEXT, 0)
        window = rest[low : candidate.end() + _CONTEXT]
        for match in phonenumbers.PhoneNumberMatcher(window, _region, phonenumbers.Leniency.VALID):
            spans.append((low + match.start, low + match.end))
    if not spans:
        return text
    out, done = [], 0
    for start, end in sorted(spans):
        start = max(start, done)  # overlapping finds are masked once
        if end <= start:
            continue
        out += [text[done:start], _masked(text[start:end], view[start:end])]
        done = end
    return "".join(out) + text[done:]


_redact_cached = lru_cache(maxsize=4096)(_redact)


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


def install_redaction(region: str = "CN") -> None:
    """Mask phone numbers in every log record from now on (idempotent); a number without a
    country code is read as one of ``region`` (``CC_DEFAULT_REGION``)."""
    global _region
    load_number_metadata()
    if region.upper() != _region:
        _region = region.upper()
        _redact_cached.cache_clear()
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacts_phone_numbers", False):
        logging.setLogRecordFactory(_redacting_factory(current))


def load_number_metadata() -> None:
    """Every country's numbering metadata, loaded now (~75 ms, ~1.4 MB) rather than on first
    use. ``phonenumbers`` loads a region lazily under a process-wide lock that it does not
    release if the load fails; a first load inside Temporal's workflow sandbox (a workflow's
    log line with a number in it) fails there, and every later use of ``phonenumbers`` in the
    process, the event loop's included, then waits for ever. Loaded up front, no log line
    ever loads anything."""
    PhoneMetadata.load_all()
    for region in SUPPORTED_SHORT_REGIONS:
        PhoneMetadata.short_metadata_for_region(region)


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


def configure_logging(level: str = "INFO", region: str = "CN") -> None:
    """Set up the process's logging, the same for the API and the worker: one line per
    record, ``<time> <LEVEL> <logger> <message>``, on stderr, at ``level`` (a name, any case),
    phone numbers redacted (national ones read as ``region``'s). Idempotent: a second call
    adjusts the level and region and adds nothing.

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
    install_redaction(region)
