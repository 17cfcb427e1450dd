"""A workflow that only logs what it is given (for ``sandboxed_log``)."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class Talk:
    @workflow.run
    async def run(self, text: str) -> str:
        workflow.logger.info("said %s", text)
        return "said"
