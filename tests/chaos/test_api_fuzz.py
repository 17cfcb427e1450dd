"""Scenario 7: schemathesis over the API's /openapi.json, every route, with a valid key.

Valid (positive) and invalid (negative) requests; no answer may be a 5xx. Examples per
route are bounded so a run ends in minutes (the short subset sends a few per route).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import API_KEY, ROWS, Row, running

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


def fuzz(schema_url: str, base_url: str, examples: int) -> tuple[Counter[int], list[str], int]:
    """Every operation, ``examples`` generated cases each; returns (statuses, 5xx, ops)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    schema = schemathesis.openapi.from_url(schema_url)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # valid requests, then invalid ones (wrong types, missing fields): neither may 5xx
        for mode in schemathesis.GenerationMode:

            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=15)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}"
                    )

            # Unsatisfiable: nothing invalid to send (an operation without parameters)
            with contextlib.suppress(Unsatisfiable):
                run()
    return statuses, server_errors, operations


async def api_fuzz(chaos_dir: Path, name: str, examples: int) -> None:
    started = time.monotonic()
    async with running(chaos_dir, lines_per_channel=4) as stack:
        statuses, server_errors, operations = await asyncio.to_thread(
            fuzz, f"{stack.api_url}/openapi.json", stack.api_url, examples
        )
        stack.check_alive()
    row = Row(name, calls=False, five_xx=len(server_errors))
    row.notes = {"operations": operations, "requests": sum(statuses.values()),
                 "statuses": dict(sorted(statuses.items()))}  # fmt: skip
    if server_errors:
        row.notes["5xx_sample"] = "; ".join(sorted(set(server_errors))[:5])
    row.seconds = time.monotonic() - started
    ROWS.append(row)
    assert not row.problems(), row.problems()


async def test_api_fuzz_short(chaos_dir: Path) -> None:
    await api_fuzz(chaos_dir, "7 schemathesis, 5+5 examples per route", examples=5)


@pytest.mark.chaos
async def test_api_fuzz(chaos_dir: Path) -> None:
    await api_fuzz(chaos_dir, "7 schemathesis, 100+100 examples per route", examples=100)
