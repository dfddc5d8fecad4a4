"""Prometheus metrics, one registry per app (no process-global state, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from api.http.batcher import SHED_REASONS

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORER_GAUGES = {
    "cache_accounts": "Accounts in the real-time scorer's graph when it was built",
    "live_accounts": "Accounts in the real-time scorer's live graph: those it was built with and those "
    "folded in by decisions since",
    "cache_age_seconds": "Seconds since the real-time scorer's cached graph was built (start-up, batch job, "
    "or refresh)",
    "decided_since_build": "Accounts decided since the cache was built, folded into the live graph",
    "overlay_keys": "Time keys the real-time overlay holds (bounded by the longest time window)",
    "pending_rebuild": "Decided accounts kept in memory for the next cache rebuild",
}
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "ringwatch_request_seconds",
            "HTTP request latency by route template, method and status",
            ("route", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "ringwatch_decisions_total",
            "Real-time decisions returned, by band",
            ("decision",),
            registry=self.registry,
        )
        self.ingested = Counter(
            "ringwatch_ingested_applications_total",
            "Applications received through the API, by outcome (new, replayed, rejected)",
            ("outcome",),
            registry=self.registry,
        )
        self.decision_stages = Histogram(
            "ringwatch_decision_stage_seconds",
            "Time per stage of a decision pass (prepare, read, face, score, write, pass)",
            ("stage",),
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.pass_size = Histogram(
            "ringwatch_decision_pass_size",
            "Applications decided together in one pass (the batcher groups concurrent requests)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024),
            registry=self.registry,
        )
        self.shed = Counter(
            "ringwatch_decisions_shed_total",
            "Decision requests answered 503 for overload: queue_full (refused on arrival), deadline (never "
            "started, nothing written), overrun (started, not finished by the deadline; the pass still writes)",
            ("reason",),
            registry=self.registry,
        )
        for reason in SHED_REASONS:
            self.shed.labels(reason)  # present at 0 from the start, so rates can be taken
        self.face_searches = Counter(
            "ringwatch_face_searches_total", "1:N face searches", registry=self.registry
        )

    def watch_scorer(self, read: Callable[[], dict[str, float]]) -> None:
        """Gauges read at scrape time from ``read()`` (``SCORER_GAUGES``; NaN while no scorer is loaded):
        how stale the real-time scorer's view of the graph is, and what it holds in memory meanwhile."""
        for name, doc in SCORER_GAUGES.items():
            gauge = Gauge(f"ringwatch_scorer_{name}", doc, registry=self.registry)
            gauge.set_function(lambda name=name: read().get(name, float("nan")))

    def render(self) -> bytes:
        return generate_latest(self.registry)
