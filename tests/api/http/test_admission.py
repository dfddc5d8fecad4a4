"""Admission control for decisions: past capacity the server answers 503 with Retry-After at once or by the
deadline, never with an unbounded wait (DESIGN.md §7), and counts what it sheds in /metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from api.http.batcher import DecisionBatcher, Shed, wait_until
from api.http.schemas import Application

QUEUE_MAX = 2
DEADLINE_MS = 300
# the client's clock also counts the connection, the body upload and the event loop's turn on a busy
# 2-core machine, none of which the server's deadline (counted from arrival) can see
MARGIN_S = 0.5
CLIENTS = 24
REQUESTS = 96


def _body(i: int, rng: np.random.Generator) -> dict:
    """A unique applicant with a random face: it links to nobody, so the shared store's other tests see no
    new signal shared with their accounts."""
    face = rng.standard_normal(512)
    return {
        "application_id": f"admission-{i}",
        "created_at": "2026-03-04T05:06:07Z",
        "full_name": f"Load Tester {i}",
        "date_of_birth": "1985-06-15",
        "face_embedding": [float(x) for x in face],
    }


def _shed_counts(client: httpx.Client) -> dict[str, float]:
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("ringwatch_decisions_shed_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


@pytest.fixture
def small_server(api_server, launch) -> str:
    """A second server on the shared store and data, with a small queue and a short deadline (QUEUE_MAX,
    DEADLINE_MS)."""
    env = dict(
        api_server.env,
        RINGWATCH_DECISION_QUEUE_MAX=str(QUEUE_MAX),
        RINGWATCH_DECISION_DEADLINE_MS=str(DEADLINE_MS),
    )
    _, base = launch(env)
    return base


def test_overload_is_shed_with_503_and_counted(small_server, api_server) -> None:
    headers = {"X-API-Key": api_server.keys["ingest"]}
    rng = np.random.default_rng(0)
    bodies = [_body(i, rng) for i in range(REQUESTS)]

    with httpx.Client(base_url=small_server, headers=headers, timeout=30) as warm:
        first = warm.post("/v1/applications", json=_body(REQUESTS, rng))
        assert first.status_code == 200, first.text  # a lone request goes straight through
        before = _shed_counts(warm)
    assert set(before) == {"queue_full", "deadline", "overrun"} and sum(before.values()) == 0

    # one client for all threads, bodies encoded beforehand: the clock then times the server, not the test
    # process building clients and JSON under the GIL
    encoded = [json.dumps(b).encode() for b in bodies]
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    with httpx.Client(base_url=small_server, headers=headers, timeout=30, limits=limits) as client:

        def post(body: bytes) -> tuple[httpx.Response, float]:
            t0 = time.monotonic()
            r = client.post("/v1/applications", content=body, headers={"content-type": "application/json"})
            return r, time.monotonic() - t0

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(post, encoded))

    ok = [took for r, took in answers if r.status_code == 200]
    shed = [(r, took) for r, took in answers if r.status_code == 503]
    assert len(ok) + len(shed) == REQUESTS, [r.text for r, _ in answers if r.status_code not in (200, 503)]
    assert ok, "no request got through"
    assert shed, "the server never shed: the test did not drive it past capacity"
    for r, _ in shed:
        assert r.json()["error"]["code"] == "overloaded", r.text
        assert int(r.headers["retry-after"]) >= 1
    # nobody waits past the deadline, answered or shed
    slowest = max(took for _, took in answers)
    assert slowest <= DEADLINE_MS / 1000 + MARGIN_S, slowest

    with httpx.Client(base_url=small_server, headers=headers, timeout=30) as c:
        after = _shed_counts(c)
        assert sum(after.values()) - sum(before.values()) == len(shed), (after, len(shed))
        # it recovers once the burst is over
        assert c.post("/v1/applications", json=_body(REQUESTS + 1, rng)).status_code == 200
    with api_server.client("investigator") as c:
        # a request shed before its pass started wrote nothing
        not_started = [
            b["application_id"]
            for b, (r, _) in zip(bodies, answers, strict=True)
            if r.status_code == 503 and "nothing was written" in r.json()["error"]["message"]
        ]
        for app_id in not_started[:10]:
            assert c.get(f"/v1/accounts/{app_id}").status_code == 404, app_id
    print(
        f"\nshed {len(shed)} of {REQUESTS} ({after}); accepted p50 {np.percentile(ok, 50) * 1000:.0f} ms, "
        f"p99 {np.percentile(ok, 99) * 1000:.0f} ms, max {max(ok) * 1000:.0f} ms"
    )


def _app(app_id: str) -> Application:
    return Application(
        application_id=app_id, created_at="2026-01-01T00:00:00Z", full_name="A B", date_of_birth="1990-01-01"
    )


def test_batcher_skips_expired_requests_and_answers_running_ones_at_their_deadline() -> None:
    """The three ways a request is shed, on the real batcher and its worker thread: refused when the queue is
    full; never processed when its deadline passes while it waits (whether its caller gives up first or the
    worker finds it expired); answered at the deadline while its pass runs on, the pass still finishing (so
    a retry would be replayed from the store)."""
    processed: list[str] = []
    release = threading.Event()

    def process(apps: list[Application]) -> dict:
        release.wait(30)  # a pass that overruns until the test lets it finish
        processed.extend(a.application_id for a in apps)
        return {a.application_id: a.application_id for a in apps}

    batcher = DecisionBatcher(process, thread_init=None, queue_max=2)

    async def overload() -> tuple:
        deadline = time.monotonic() + 0.2
        running = batcher.submit([_app("running")], deadline)
        while not running.running():
            await asyncio.sleep(0.005)
        waiting = batcher.submit([_app("waiting")], deadline)
        unwatched = batcher.submit([_app("unwatched")], deadline)  # nobody awaits it: the worker sheds it
        with pytest.raises(Shed) as full:
            batcher.submit([_app("refused")], deadline + 10)
        answers = await asyncio.gather(
            wait_until(running, deadline), wait_until(waiting, deadline), return_exceptions=True
        )
        return running, unwatched, full.value, answers, time.monotonic() - deadline

    try:
        running, unwatched, full, (overrun, expired), late = asyncio.run(overload())
        assert full.reason == "queue_full"
        assert isinstance(overrun, Shed) and overrun.reason == "overrun"
        assert isinstance(expired, Shed) and expired.reason == "deadline"
        assert late < 0.5, late  # answered at the deadline, while the pass is still blocked
        assert not processed
        release.set()
        assert running.result(timeout=30) == ["running"]  # the overrun pass finished all the same
        with pytest.raises(Shed) as shed:
            unwatched.result(timeout=30)
        assert shed.value.reason == "deadline"
        assert batcher.submit([_app("later")], time.monotonic() + 30).result(timeout=30) == ["later"]
        assert processed == ["running", "later"]  # the expired ones were never processed
    finally:
        release.set()
        batcher.stop()
