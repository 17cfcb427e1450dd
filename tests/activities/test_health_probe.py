"""activities/health.py ``probe_channels`` through ``ActivityEnvironment``: a vendor that
answers 429 is pushing back, not failing (issue 24); one answering 5xx is failing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from temporalio.testing import ActivityEnvironment

from activities.health import HealthActivities
from activities.seat_faults import vendor_failing
from channels.errors import VendorRateLimited, VendorServerError
from contracts.health import ProbeInput
from tests.notify.support import sqlite_store


class Probed:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    async def probe(self) -> None:
        if self.error is not None:
            raise self.error


async def test_a_429_on_a_probe_is_no_failure_and_a_5xx_is(tmp_path: Path) -> None:
    channels: dict[str, Any] = {
        "jy": Probed(VendorRateLimited("jy probe: HTTP 429", retry_after_s=3)),
        "e9": Probed(VendorServerError("e9 probe: HTTP 503")),
        "hw": Probed(None),
    }
    activities = HealthActivities(cast(Any, channels), sqlite_store(tmp_path))
    seen = await ActivityEnvironment().run(
        activities.probe_channels, ProbeInput(channels=["jy", "e9", "hw"], webhook_silence_s=60)
    )
    assert {o.channel: o.ok for o in seen} == {"jy": True, "e9": False, "hw": True}


def test_a_429_on_a_seat_is_not_the_vendor_failing_and_a_5xx_is() -> None:
    assert not vendor_failing(VendorRateLimited("hw agentevent: HTTP 429", retry_after_s=1))
    assert vendor_failing(VendorServerError("hw agentevent: HTTP 503"))
