"""The ``ApplicationError`` types activities and workflows raise, kept as strings across the
boundary: workflows read them, never the activity modules that raise them."""

from __future__ import annotations

# Vendor activities. A rejection is about the call (bad number); server and network errors
# mean the vendor did not take it; an unknown outcome may have placed it (never placed again).
REJECTED = "VendorRejected"
SERVER_ERROR = "VendorServerError"
# A 429: back-pressure (never a health failure); details[0]: seconds the vendor asked to wait.
RATE_LIMITED = "VendorRateLimited"
NETWORK_ERROR = "VendorNetworkError"
OUTCOME_UNKNOWN = "VendorOutcomeUnknown"
# CC's own store was down before the request went out (hw: the seat's session could not be
# read): nothing was sent, and it is no fault of the vendor's: tried again, on the same line.
STORE_UNAVAILABLE = "StoreUnavailable"

# The recording copy. These three no retry can mend (the RetryPolicy's non-retryable list).
RECORDING_UNAVAILABLE = "RecordingUnavailable"  # expired, forbidden, gone, unsupported
UNKNOWN_CHANNEL = "UnknownChannel"
RECORDING_DELETED = "RecordingDeleted"  # deleted (retention, an admin) while it was copied
NON_RETRYABLE_RECORDING_ERRORS = (RECORDING_UNAVAILABLE, UNKNOWN_CHANNEL, RECORDING_DELETED)
# Retried until the recording deadline.
RECORDING_NOT_READY = "RecordingNotReady"  # the vendor has not published it yet
RECORDING_VENDOR_ERROR = "RecordingVendorError"  # 5xx, 429, network
RECORDING_INCOMPLETE = "RecordingIncomplete"  # fewer bytes than the vendor announced
RECORDING_STORE_FAILED = "RecordingStoreFailed"  # the object store refused or failed
RECORDING_MISMATCH = "RecordingMismatch"  # what was stored is not what was downloaded

# CallWorkflow's hang-up update, refused by its validator.
ALREADY_CLOSED = "AlreadyClosed"
