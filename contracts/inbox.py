"""Input of InboxWorkflow (inbox redelivery) and the webhook's delivery policy."""

from __future__ import annotations

from pydantic import BaseModel

from contracts.ids import TASK_QUEUE_DEFAULT


class RedeliveryConfig(BaseModel):
    """How often InboxWorkflow looks for unapplied events, how old one must be to be signalled
    again, the back-off between its attempts; and how long a webhook waits for its own signal
    before it answers anyway (``budget_s``)."""

    every_s: float = 5.0
    unsent_after_s: float = 10.0
    budget_s: float = 1.0
    retry_initial_s: float = 5.0
    retry_max_s: float = 300.0
    task_queue: str = TASK_QUEUE_DEFAULT
