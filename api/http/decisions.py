"""The real-time decision: prepare, link, score, and write it all in one transaction.

A pass (one request, or the requests the batcher grouped) costs one read and one write transaction:

1. ``graph.contract.prepare.prepare_rows`` validates and pseudonymises the records row by row, into dicts: a pass
   builds no DataFrame (for one to a few rows their set-up cost more than the work). A batch with a record
   to reject goes through ``graph.contract.prepare.prepare``, which words the rejects; a rejected record writes
   nothing.
2. One read finds the ids already stored, with their content hash and, for a replay, the stored answer.
3. Under the write lock, new faces go into the in-memory face index and are searched for SAME_FACE pairs;
   the records are scored from their prepared rows (nothing is read back) against the scorer's cache; and
   one transaction (``graph.ingest.load.write_one_shot``) writes accounts, signals, face links, faces, content
   hashes and scores together. If it fails (store down), the new faces leave the index again and the
   caller gets 503: nothing is half-written, and a retry starts afresh.
4. The new accounts go to the scorer (``api.http.scorer.ScorerCache.observe``), which folds them into the live
   graph once the pass has answered and before the next one scores (``fold_pending``).

Idempotent on ``application_id``: an application stored with the same content and a score is answered from
the store (``replayed``) and nothing is written. One stored with the same content but no score (loaded by
``ringwatch ingest`` after the last batch scoring) is scored, and only its score is written.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from api.http.schemas import Application, DecisionOut, FaceMatch, RejectedOut, RingRef
from graph.contract.io import records_frame
from graph.contract.prepare import PreparedRows, prepare, prepare_rows
from graph.ingest.load import face_pair_list, one_shot_rows, write_one_shot
from graph.store import cypher

if TYPE_CHECKING:  # the context holds the decide function; it never imports this module
    from api.http.context import Context

log = logging.getLogger("ringwatch.api.decisions")


def decide(ctx: Context, applications: list[Application]) -> dict[str, DecisionOut | RejectedOut]:
    """Outcomes by application id (ids are unique within a call: the batcher and the batch route see to it)."""
    clock = _Stages()
    records = [a.model_dump(mode="json", exclude_none=True) for a in applications]
    ctx.scoring.fold_pending()  # what earlier passes decided, if the worker has not folded it in yet
    store, index, scorer = ctx.store(), ctx.index(), ctx.scorer()
    threshold = ctx.face_threshold()
    out: dict[str, DecisionOut | RejectedOut] = {}
    prepared = prepare_rows(records, ctx.settings, ctx.pseudonymiser())
    if prepared is None:  # something to reject (or unusual): the full rules, which word the rejects
        batch = prepare(records_frame(records), ctx.settings, ctx.pseudonymiser())
        for row, group in batch.rejects.groupby("row", sort=True):
            app = applications[int(row) - 1]
            reasons = [
                f"{c}: {r}" if c else str(r) for c, r in zip(group["column"], group["reason"], strict=True)
            ]
            out[app.application_id] = RejectedOut(application_id=app.application_id, reasons=reasons)
            ctx.metrics.ingested.labels("rejected").inc()
        prepared = PreparedRows(batch.frame.to_dict("records"), batch.faces, list(batch.face_ids))
    clock.lap("prepare")
    if prepared.rows:
        with ctx.write_lock:
            clock.lap("lock")
            decided = _decide_accepted(ctx, store, index, scorer, threshold, prepared, clock)
        for app_id, (decision, status) in decided.items():
            out[app_id] = decision
            ctx.metrics.decisions.labels(decision.decision).inc()
            ctx.metrics.ingested.labels(status).inc()
    clock.report(ctx, len(applications))
    return out


class _Stages:
    """Wall time per stage of a pass, for ``/metrics`` and one debug line a pass: where a decision's time
    goes under load is measured, not guessed."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1000
        self.last = now

    def report(self, ctx: Context, n: int) -> None:
        self.ms["pass"] = (time.perf_counter() - self.start) * 1000
        for stage, ms in self.ms.items():
            ctx.metrics.decision_stages.labels(stage).observe(ms / 1000)
        ctx.metrics.pass_size.observe(n)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("decision pass", extra={"n": n, **{f"{k}_ms": round(v, 2) for k, v in self.ms.items()}})


