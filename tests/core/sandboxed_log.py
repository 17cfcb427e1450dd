"""Run as ``python -m tests.core.sandboxed_log [no-preload]`` by ``test_sandboxed_log``: a
fresh process (no numbering metadata loaded yet) that logs as the worker does, with a
sandboxed workflow whose log line holds phone numbers, run by CC's ``WORKFLOW_RUNNER``.
Prints the workflow's result, then whether ``phonenumbers``' metadata lock is free."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from phonenumbers.phonemetadata import PhoneMetadata
from temporalio.worker import Worker

import core.logs
import worker
from tests.core.talking_workflow import Talk
from tests.workflows.servers import dev_server_env


async def main(preload: bool) -> None:
    if not preload:  # the sandbox's passthrough alone
        core.logs.load_number_metadata = lambda: None
    core.logs.configure_logging()
    async with await dev_server_env() as env:
        queue = f"talk-{uuid.uuid4()}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[Talk],
            workflow_runner=worker.WORKFLOW_RUNNER,
        ):
            said = "call +44 20 7946 0958, 010 6552 9988 or +1 (415) 555-2671"
            print(await env.client.execute_workflow(Talk.run, said, id=queue, task_queue=queue))
    print("lock held" if PhoneMetadata._metadata_lock.locked() else "lock free")


if __name__ == "__main__":
    asyncio.run(main(preload="no-preload" not in sys.argv[1:]))
    # Out at once: the SDK's native threads may still call into Python while a normal exit
    # finalises the interpreter ("PyGILState_Release ... finalizing", seen on a loaded run).
    sys.stdout.flush()
    os._exit(0)
