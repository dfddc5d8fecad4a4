"""The real-time scorer the API holds, and its refresh.

``RealtimeScorer`` scores new applications against a cached, already-scored graph. Building that cache
(export the store, compute features) takes seconds at 100k accounts, so it is built in the background at
start-up and rebuilt after each batch scoring job; requests keep using the previous one until the new one is
swapped in.

Every decided account is folded into that cache at once (``observe``, ``graph.learn.live``): its new
signals, degrees, names per signal, time windows, face links and component, so the next decision sees a ring
that formed after the last batch job, and the ring candidate it is forming. What the fold leaves approximate
(members' own values, a signal turning into a hub) is recomputed by the next batch scoring job, or by a
background rebuild when ``scorer_refresh_accounts`` are waiting or the oldest has waited ``scorer_refresh_s``
(both off by default: a rebuild holds the GIL for seconds at 100k accounts, and decisions wait behind it).
"""

from __future__ import annotations

import gc
import logging
import threading
import time

import numpy as np

from api.http.errors import ApiError
from api.settings import ApiSettings
from graph.jobs import score_store
from graph.learn.hetero import GraphInput
from graph.learn.scoring import RealtimeScorer
from graph.learn.training import Artifact, load_artifact
from graph.store import cypher
from graph.store.bolt import GraphStore
from graph.store.export import export_tables
from graph.tables import append_prepared

log = logging.getLogger("ringwatch.api.scorer")