def _decide_accepted(
    ctx, store, index, scorer, threshold, prepared: PreparedRows, clock: _Stages
) -> dict[str, tuple[DecisionOut, str]]:
    rows = prepared.rows
    ids = [str(r["application_id"]) for r in rows]
    stored = {r["id"]: r for r in store.read(cypher.STORED_DECISIONS, ids=ids)}
    clock.lap("read")
    hashes = [r["content_hash"] for r in rows]
    status = [
        "new" if i not in stored else "unchanged" if stored[i]["content_hash"] == h else "updated"
        for i, h in zip(ids, hashes, strict=True)
    ]
    decided: dict[str, tuple[DecisionOut, str]] = {}
    work, unscored = [], []
    for k, (i, s) in enumerate(zip(ids, status, strict=True)):
        if s != "unchanged":
            work.append(k)
        elif stored[i]["risk_score"] is None:
            unscored.append(k)
        else:
            decided[i] = (_replay(ctx, stored[i], threshold), "replayed")
    if not work and not unscored:
        return decided

    pos = {str(a): k for k, a in enumerate(ids)}
    face_of = {pos[str(a)]: prepared.faces[j] for j, a in enumerate(prepared.face_ids) if str(a) in pos}
    with_face = [k for k in work if k in face_of]
    face_ids = [ids[k] for k in with_face]
    index.remove([ids[k] for k in work if status[k] == "updated"])
    vectors = np.stack([face_of[k] for k in with_face]) if with_face else None
    if with_face:
        index.add(face_ids, vectors)
    try:
        pairs = face_pair_list(index, face_ids, vectors, threshold, ctx.settings.face_link_k)
        clock.lap("face")
        matches: dict[str, list[tuple[str, float]]] = {}
        for a, b, s in pairs:
            matches.setdefault(a, []).append((b, s))
            matches.setdefault(b, []).append((a, s))
        for k in unscored:  # not searched again: the links stored with it are its matches
            found = ((b, float(s)) for b, s in stored[ids[k]]["faces"] if b is not None and s is not None)
            matches[ids[k]] = list(found)
        to_score = work + unscored
        scores = _score(
            ctx, scorer, [rows[k] for k in to_score], {ids[k]: matches.get(ids[k], []) for k in to_score}
        )
        clock.lap("score")
        writes = one_shot_rows(
            ctx.settings, rows, work, [status[k] == "updated" for k in work], face_of, pairs
        )
        writes += [{"id": ids[k], "props": {}} for k in unscored]
        for row in writes:
            d = scores[row["id"]]
            row["props"].update(
                risk_score=d.risk_score, decision=d.decision, reasons=d.reasons, model_version=d.model_version
            )
            row["ring_id"] = d.ring.id if d.ring else None
        write_one_shot(store, writes)
        clock.lap("write")
    except BaseException:
        index.remove(face_ids)  # the store has none of it: the index must not keep faces it never got
        raise
    if work:
        ctx.mark_index_dirty()
        new = [k for k in work if status[k] == "new"]
        rings = {ids[k]: scores[ids[k]].ring.id for k in new if scores[ids[k]].ring}
        ctx.scoring.observe([rows[k] for k in new], pairs, rings)
    for k in to_score:
        decided[ids[k]] = (scores[ids[k]], status[k])
    return decided


def _score(
    ctx: Context, scorer, rows: list[dict], matches: dict[str, list[tuple[str, float]]]
) -> dict[str, DecisionOut]:
    pairs = [(i, other, sim) for i, found in matches.items() for other, sim in found]
    same_face = {
        "new": [p[0] for p in pairs],
        "existing": [p[1] for p in pairs],
        "similarity": [p[2] for p in pairs],
    }
    scored = scorer.score_new(rows, same_face)
    out = {}
    for i, risk, decision, ring_id, reasons in zip(
        scored.ids.tolist(),
        scored.risk.tolist(),
        scored.decision.tolist(),
        scored.ring_id,
        scored.reasons,
        strict=True,
    ):
        out[i] = DecisionOut(
            application_id=i,
            risk_score=round(risk, 6),
            decision=decision,
            ring=_ring(ctx, ring_id),
            face_matches=[
                FaceMatch(application_id=other, similarity=round(sim, 6), above_threshold=True)
                for other, sim in sorted(matches[i], key=lambda m: -m[1])
            ],
            reasons=reasons,
            model_version=scorer.artifact.version,
            replayed=False,
        )
    return out


def warm_up(store, index, settings, rounds: int = 20) -> float:
    """Run a decision's read query and face search a few times at start-up (seconds taken).

    A freshly started store runs its first queries many times slower than warm ones (query plans, the JVM's
    JIT), and the first searches page in the face index; doing it here keeps that cost off the first
    requests. Nothing is written: these are reads, of ids the API refuses (they hold a control character)."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    for k in range(rounds):
        store.read(cypher.STORED_DECISIONS, ids=[f"\x1fwarm-up-{k}-{j}" for j in range(1 + k % 4)])
        if len(index):
            probe = rng.standard_normal((1 + k % 4, index.dim)).astype(np.float32)
            index.search_ids(probe, k=min(settings.face_link_k + 1, len(index)))
    return time.perf_counter() - started


def _replay(ctx: Context, row: dict, threshold: float) -> DecisionOut:
    faces = sorted(((b, s) for b, s in row["faces"] if b is not None), key=lambda f: -(f[1] or 0))
    return DecisionOut(
        application_id=row["id"],
        risk_score=round(float(row["risk_score"]), 6),
        decision=row["decision"],
        ring=_ring(ctx, row["ring_id"]),
        face_matches=[
            FaceMatch(application_id=b, similarity=round(float(s), 6), above_threshold=float(s) >= threshold)
            for b, s in faces
        ],
        reasons=list(row["reasons"] or []),
        model_version=row["model_version"],
        replayed=True,
    )


def _ring(ctx: Context, ring_id: object) -> RingRef | None:
    if not isinstance(ring_id, str):  # None, or NaN from a pandas writer
        return None
    score, size = ctx.ring_info(ring_id)
    return RingRef(id=ring_id, score=score, size=size)
