"""The notification sender against a real receiver (scripts/receiver.py, which verifies every
signature with the standardwebhooks library): in order per call, nothing lost while the
receiver is down, retried after a 500, a clear error for a bad TLS certificate, masked views
for a masked subscription, given up after the retry period."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from activities.notify import NotificationSender
from contracts.notify import NotifyConfig
from store import notifications
from store.models import NotificationDelivery
from tests.notify.support import (
    CUSTOMER,
    EXPECTED,
    FAST,
    Receiver,
    deliveries,
    run_call,
    self_signed,
    settings,
    slow_init,
    sqlite_store,
    subscribe,
    view,
)
from tests.support import free_port, wait_for

CALLS = ["c1", "c2", "c3"]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return sqlite_store(tmp_path)


@asynccontextmanager
async def sending(engine: Engine, config: NotifyConfig = FAST) -> AsyncIterator[None]:
    task = asyncio.create_task(NotificationSender(engine, settings(), view, config).run(120))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def until(probe: Callable[[], object], what: str, within: float = 30) -> Awaitable[object]:
    async def check() -> object:
        return probe()

    return wait_for(check, within, what)


def all_delivered(engine: Engine, count: int) -> Callable[[], bool]:
    def probe() -> bool:
        rows = deliveries(engine)
        return len(rows) == count and all(d.status == "delivered" for d in rows)

    return probe


def first_attempted(engine: Engine) -> Callable[[], bool]:
    return lambda: deliveries(engine)[0].attempts >= 1


async def send_calls(
    engine: Engine, receiver: Receiver, probe: Callable[[], object], what: str,
    calls: Sequence[str] = ("c1",), masked: bool = False, config: NotifyConfig = FAST,
) -> None:  # fmt: skip
    """Subscribe ``receiver``, run ``calls`` through the store and send until ``probe`` holds;
    the receiver is stopped however that ends."""
    try:
        subscribe(engine, receiver.url, masked=masked)
        for call in calls:
            run_call(engine, call)
        async with sending(engine, config):
            await until(probe, what)
    finally:
        receiver.stop()


async def test_every_event_arrives_signed_and_in_order_per_call(engine: Engine) -> None:
    receiver = Receiver(free_port(), answer=slow_init(0.3)).start()
    await send_calls(engine, receiver, all_delivered(engine, 15), "every event delivered", CALLS)
    for call in CALLS:  # the late-answered init still came before each call's conn
        assert receiver.of_call(call) == EXPECTED
    got = receiver.events[0]
    assert got.headers["webhook-id"].startswith("msg_")
    assert set(got.event) == {"type", "call", "at"}
    assert got.event["call"]["called"] == CUSTOMER  # a full subscription: full numbers
    ids = {d.webhook_id for d in deliveries(engine)}
    assert {e.headers["webhook-id"] for e in receiver.events} == ids


async def test_a_receiver_down_then_back_loses_nothing_and_keeps_the_order(
    engine: Engine,
) -> None:
    port = free_port()  # nobody listens yet: connection refused
    subscribe(engine, f"http://127.0.0.1:{port}/hooks/cc")
    for call in CALLS:
        run_call(engine, call)
    async with sending(engine):

        def refused_twice() -> bool:
            heads = [d for d in deliveries(engine) if d.attempts]
            return len(heads) == len(CALLS) and all(d.attempts >= 2 for d in heads)

        await until(refused_twice, "every call's head refused twice")
        head = next(d for d in deliveries(engine) if d.attempts)
        assert head.status == "pending" and head.last_status is None
        assert head.last_error == "connection failed: connection refused"
        # Only heads were tried: no call's later event went ahead of its first.
        heads = {h.id for h in _heads(engine)}
        assert all(d.attempts == 0 for d in deliveries(engine) if d.id not in heads)
        receiver = Receiver(port).start()
        try:
            await until(all_delivered(engine, 15), "every event delivered once back")
        finally:
            receiver.stop()
    for call in CALLS:
        assert receiver.of_call(call) == EXPECTED


def _heads(engine: Engine) -> list[NotificationDelivery]:
    first: dict[str, NotificationDelivery] = {}
    for d in deliveries(engine):
        first.setdefault(d.cc_call_id, d)
    return list(first.values())


async def test_a_500_is_tried_again_with_the_same_webhook_id(engine: Engine) -> None:
    answers = iter([500])
    seen: list[str] = []

    def answer(got: object) -> int | None:
        seen.append(getattr(got, "headers")["webhook-id"])  # noqa: B009
        return next(answers, None)

    receiver = Receiver(free_port(), answer=answer).start()
    await send_calls(engine, receiver, all_delivered(engine, 5), "every event delivered")
    first = deliveries(engine, "c1")[0]
    assert (first.attempts, first.last_status, first.last_error) == (2, 204, None)
    assert seen[:2] == [first.webhook_id, first.webhook_id]
    assert receiver.of_call("c1") == EXPECTED


async def test_a_wrong_signature_is_refused_by_the_receiver(engine: Engine) -> None:
    receiver = Receiver(free_port(), secret=notifications.new_secret()).start()  # not CC's
    await send_calls(engine, receiver, first_attempted(engine), "a first attempt")
    first = deliveries(engine)[0]
    assert (first.status, first.last_status, first.last_error) == ("pending", 400, "HTTP 400")
    assert receiver.events == []


async def test_a_bad_tls_certificate_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    receiver = Receiver(free_port(), tls=self_signed(tmp_path)).start()
    await send_calls(engine, receiver, first_attempted(engine), "a first attempt")
    error = deliveries(engine)[0].last_error or ""
    assert error.startswith("TLS certificate error"), error
    assert "self-signed" in error or "self signed" in error
    assert receiver.events == []


async def test_a_masked_subscription_gets_masked_views(engine: Engine) -> None:
    receiver = Receiver(free_port()).start()
    await send_calls(engine, receiver, all_delivered(engine, 5), "every event delivered",
                     masked=True)  # fmt: skip
    called = {e.event["call"]["called"] for e in receiver.events}
    assert called == {"+86139****0002"}
    assert all(CUSTOMER not in str(e.event) for e in receiver.events)


async def test_a_delivery_is_given_up_and_the_calls_next_event_goes_on(engine: Engine) -> None:
    receiver = Receiver(free_port(), answer=lambda got: 503 if got.label ==
                        "call.state:init" else None).start()  # fmt: skip

    def settled() -> bool:
        return all(d.status != "pending" for d in deliveries(engine))

    quick_give_up = FAST.model_copy(update={"give_up_s": 0.5})
    await send_calls(engine, receiver, settled, "every delivery settled", config=quick_give_up)
    statuses = [d.status for d in deliveries(engine, "c1")]
    assert statuses == ["failed"] + ["delivered"] * 4
    assert deliveries(engine, "c1")[0].last_status == 503
    assert receiver.of_call("c1") == EXPECTED[1:]
