"""Background jobs, one at a time.

Batch scoring rewrites every account's score and the rings; two at once would race on the same nodes, so a
second submission while one runs is refused (409) rather than queued behind it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("ringwatch.api.jobs")

MAX_KEPT = 100


@dataclass
class Job:
    id: str
    kind: str
    status: str = "queued"  # queued → running → succeeded | failed
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class JobBusy(Exception):
    def __init__(self, running: Job):
        super().__init__(running.id)
        self.running = running


class JobRunner:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._active: Job | None = None
        self._thread: threading.Thread | None = None

    def submit(self, kind: str, work: Callable[[], dict[str, Any]]) -> Job:
        with self._lock:
            if self._active is not None:
                raise JobBusy(self._active)
            job = Job(id=uuid.uuid4().hex, kind=kind)
            self._jobs[job.id] = job
            self._active = job
            self._forget_old()
            self._thread = threading.Thread(
                target=self._run, args=(job, work), name=f"job-{kind}", daemon=True
            )
            self._thread.start()
            return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def wait(self, timeout: float | None = None) -> None:
        """Used at shutdown: let a running job finish its current write rather than cut it mid-batch."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, job: Job, work: Callable[[], dict[str, Any]]) -> None:
        job.status, job.started_at = "running", time.time()
        try:
            job.result = work()
            job.status = "succeeded"
        except Exception as exc:  # a failed job is reported through GET /v1/jobs/{id}, not raised
            # the job only sees the pseudonymised graph, so its error text carries no raw PII
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
            log.error("job failed", extra={"job_id": job.id, "kind": job.kind}, exc_info=exc)
        finally:
            job.finished_at = time.time()
            with self._lock:
                self._active = None

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.finished_at is not None]
        for job in sorted(done, key=lambda j: j.submitted_at)[: max(0, len(self._jobs) - MAX_KEPT)]:
            del self._jobs[job.id]
