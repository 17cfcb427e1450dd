"""NotificationWorkflow's contract: its type, signal, config and the sender activity's
signature (the one NotificationWorkflow, id ``contracts.ids.NOTIFY_WORKFLOW_ID``)."""

from __future__ import annotations

from typing import NoReturn

from pydantic import BaseModel
from temporalio import activity

from contracts.ids import TASK_QUEUE_DEFAULT
from core.config import CoreSettings

NOTIFY_WORKFLOW = "NotificationWorkflow"
NOTIFY_CONFIGURE_SIGNAL = "configure"


class NotifyConfig(BaseModel):
    """How the sender polls the outbox, how long one POST may take (as a whole, answer
    included), the back-off between a delivery's attempts and when it is given up; how many
    POSTs are in flight, of which at most ``per_subscription`` for one subscription; how
    long one sender activity runs before the workflow starts the next (so new settings take
    effect)."""

    poll_s: float = 0.5
    timeout_s: float = 10.0
    retry_initial_s: float = 5.0
    retry_max_s: float = 3600.0
    give_up_s: float = 86400.0
    concurrency: int = 32
    per_subscription: int = 2
    keep_s: float = 7 * 86400.0
    run_s: float = 300.0
    task_queue: str = TASK_QUEUE_DEFAULT

    @property
    def sender_lease_s(self) -> float:
        """How long the sender lease lasts unrenewed: a POST's deadline fits in it twice over,
        so a sender renews it while sending and the next one waits for the last POST."""
        return 2 * self.timeout_s + 10.0


def notify_config(settings: CoreSettings) -> NotifyConfig:
    return NotifyConfig(
        poll_s=settings.notify_poll_s,
        timeout_s=settings.notify_timeout_s,
        retry_initial_s=settings.notify_retry_initial_s,
        retry_max_s=settings.notify_retry_max_s,
        give_up_s=settings.notify_give_up_s,
        concurrency=settings.notify_concurrency,
        per_subscription=settings.notify_per_subscription,
        keep_s=settings.notify_keep_s,
        task_queue=settings.task_queue,
    )


@activity.defn(name="send_notifications")
async def send_notifications(config: NotifyConfig) -> int:
    """The sender (activities/notify.py): POSTs due deliveries for ``config.run_s``,
    heartbeating; returns how many were delivered."""
    _stub()


def _stub() -> NoReturn:
    raise NotImplementedError("a signature only: the worker runs the implementation")
