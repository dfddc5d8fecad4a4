"""Group concurrent decision requests into one pass through ingest and scoring.

Preparing, writing and scoring one application carries a fixed cost (DataFrame set-up, a few store
transactions) that barely grows with the number of rows. Requests that arrive while a pass is running
wait in a queue and go through the next pass together, so under load the fixed cost is shared and the
queue drains instead of growing; a lone request still goes straight through. One worker thread is also the
single writer the store rules ask for.

Admission control keeps a request from waiting without bound when requests come faster than passes drain
them (DESIGN.md §7: past capacity, 503 with Retry-After). The queue holds at most ``queue_max`` requests; one
more is refused at once (``Shed("queue_full")``). Each request carries a deadline: one still queued when it
passes is never processed (``Shed("deadline")``, nothing written), whether the worker finds it expired when
it starts a pass or the waiting caller gives up on it first (``wait_until`` cancels it). A request whose pass
has started cannot be taken back: if the deadline passes during the pass, the caller is answered at the
deadline all the same (``Shed("overrun")``) and the pass finishes and writes in the background, so a retry
with the same application_id is answered from the store (replayed).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from api.http.schemas import Application

log = logging.getLogger("ringwatch.api.batcher")

Outcome = object  # DecisionOut or RejectedOut, whatever ``process`` returns per application id
_STOP = object()
SHED_REASONS = ("queue_full", "deadline", "overrun")
QUEUE_FULL = "too many decisions are waiting; nothing was written; retry after Retry-After seconds"
NOT_STARTED = (
    "the decision did not start before its deadline; nothing was written; retry after Retry-After seconds"
)
OVERRUN = (
    "the decision did not finish before its deadline; it may still be recorded: retry with the same "
    "application_id after Retry-After seconds to get it"
)


class Shed(Exception):
    """A request refused for overload; ``reason`` is one of ``SHED_REASONS``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


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
        queue_max: int = 64,
        after_pass: Callable[[], None] | None = None,
    ):
        self._process = process
        self._after_pass = after_pass  # work that follows a pass once it has answered (the live graph's fold)
        self._max_batch = max(1, max_batch)
        self._thread_init = thread_init
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_max))
        self._thread = threading.Thread(target=self._run, name="decisions", daemon=True)
        self._thread.start()

    def submit(self, applications: list[Application], deadline: float | None = None) -> Future:
        """A future of the outcomes of ``applications``, in their order. ``deadline`` (``time.monotonic()``
        seconds): if the request is still queued then, it is not processed and the future raises
        ``Shed("deadline")``. Raises ``Shed("queue_full")`` when ``queue_max`` requests wait already."""
        future: Future = Future()
        try:
            self._queue.put_nowait((applications, future, deadline))
        except queue.Full:
            raise Shed("queue_full", QUEUE_FULL) from None
        return future

    def stop(self, timeout: float = 30) -> None:
        """Finish what is queued, then stop."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("decision worker did not drain its queue; stopping without it")
            return
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
            if self._after_pass is not None:
                try:
                    self._after_pass()
                except Exception:  # the next pass runs it again; never the worker's end
                    log.exception("after-pass work failed")

    def _pass(self, groups: list) -> None:
        now = time.monotonic()
        live = []
        for apps, future, deadline in groups:
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up on it (``wait_until``)
            if deadline is not None and now > deadline:
                future.set_exception(Shed("deadline", NOT_STARTED))
                continue
            live.append((apps, future))
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


async def wait_until(future: Future, deadline: float) -> list:
    """The outcomes of a submitted request, awaited until ``deadline`` (``time.monotonic()`` seconds) at most.

    At the deadline a request still queued is cancelled (``Shed("deadline")``: its pass will skip it), and one
    whose pass is running is left to finish in the background (``Shed("overrun")``)."""
    waiting = asyncio.wrap_future(future)
    waiting.add_done_callback(_retrieve)
    done, _ = await asyncio.wait({waiting}, timeout=max(0.0, deadline - time.monotonic()))
    if done:
        return waiting.result()
    if future.cancel():
        raise Shed("deadline", NOT_STARTED)
    if future.done():  # finished (or refused by the worker) just now
        return future.result()
    raise Shed("overrun", OVERRUN)


def _retrieve(waiting: asyncio.Future) -> None:
    """Mark a failure of a request nobody waits for any more as seen (asyncio logs unseen ones)."""
    if not waiting.cancelled():
        waiting.exception()
