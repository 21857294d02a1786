"""Running a worker process: Faust's worker with a bounded graceful stop.

SIGTERM (or SIGINT) starts Faust's graceful stop: fetching stops, the batch in hand is
applied and acknowledged, the acknowledged offsets are committed and the consumer leaves
its group, so that the other workers of the group take its partitions over at once. The
process then exits with code 0.

A stop that cannot finish, because the batch in hand cannot be applied (Redis unreachable:
the batch loop retries it rather than drop it) or anything else hangs, is cut short after
``worker_stop_timeout_s``: the process exits at once with :data:`STOP_TIMEOUT_EXIT_CODE`,
committing nothing more. Only applied batches are ever acknowledged, so the batch in hand is
delivered again to whichever worker takes its partitions, and the offset fences skip
whatever of it was applied.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import faust

log = logging.getLogger(__name__)

# Exit status of a worker whose graceful stop outlasted its timeout (EX_TEMPFAIL: its
# unfinished batch is delivered again).
STOP_TIMEOUT_EXIT_CODE = 75


class Worker(faust.Worker):
    """``faust.Worker`` whose stop ends the process after ``stop_timeout_s`` at the latest."""

    def __init__(self, app: faust.App, *, stop_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.stop_timeout_s = stop_timeout_s
        self._stop_deadline: threading.Timer | None = None

    async def stop(self) -> None:
        # A thread, not a task of the event loop: it fires even when the loop is stuck.
        if self._stop_deadline is None:
            self._stop_deadline = threading.Timer(self.stop_timeout_s, self._stop_timed_out)
            self._stop_deadline.daemon = True
            self._stop_deadline.start()
        await super().stop()

    def _stop_timed_out(self) -> None:
        log.critical(
            "graceful stop took longer than %.0f s (PIPELINE_WORKER_STOP_TIMEOUT_S); "
            "exiting now: the batch in hand is not acknowledged and will be delivered again",
            self.stop_timeout_s,
        )
        logging.shutdown()
        os._exit(STOP_TIMEOUT_EXIT_CODE)