class ScorerCache:
    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self.state = "not loaded"  # not loaded | loading | ready | no model | failed
        self._scorer: RealtimeScorer | None = None
        self._rings: dict[str, tuple[float | None, int | None]] = {}
        self._lock = threading.Lock()  # one build at a time: a load, a batch job or a refresh
        self._pending: list[dict] = []  # prepared rows decided since the last build
        self._pending_pairs: list[tuple[str, str, float]] = []
        self._pending_rings: dict[str, str] = {}
        self._pending_since: float | None = None
        self._pending_lock = threading.Lock()
        self._to_fold: list[tuple[list[dict], list, dict]] = []  # decided, answered, not yet folded in
        self._refreshing = False

    def get(self) -> RealtimeScorer:
        scorer = self._scorer
        if scorer is not None:
            return scorer
        if self.state == "no model":
            raise ApiError(503, "model_unavailable", "no trained model: run `ringwatch train`, then restart")
        if self.state == "failed":
            raise ApiError(503, "model_unavailable", "the model could not be loaded; see the server log")
        raise ApiError(503, "model_loading", "the scorer is loading; retry shortly", {"Retry-After": "5"})

    def ready(self) -> bool:
        """Not ready only while a model that exists is still loading or failed to load."""
        return self.state in ("ready", "no model")

    def ring_info(self, ring_id: str) -> tuple[float | None, int | None]:
        """Score and size of a batch ring; a candidate named in real time has a size so far and no score."""
        if ring_id in self._rings:
            return self._rings[ring_id]
        scorer = self._scorer
        size = scorer.candidates.get(ring_id) if scorer is not None else None
        return None, size

    def gauges(self) -> dict[str, float]:
        """For ``/metrics`` (``api.http.metrics.SCORER_GAUGES``)."""
        scorer = self._scorer
        if scorer is None:
            return {}
        with self._pending_lock:  # not halfway through a fold
            waiting = sum(len(rows) for rows, _, _ in self._to_fold)  # answered, folded in a moment
            n, observed = scorer.n, scorer.observed
        return {
            "cache_accounts": scorer.cached_n,
            "live_accounts": n + waiting,
            "cache_age_seconds": time.time() - scorer.built_at,
            "decided_since_build": observed + waiting,
            "overlay_keys": len(scorer.recent),
            "pending_rebuild": len(self._pending),
        }

    def load_in_background(self, store: GraphStore) -> None:
        if self.state == "loading":
            return
        self.state = "loading"
        threading.Thread(target=self._load, args=(store,), name="scorer-load", daemon=True).start()

    def _load(self, store: GraphStore) -> None:
        try:
            artifact = load_artifact(self.settings.models_dir)
        except FileNotFoundError:
            self.state = "no model"
            log.warning("no trained model; decisions answer 503 until one is trained")
            return
        try:
            started = time.perf_counter()
            graph = GraphInput(export_tables(store), artifact.config.features)
            ring_of = {
                r["id"]: r["ring_id"] for r in store.read(cypher.RING_OF) if isinstance(r["ring_id"], str)
            }
            self._swap(artifact, graph, ring_of, store)
            log.info(
                "scorer ready",
                extra={"accounts": graph.n, "model_version": artifact.version,
                       "seconds": round(time.perf_counter() - started, 2)},
            )  # fmt: skip
        except Exception as exc:  # reported by /readyz and 503s; the server keeps running
            self.state = "failed"
            log.error("scorer load failed", extra={"error_type": type(exc).__name__}, exc_info=exc)

    def observe(self, rows: list[dict], pairs: list[tuple[str, str, float]], rings: dict[str, str]) -> None:
        """Accounts a decision has just stored (prepared rows, their SAME_FACE pairs, the ring each joined),
        for the next refresh; starts one in the background when it is due."""
        if not rows:
            return
        s = self.settings
        rebuilds = s.scorer_refresh_accounts > 0 or s.scorer_refresh_s > 0
        with self._pending_lock:
            if self._scorer is not None:
                self._to_fold.append((rows, pairs, rings))  # folded once the pass has answered
            if not rebuilds and not self._lock.locked():
                return  # kept only for a rebuild: one to come, or one running (its scorer must count them)
            self._pending.extend(rows)
            self._pending_pairs.extend(pairs)
            self._pending_rings.update(rings)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            waited = time.monotonic() - self._pending_since
            due = (s.scorer_refresh_accounts > 0 and len(self._pending) >= s.scorer_refresh_accounts) or (
                s.scorer_refresh_s > 0 and waited >= s.scorer_refresh_s
            )
            if not due or self._refreshing or self._scorer is None:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh, name="scorer-refresh", daemon=True).start()

    def fold_pending(self) -> None:
        """Fold the accounts decided so far into the live graph. The decision worker calls it after a pass
        has answered and before the next pass scores, so folding never delays the answer it follows."""
        with self._pending_lock:
            batches, self._to_fold = self._to_fold, []
            scorer = self._scorer
            if scorer is not None:
                for rows, pairs, rings in batches:
                    scorer.observe(rows, pairs, rings)

    def refresh(self) -> int:
        """Fold the accounts observed so far into the cached graph now (what the background refresh runs).
        Returns how many accounts the cache gained."""
        with self._pending_lock:
            self._refreshing = True
        return self._refresh()

    def _take_pending(self) -> tuple[list[dict], list[tuple[str, str, float]], dict[str, str]]:
        with self._pending_lock:
            taken = self._pending, self._pending_pairs, self._pending_rings
            self._pending, self._pending_pairs, self._pending_rings = [], [], {}
            self._pending_since = None
        return taken

    def _refresh(self) -> int:
        try:
            with self._lock:
                scorer = self._scorer
                rows, pairs, rings = self._take_pending()
                if scorer is None or not rows:
                    return 0
                started = time.perf_counter()
                before = scorer.graph.n
                tables = append_prepared(scorer.graph.tables, rows, pairs)
                graph = GraphInput(tables, scorer.artifact.config.features)
                # the rings decided accounts were answered with (batch rings or candidates), by id
                folded = dict(
                    zip(scorer.ids[before:].tolist(), scorer.ring_ids[before:].tolist(), strict=True)
                )
                new_ids = tables.accounts["id"].to_numpy(dtype=object)[before:]
                ring_ids = np.concatenate(
                    [
                        scorer.ring_ids[:before],
                        np.array([rings.get(str(i)) or folded.get(str(i)) for i in new_ids], dtype=object),
                    ]
                )
                self._install(
                    RealtimeScorer(scorer.artifact, graph, ring_ids=ring_ids, member_cap=scorer.member_cap)
                )
                settle_heap()
                log.info(
                    "scorer refreshed",
                    extra={"accounts": graph.n, "added": graph.n - before,
                           "seconds": round(time.perf_counter() - started, 2)},
                )  # fmt: skip
                return graph.n - before
        except Exception as exc:  # the next batch job reads them from the store
            log.error("scorer refresh failed", extra={"error_type": type(exc).__name__}, exc_info=exc)
            return 0
        finally:
            with self._pending_lock:
                self._refreshing = False

    def rescore_all(self, store: GraphStore) -> dict:
        """The batch job (``graph.jobs.score_store``), then serve from the new graph."""
        with self._lock:
            self._take_pending()  # stored already: the export below reads them (a later one is skipped as known)
            artifact = load_artifact(self.settings.models_dir)
            job = score_store(store, artifact, self.settings)
            scores = job.result.scores
            ids = scores["application_id"].to_numpy(dtype=object)
            ring_of = {i: r for i, r in zip(ids, scores["ring_id"].to_numpy(dtype=object), strict=True) if r}
            self._swap(artifact, job.graph, ring_of, store)
        return {
            "model_version": artifact.version,
            "scored_at": job.scored_at,
            "rings_found": len(job.result.rings),
            **job.written,
        }

    def _swap(self, artifact: Artifact, graph: GraphInput, ring_of: dict, store: GraphStore) -> None:
        ids = graph.tables.accounts["id"].astype(str).to_numpy()
        ring_ids = np.array([ring_of.get(i) for i in ids], dtype=object)
        rings = {r["id"]: (r["score"], r["size"]) for r in store.read(cypher.RINGS)}
        self._install(RealtimeScorer(artifact, graph, ring_ids=ring_ids))
        self._rings = rings
        settle_heap()
        self.state = "ready"

    def _install(self, scorer: RealtimeScorer) -> None:
        """Serve from ``scorer``, with the accounts observed while it was being built counted in."""
        with self._pending_lock:
            if self._pending:
                scorer.observe(self._pending, self._pending_pairs, self._pending_rings)
            self._scorer = scorer


def settle_heap() -> None:
    """Collect once, then move everything alive (the scorer's cached graph, the face index's id maps: about
    450,000 tracked objects at 100k accounts) out of the collector's reach with ``gc.freeze()``.

    Without it, every full collection walks that heap while holding the GIL, at 100k accounts a pause longer
    than a decision, which lands on whichever requests are in flight (the p99). A previous scorer, unfrozen
    first, is freed by the collection rather than kept forever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
