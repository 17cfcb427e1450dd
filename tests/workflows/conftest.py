"""The SeatWorkflow tests' fixtures (tests/workflows/seat_support.py)."""

from tests.workflows.seat_support import seat, seat_env  # noqa: F401  (fixtures)
