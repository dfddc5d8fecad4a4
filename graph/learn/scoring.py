"""Scoring with a trained artifact: every account at once (batch), or a few new ones in real time.

Batch: calibrated risk for every account, rings, decisions, written back to the store (``Account.risk_score``,
``Account.ring_id``, ``Ring`` nodes, ``MEMBER_OF``) and to ``scores.parquet`` / ``rings.json``.

Real time (``RealtimeScorer.score_new``, or ``score_new_accounts`` for a DataFrame out): the new application
is scored from the cached graph without rebuilding it, and without a DataFrame (for one to a few rows, their
set-up cost more than the scoring). Its features come from cached per-signal aggregates
(``features.features_for_new``); the GNN runs in numpy (``graph.learn.small_gnn``) on the new account's exact
receptive field (its signals with their members, its face matches with theirs), a signal's members capped at
its ``member_cap`` most recent (which binds only if ``hub_degree`` is set above it).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graph.contract.io import object_array
from graph.learn.features import (
    MS_PER_DAY,
    NEIGHBOUR_BASE,
    RELS,
    NewFeatures,
    RecentLinks,
    features_for_new,
    is_linking,
    links_accounts,
    non_linking_codes,
    rel_values,
    signal_stats_array,
)
from graph.learn.hetero import GraphInput, signal_node_features
from graph.learn.live import LiveState, Rows
from graph.learn.small_gnn import SmallGraph
from graph.learn.training import Artifact
from graph.rings.clusters import Ring, RingConfig, extract_rings, ring_assignment
from graph.schema import SIGNALS


@dataclass
class NewScores:
    """Real-time scores, one entry per new application, in order."""

    ids: np.ndarray
    risk: np.ndarray
    decision: np.ndarray
    ring_id: list
    reasons: list[list[str]]


@dataclass
class NewAccounts:
    """What a model sees of a few new accounts scored in real time (``predict_new``): their feature rows and,
    for a GNN, each one's receptive field in the cached graph."""

    scorer: RealtimeScorer
    features: NewFeatures
    links: dict
    same_face: dict

    @property
    def x(self) -> np.ndarray:
        return self.features.x

    @property
    def columns(self) -> list[str]:
        return self.features.columns

    @property
    def n(self) -> int:
        return len(self.features.x)

    def field(self, i: int) -> SmallGraph:
        return self.scorer._receptive_field(i, self.features, self.links, self.same_face)


@dataclass
class ScoreResult:
    scores: pd.DataFrame  # SCORE_COLUMNS
    rings: list[Ring]
    risk: np.ndarray


def ring_config_for(artifact: Artifact) -> RingConfig:
    """Ring candidates are the accounts the decision service would at least send to review, and at least
    ``RingConfig.min_risk`` likely to be fraud (a review band can reach far down when labels are few)."""
    base = artifact.config.rings
    return RingConfig(
        min_risk=max(artifact.calibrator.review_at, base.min_risk),
        min_size=base.min_size,
        min_score=base.min_score,
        face_weight=base.face_weight,
        burst_weight=base.burst_weight,
        louvain_resolution=base.louvain_resolution,
        seam_ratio=base.seam_ratio,
        min_share=base.min_share,
        burst_max_rate=base.burst_max_rate,
        seed=base.seed,
    )


def score_all(graph: GraphInput, artifact: Artifact) -> ScoreResult:
    risk = artifact.risk(graph)
    rings = extract_rings(graph, risk, ring_config_for(artifact))
    ids = graph.tables.accounts["id"].to_numpy(dtype=object)
    rid, rscore = ring_assignment(rings, ids)
    scores = pd.DataFrame(
        {
            "application_id": ids.astype(str),
            "risk_score": risk.astype(np.float64),
            "decision": artifact.calibrator.decide(risk),
            "ring_id": rid,
            "ring_score": rscore,
        }
    )
    return ScoreResult(scores, rings, risk)


