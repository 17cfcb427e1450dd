"""The inbox redelivery activity: signal again the events whose signal failed."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from temporalio import activity

from contracts.inbox import RedeliveryConfig
from intake.delivery import DeliveryPolicy, redeliver_due

log = logging.getLogger("cc.activities.inbox")


class InboxActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    async def redeliver_inbox(self, config: RedeliveryConfig) -> int:
        count = await redeliver_due(
            self._engine, activity.client(), DeliveryPolicy.of(config), config.unsent_after_s
        )
        if count:
            log.info("inbox redelivery signalled %d event(s)", count)
        return count
