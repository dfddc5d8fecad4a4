"""Group concurrent decision requests into one pass through ingest and scoring.

Preparing, writing and scoring one application carries a fixed cost (DataFrame set-up, a few store
transactions) that barely grows with the number of rows. Requests that arrive while a pass is running
wait in a queue and go through the next pass together, so under load the fixed cost is shared and the
queue drains instead of growing; a lone request still goes straight through. One worker thread is also the
single writer the store rules ask for.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from api.http.schemas import Application

log = logging.getLogger("ringwatch.api.batcher")

Outcome = object  # DecisionOut or RejectedOut, whatever ``process`` returns per application id
_STOP = object()


def one_thread_pools() -> None:
    """Limit BLAS/OpenMP pools to one thread, for the calling thread.

    Concurrency comes from requests, not from pools inside one pass: on small inputs those pools cost far
    more than they save (a one-row gradient-boosting predict on a busy 2-core machine was far slower with the
    default pools than with one thread: an OpenMP barrier spins while its partner thread waits for a core).
    OpenMP's limit is per thread, so the decision worker sets it for itself: set only in the main thread,
    small passes still took far longer to score under load."""
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch.set_num_threads(1)


class DecisionBatcher:
    def __init__(
        self,
        process: Callable[[list[Application]], dict[str, Outcome]],
        max_batch: int = 64,
        thread_init: Callable[[], None] | None = one_thread_pools,
    ):
        self._process = process
        self._max_batch = max(1, max_batch)
        self._thread_init = thread_init
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="decisions", daemon=True)
        self._thread.start()

    def submit(self, applications: list[Application]) -> Future:
        """A future of the outcomes of ``applications``, in their order."""
        future: Future = Future()
        self._queue.put((applications, future))
        return future

    def stop(self, timeout: float = 30) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        if self._thread_init is not None:
            self._thread_init()
        carry = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is _STOP:
                return
            groups, ids = [first], {a.application_id for a in first[0]}
            while sum(len(g[0]) for g in groups) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                item_ids = set() if item is _STOP else {a.application_id for a in item[0]}
                if item is _STOP or item_ids & ids or len(ids) + len(item_ids) > self._max_batch:
                    carry = item  # a resubmitted id waits for the next pass, so each pass sees an id once
                    break
                groups.append(item)
                ids |= item_ids
            self._pass(groups)

    def _pass(self, groups: list) -> None:
        live = [(apps, f) for apps, f in groups if f.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcomes = self._process([a for apps, _ in live for a in apps])
        except Exception as exc:  # the callers answer it (503 for a store outage, etc.)
            for _, future in live:
                future.set_exception(exc)
            return
        for apps, future in live:
            future.set_result([outcomes[a.application_id] for a in apps])