def write_outputs(result: ScoreResult, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    sp, rp = out_dir / "scores.parquet", out_dir / "rings.json"
    result.scores.to_parquet(sp, index=False)
    rp.write_text(json.dumps([r.to_dict() for r in result.rings], indent=1))
    return sp, rp


CANDIDATE_PREFIX = "live-"  # ring ids named in real time; a batch job draws the rings anew


class RealtimeScorer:
    """Scores new applications against a graph scored in batch.

    ``score_new_accounts(frame, same_face=None) -> DataFrame`` with one row per new application:
    ``application_id, risk_score, decision, ring_id, reasons`` (``ring_id`` is the existing ring the new
    account links into, if any). ``frame`` holds prepared rows (``graph.contract.prepare`` columns: application_id,
    created_at (epoch ms), name_key, dob_key, the signal columns, liveness_score,
    document_authenticity_score). ``same_face`` holds ``new`` (a new application's id), ``existing`` (the id
    of an existing account its face matched) and ``similarity``, e.g. from a 1:N face search: a match is one
    way, unlike the ``embeddings.pairs`` of the graph, and keeps those names once turned into positions.
    New accounts do not see each other.
    """

    def __init__(
        self, artifact: Artifact, graph: GraphInput, ring_ids: np.ndarray | None = None, member_cap: int = 64
    ):
        artifact.check_schema(graph)
        self.artifact, self.graph, self.member_cap = artifact, graph, member_cap
        t = graph.tables
        self.n = t.n_accounts
        self._ids = Rows(object_array(t.accounts["id"].astype(str).tolist()))
        self.pos = {a: k for k, a in enumerate(self._ids.view.tolist())}
        st = graph.state
        self.live = LiveState(
            st,
            t.accounts["name_key"].map(st.name_codes).fillna(0).to_numpy(np.int64),
            t.accounts["dob_key"].map(st.dob_codes).fillna(0).to_numpy(np.int64),
        )
        self._x = Rows(graph.features.to_numpy(np.float32))
        self._base = Rows(graph.features[list(NEIGHBOUR_BASE)].to_numpy(np.float64))
        self._node_x = Rows(signal_node_features(st))
        self._linking = Rows(is_linking(st))
        self._ring_ids = Rows(np.full(self.n, None, dtype=object) if ring_ids is None else ring_ids)
        self.candidates: dict[str, int] = {}  # ring candidates named in real time -> members so far
        # what decided accounts added to the cached adjacency below: members per node (in arrival order),
        # signal nodes per account, face partners (position, similarity) per account
        self.live_members: dict[int, list[int]] = {}
        self.live_nodes: dict[int, np.ndarray] = {}
        self.live_faces: dict[int, list[tuple[int, float]]] = {}
        self.cached_n, self.cached_nodes = self.n, st.nodes.n_nodes
        created = t.accounts["created_at"].to_numpy(np.float64) / MS_PER_DAY
        self._seconds = Rows(_seconds(created, st.t0_ms))  # each account's time, as the time keys count it
        self._column = {c: k for k, c in enumerate(st.columns)}
        acc = t.links["account"].to_numpy(np.int64)
        node = st.nodes.link_node
        created = t.accounts["created_at"].to_numpy(np.int64)
        # members of each node, most recent first; links of each account
        order = np.lexsort((-created[acc], node))
        self.node_members = acc[order]
        self.node_ptr = np.concatenate([[0], np.cumsum(np.bincount(node, minlength=st.nodes.n_nodes))])
        order = np.argsort(acc, kind="stable")
        self.acc_nodes = node[order]
        self.acc_ptr = np.concatenate([[0], np.cumsum(np.bincount(acc, minlength=self.n))])
        sf = t.same_face
        a, b = sf["src"].to_numpy(np.int64), sf["dst"].to_numpy(np.int64)
        ends, other = np.concatenate([a, b]), np.concatenate([b, a])
        sim = np.concatenate([sf["similarity"].to_numpy(np.float32)] * 2)
        order = np.argsort(ends, kind="stable")
        self.face_other, self.face_sim = other[order], sim[order]
        self.face_ptr = np.concatenate([[0], np.cumsum(np.bincount(ends, minlength=self.n))])
        self.recent = RecentLinks(graph.state.config)
        self.observed = 0  # accounts folded in through observe
        self.built_at = time.time()

    # the live parts of the per-account and per-node arrays (``observe`` grows them)
    name_of = property(lambda self: self.live.name_of.view)
    dob_of = property(lambda self: self.live.dob_of.view)
    x = property(lambda self: self._x.view)
    base = property(lambda self: self._base.view)
    node_x = property(lambda self: self._node_x.view)
    linking = property(lambda self: self._linking.view)
    ring_ids = property(lambda self: self._ring_ids.view)
    ids = property(lambda self: self._ids.view)

    def observe(
        self,
        rows: pd.DataFrame | list[dict],
        pairs: Sequence[tuple[str, str, float]] = (),
        rings: dict[str, str] | None = None,
    ) -> None:
        """Fold accounts just decided into the live graph (``graph.learn.live``), in order, so that the next
        decision sees them as batch would: their signals, face links (``pairs``: id, id, similarity) and the
        ring each was answered with (``rings``: id -> ring). Call from the thread that scores."""
        rings = rings or {}
        ids = [str(v) for v in _column_getter(rows)("application_id")]
        for k, i in enumerate(ids):
            if i in self.pos:
                continue  # already in the graph (a re-decision of a known id)
            one = rows.iloc[[k]] if isinstance(rows, pd.DataFrame) else [rows[k]]
            found = [(b, s) for a, b, s in pairs if a == i] + [(a, s) for a, b, s in pairs if b == i]
            same_face = {
                "new": [i] * len(found),
                "existing": [m for m, _ in found],
                "similarity": [float(s) for _, s in found],
            }
            self._fold(i, one, same_face, rings.get(i))

    def _fold(self, i: str, row, same_face: dict, ring_id: str | None) -> None:
        accounts, links, sf = self._new_tables(row, same_face)
        st = self.graph.state
        nf = features_for_new(st, accounts, links, sf, self.name_of, self.dob_of, self.base, self.recent)
        position = self.n
        nodes = self.live.fold(accounts, links, sf["existing"], nf)
        self.recent.add(st, accounts, links)
        self.pos[i] = position
        self._ids.append(object_array([i]))
        self.n += 1
        self._x.append(nf.x[:1])
        self._base.append(nf.base[:1])
        self._seconds.append(_seconds(np.asarray(accounts["created_at"], np.float64) / MS_PER_DAY, st.t0_ms))
        self._ring_ids.append(np.array([ring_id], dtype=object))
        if ring_id is not None and ring_id.startswith(CANDIDATE_PREFIX):
            self.candidates[ring_id] = int(st.comp_size[st.component[position]])
        for nd in nodes.tolist():
            self.live_members.setdefault(nd, []).append(position)
        self.live_nodes[position] = nodes
        for q, sim in zip(sf["existing"].tolist(), sf["similarity"].tolist(), strict=True):
            self.live_faces.setdefault(position, []).append((q, sim))
            self.live_faces.setdefault(q, []).append((position, sim))
        n_nodes = st.nodes.n_nodes
        if self._node_x.n < n_nodes:
            grow = n_nodes - self._node_x.n
            self._node_x.append(np.zeros((grow, self._node_x.buf.shape[1]), np.float32))
            self._linking.append(np.zeros(grow, dtype=bool))
        touched = np.unique(nodes)
        self._update_signal_columns(position, touched)
        touched = np.union1d(touched, self._update_members(position, touched, sf["existing"]))
        self.node_x[touched] = self.live.node_features(touched)
        self.linking[touched] = self.live.linking(touched)
        self.observed += 1

    def forming_rings(self, limit: int = 50, members: int = 100) -> list[dict]:
        """Ring candidates named since this scorer was built, largest first: what investigators can open
        before a batch job draws the rings (``live-`` ids; the batch job replaces them)."""
        ids, rings = self.ids, self.ring_ids
        out = []
        for cid, size in sorted(self.candidates.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]:
            named = ids[rings == cid]
            out.append({"id": cid, "size": size, "answered": len(named), "members": named[:members].tolist()})
        return out

    def _update_signal_columns(self, position: int, nodes: np.ndarray) -> None:
        """The per-signal columns of the earlier members of the new account's signals (``_rel_block``: degree,
        names, dates of birth, span, and the time windows it falls in), so that the GNN's receptive field
        shows them as batch would. Members beyond ``member_cap`` of a hub keep their values."""
        st = self.graph.state
        nd, cfg, col = st.nodes, st.config, self._column
        me = int(self._seconds.view[position])
        for node in nodes.tolist():
            members = self._members(node)
            members = members[members != position]
            if not len(members):
                continue
            rel = RELS[int(nd.rel_code[node])].lower()
            deg, n_name, n_dob = float(nd.deg[node]), float(nd.n_name[node]), float(nd.n_dob[node])
            values = rel_values(deg, n_name, n_dob, float(nd.t_max[node] - nd.t_min[node]))
            for k, v in values.items():
                self.x[members, col[f"{rel}_{k}"]] = v
            gap = np.abs(self._seconds.view[members] - me)
            for k, window in (("near", cfg.near_days * 86_400), ("burst", cfg.burst_hours * 3600)):
                hit = members[gap <= int(window)]
                c = col[f"{rel}_{k}"]
                self.x[hit, c] = np.log1p(np.expm1(self.x[hit, c].astype(np.float64)) + 1)

    def _update_members(self, position: int, nodes: np.ndarray, partners: np.ndarray) -> np.ndarray:
        """Earlier accounts whose own values the new one changed, as batch would recompute them: the rare
        signals they hold (a signal it makes shared, or a hub), and their face matches. Their base values
        move in their signals' sums too. Returns the signal nodes whose sums moved."""
        st, cfg = self.graph.state, self.graph.state.config
        deg = st.nodes.deg[nodes]
        kind_ok = ~np.isin(st.nodes.rel_code[nodes], non_linking_codes())
        delta: dict[int, float] = {}
        for nd, d, ok in zip(nodes.tolist(), deg.tolist(), kind_ok.tolist(), strict=True):
            if not ok:
                continue
            if d == 2:  # shared from now on: its one earlier member gains a rare signal
                members = [int(st.node_member[nd])]
                step = 1.0
            elif d == cfg.hub_degree + 1:  # a hub from now on: no longer rare for anyone
                members = self._members(nd).tolist()
                step = -1.0
            else:
                continue
            for m in members:
                if m != position:
                    delta[m] = delta.get(m, 0.0) + step
        col = {c: k for k, c in enumerate(NEIGHBOUR_BASE)}
        xcol = {c: k for k, c in enumerate(self.graph.state.columns)}
        changed = set(delta) | set(partners.tolist())
        moved = []
        for m in changed:
            old = self.base[m].copy()
            new = old.copy()
            new[col["n_rare"]] += delta.get(m, 0.0)
            if m in partners:
                other, _ = self._faces(m)
                diff = (self.name_of[other] != self.name_of[m]) & (self.dob_of[other] != self.dob_of[m])
                new[col["face_n"]] = np.log1p(len(other))
                new[col["face_other_both"]] = np.log1p(diff.sum())
            for c in ("n_rare", "face_n", "face_other_both"):
                self.x[m, xcol[c]] = new[col[c]]
            own = self._own_nodes(m)
            st.node_base_sum[own] += np.nan_to_num(new) - np.nan_to_num(old)
            st.node_base_cnt[own] += (~np.isnan(new)).astype(float) - (~np.isnan(old))
            self.base[m] = new
            moved.append(own)
        return np.unique(np.concatenate(moved)) if moved else np.zeros(0, np.int64)

    def _new_tables(self, rows: pd.DataFrame | list[dict], same_face) -> tuple[dict, dict, dict]:
        """The new accounts, their links and face matches as mappings of column to array: a real-time
        decision scores one to a few rows, for which building DataFrames cost more than the scoring."""
        col = _column_getter(rows)
        n = len(rows)
        accounts = {"id": object_array([str(v) for v in col("application_id")])}
        accounts["created_at"] = np.asarray(col("created_at"), dtype=np.int64)
        for c in ("name_key", "dob_key", "liveness_score", "document_authenticity_score"):
            accounts[c] = col(c)
        acc, rel, sig = [], [], []
        for s in SIGNALS:
            values = col(s.column)
            for i in range(n):
                v = values[i]
                if v is not None and v == v:
                    acc.append(i)
                    rel.append(s.rel)
                    sig.append(v)
        links = {"account": np.array(acc, dtype=np.int64), "rel": rel, "signal": sig}
        sf = {"new": np.zeros(0, np.int64), "existing": np.zeros(0, np.int64), "similarity": np.zeros(0)}
        if same_face is not None and len(same_face["new"]):
            new_pos = {a: i for i, a in enumerate(accounts["id"])}
            nw = np.array([new_pos.get(str(a), -1) for a in same_face["new"]], dtype=np.int64)
            ex = np.array([self.pos.get(str(m), -1) for m in same_face["existing"]], dtype=np.int64)
            ok = (nw >= 0) & (ex >= 0)
            sf = {
                "new": nw[ok],
                "existing": ex[ok],
                "similarity": np.asarray(same_face["similarity"], dtype=np.float64)[ok],
            }
        return accounts, links, sf

    def _members(self, node: int) -> np.ndarray:
        """Members of a signal node, most recent first, at most ``member_cap``."""
        cap = self.member_cap
        cached = np.zeros(0, np.int64)
        if node < self.cached_nodes:
            lo, hi = self.node_ptr[node], self.node_ptr[node + 1]
            cached = self.node_members[lo : min(hi, lo + cap)]
        live = self.live_members.get(node)
        if not live:
            return cached
        return np.concatenate([np.array(live[::-1][:cap], dtype=np.int64), cached])[:cap]

    def _own_nodes(self, p: int) -> np.ndarray:
        if p < self.cached_n:
            return self.acc_nodes[self.acc_ptr[p] : self.acc_ptr[p + 1]]
        return self.live_nodes.get(p, np.zeros(0, np.int64))

    def _faces(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Face partners of an account (positions) and their similarities."""
        other, sim = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if p < self.cached_n:
            lo, hi = self.face_ptr[p], self.face_ptr[p + 1]
            other, sim = self.face_other[lo:hi], self.face_sim[lo:hi]
        live = self.live_faces.get(p)
        if live:
            other = np.concatenate([other, np.array([q for q, _ in live], dtype=np.int64)])
            sim = np.concatenate([sim, np.array([s for _, s in live], dtype=np.float32)])
        return other, sim

    def _receptive_field(self, i: int, nf, links: dict, sf: dict) -> SmallGraph:
        """New account ``i`` (row 0) and what a 2-layer GNN sees of it: its linking signals with their
        members, its face partners with their own linking signals and face partners. Nothing further out can
        change its score, so members' other links are left out."""
        st = self.graph.state
        mine = np.flatnonzero(links["account"] == i)
        s1 = nf.link_node[mine]
        known = _linking(st, s1, nf.deg[mine])
        s1_nodes = s1[known]
        fm = sf["new"] == i
        p1 = sf["existing"][fm]
        members = [self._members(nd) for nd in s1_nodes]
        member_node = np.repeat(s1_nodes, [len(m) for m in members])
        own = [self._own_nodes(p) for p in p1]
        own_acc = np.repeat(p1, [len(o) for o in own])
        own = np.concatenate(own) if own else np.zeros(0, np.int64)
        keep = self.linking[own] | np.isin(own, s1_nodes)
        own, own_acc = own[keep], own_acc[keep]
        partners = [self._faces(p) for p in p1]
        face_p = np.repeat(p1, [len(q) for q, _ in partners])
        face_q = np.concatenate([q for q, _ in partners] or [np.zeros(0, np.int64)])
        face_s = np.concatenate([s for _, s in partners] or [np.zeros(0, np.float32)])
        existing = np.unique(np.concatenate([*members, p1, face_q]).astype(np.int64))
        nodes = np.unique(np.concatenate([s1_nodes, own]))

        def local(a: np.ndarray) -> np.ndarray:
            return np.searchsorted(existing, a) + 1  # row 0 is the new account

        member_acc = np.concatenate(members) if members else np.zeros(0, np.int64)
        acc = np.concatenate([np.zeros(len(s1_nodes), np.int64), local(member_acc), local(own_acc)])
        sig = np.searchsorted(nodes, np.concatenate([s1_nodes, member_node, own]))
        pair = np.unique(acc * max(len(nodes), 1) + sig)  # a partner may also be a member
        # face pairs: the new account's, then each partner's (a pair of two partners comes twice)
        fa, fb = local(face_p), local(face_q)
        pair_f, first = np.unique(
            np.minimum(fa, fb) * (len(existing) + 1) + np.maximum(fa, fb), return_index=True
        )
        node_x = self.node_x[nodes].copy()
        if len(s1_nodes):
            k = mine[known]
            stats = signal_stats_array(nf.deg[k], nf.n_name[k], nf.n_dob[k], nf.t_min[k], nf.t_max[k])
            total, count = st.node_base_sum[s1_nodes].copy(), st.node_base_cnt[s1_nodes].copy()
            b = nf.base[i]
            ok = ~np.isnan(b)
            total += np.where(ok, b, 0.0)
            count += ok
            mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
            node_x[np.searchsorted(nodes, s1_nodes)] = np.concatenate(
                [stats, mean.astype(np.float32)], axis=1
            )
        return SmallGraph(
            x_account=np.concatenate([nf.x[i : i + 1], self.x[existing]]).astype(np.float32),
            x_signal=node_x,
            kind=st.nodes.rel_code[nodes].astype(np.intp),
            link_account=pair // max(len(nodes), 1),
            link_signal=pair % max(len(nodes), 1),
            face_a=np.concatenate([np.zeros(len(p1), np.int64), pair_f // (len(existing) + 1)]),
            face_b=np.concatenate([local(p1), pair_f % (len(existing) + 1)]),
            face_sim=np.concatenate([sf["similarity"][fm], face_s[first]]).astype(np.float32),
        )

    def score_new(self, rows: pd.DataFrame | list[dict], same_face=None) -> NewScores:
        """``score_new_accounts`` without the DataFrame: ``rows`` are prepared rows as a frame or as dicts
        (``graph.contract.prepare.prepare_rows``), ``same_face`` a mapping of its three columns to sequences."""
        accounts, links, sf = self._new_tables(rows, same_face)
        n = len(accounts["id"])
        nf = features_for_new(
            self.graph.state, accounts, links, sf, self.name_of, self.dob_of, self.base, self.recent
        )
        art = self.artifact
        score = art.model.predict_new(NewAccounts(self, nf, links, sf))
        risk = art.calibrator.transform(score)
        decision = art.calibrator.decide(risk)
        ring_id = self._rings(nf, links, sf, n)
        for k in range(n):
            if ring_id[k] is None and decision[k] != "approve":
                ring_id[k] = self._candidate(k, nf, links, sf)
        return NewScores(
            ids=accounts["id"],
            risk=risk,
            decision=decision,
            ring_id=ring_id,
            reasons=_reasons(nf.x, nf.columns),
        )

    def _candidate(self, i: int, nf, links: dict, sf: dict) -> str | None:
        """A ring forming in the stream, before any batch job drew it: the linked component (rare signals,
        face matches) that a suspicious new account joins, named after its earliest account."""
        st, cfg = self.graph.state, self.graph.state.config
        mine = links["account"] == i
        nodes, deg = nf.link_node[mine], nf.deg[mine]
        ok = _linking(st, nodes, deg) & (deg <= cfg.comp_degree)
        members = np.concatenate([st.node_member[nodes[ok]], sf["existing"][sf["new"] == i]]).astype(np.int64)
        if not len(members):
            return None
        joined = np.flatnonzero(np.isin(st.component, np.unique(st.component[members])))
        cid = f"{CANDIDATE_PREFIX}{self._ids.view[joined[0]]}"
        self.candidates.setdefault(cid, len(joined))  # its members so far, until a fold counts them
        return cid

    def score_new_accounts(self, frame: pd.DataFrame, same_face: pd.DataFrame | None = None) -> pd.DataFrame:
        out = self.score_new(frame, same_face)
        return pd.DataFrame(
            {
                "application_id": out.ids,
                "risk_score": out.risk,
                "decision": out.decision,
                "ring_id": out.ring_id,
                "reasons": out.reasons,
            }
        )

    def _rings(self, nf, links: dict, sf: dict, n: int) -> list:
        out = []
        acc = links["account"]
        # only signals that link accounts, as in ring extraction: a shared /24 or a hub is no ring evidence
        linking = _linking(self.graph.state, nf.link_node, nf.deg)
        for i in range(n):
            near = [self._members(nd) for nd in nf.link_node[(acc == i) & linking]]
            near.append(sf["existing"][sf["new"] == i])
            # the most common ring among them, the smallest id on a tie (what pandas' mode() picks), counted
            # without a Series: this runs per request
            counts = Counter(
                v for v in self.ring_ids[np.concatenate(near)].tolist() if v is not None and v == v
            )
            top = max(counts.values(), default=0)
            out.append(min(v for v, c in counts.items() if c == top) if top else None)
        return out


def _seconds(t_days: np.ndarray, t0_ms: int) -> np.ndarray:
    return np.round((np.asarray(t_days) - t0_ms / MS_PER_DAY) * 86_400).astype(np.int64)


def _linking(state, node: np.ndarray, deg: np.ndarray) -> np.ndarray:
    """Which of a new account's links join it to existing accounts through a linking signal: an existing
    node (``deg`` counts the new account too), not a hub, not of a non-linking kind such as a /24."""
    return (node >= 0) & links_accounts(state.config, state.nodes.rel_code[np.maximum(node, 0)], deg)


def _reasons(x: np.ndarray, columns: list[str]) -> list[list[str]]:
    """Plain-language reasons from the features, strongest sharing first."""
    out = []
    col = {c: k for k, c in enumerate(columns)}
    for row in x.tolist():
        rs = []
        for r in RELS:
            deg = int(round(math.expm1(row[col[f"{r.lower()}_deg"]])))
            if deg > 0:
                names = int(round(math.expm1(row[col[f"{r.lower()}_names"]])))
                rs.append((deg, f"{r} shared with {deg} other accounts under {names} other names"))
        k = int(round(math.expm1(row[col["face_other_both"]])))
        if k:
            rs.append((100 + k, f"face matches {k} accounts with another name and date of birth"))
        out.append([t for _, t in sorted(rs, key=lambda x: -x[0])][:5])
    return out


def _column_getter(rows: pd.DataFrame | list[dict]):
    """``col(name)``: one column of prepared rows as a sequence, ``None`` where a row lacks it."""
    if isinstance(rows, pd.DataFrame):
        return lambda c: rows[c].to_numpy() if c in rows else [None] * len(rows)
    return lambda c: [r.get(c) for r in rows]
