"""The errors a vendor adapter raises: each says what CC may do next (try again, fail over, wait
for the vendor, never dial twice). ``channels/http.py`` turns vendor answers into them."""

from __future__ import annotations


class ChannelError(Exception):
    """Base of every vendor error an adapter raises."""

    retryable: bool = False


class VendorRejected(ChannelError):
    """The vendor understood the request and refused it (bad number, auth, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class VendorServerError(ChannelError):
    """The vendor answered 5xx or an unreadable body: close_type 6 if it persists."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # the vendor said when to come back (429)


class VendorRateLimited(VendorServerError):
    """The vendor answered 429 (too many requests): back-pressure, not the vendor failing.
    Nothing was placed; the same vendor may be asked again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s)


class PollInFlight(VendorServerError):
    """The vendor refused a poll because another poll of the seat is in flight (hw 000-007):
    CC's own doing (a poller that outlived its turn), not the vendor failing, so it never
    counts against the channel's health."""


class VendorNetworkError(ChannelError):
    """No answer: connection refused, reset or timed out: close_type 7 if it persists."""

    retryable = True


class VendorOutcomeUnknown(VendorNetworkError):
    """A place request was sent but no answer came (timed out or cut after sending): the vendor
    may have placed the call. It is never placed again elsewhere (VENDORS.md)."""

    retryable = False


class SeatSignedOut(ChannelError):
    """The seat's session is gone (hw ``100-006``, ``105-005/006/007`` after a gateway
    failover): the seat must sign in again; a call it had goes on at the vendor."""

    retryable = True  # once the seat is signed in again


class SeatRefused(VendorRejected):
    """The seat itself cannot be used, for what only its tenant can mend: a wrong or expired
    password, a locked account, no rights (hw ``100-004``, ...), taken elsewhere. Its line
    goes out of service; it is no failure of the vendor's and never counts against the
    channel's health."""


class SeatTaken(SeatRefused):
    """The seat is signed in elsewhere (hw ``100-015``): only that line is out of service."""


class InvalidSignature(ChannelError):
    """A webhook whose signature does not verify: answered 401, never applied."""


class MalformedEvent(ChannelError):
    """A webhook body the adapter cannot read: answered 400."""


class RecordingNotReady(ChannelError):
    """The vendor has no file yet (404): vendors publish recordings late, so ask again later."""

    retryable = True


class RecordingUnavailable(ChannelError):
    """The link is expired, forbidden or gone: asking again will not help."""
