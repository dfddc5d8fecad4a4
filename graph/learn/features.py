"""Account features from the identity graph (DESIGN.md §6).

Fraud is visible in how identifiers are shared, not in any one application: a device or a national id used
under many names in a few days, a face that appears under several identities, forged document templates
shared by a handful of people. Every feature here is a groupby over the link table (O(edges)), so the same
code serves 1k accounts in a test and 1M in production.

Hubs (carrier NAT IPs, kiosks, official document templates) are damped: a signal shared by more than
``hub_degree`` accounts still contributes its own statistics (the model learns that a big IP is normal) but
it does not link accounts in neighbour aggregates or components.

``FeatureState`` keeps the per-signal aggregates so that ``features_for_new`` can compute the features of a
new application from the cached neighbourhood, without recomputing the graph's aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from graph.schema import KNOWN_COLUMNS, OPTIONAL_FLOAT01, SIGNALS
from graph.tables import GraphTables

RELS = tuple(s.rel for s in SIGNALS)
REL_CODE = {r: i for i, r in enumerate(RELS)}
MS_PER_DAY = 86_400_000.0
# signals of these kinds are too coarse to link people on their own (a /24 holds many households)
NON_LINKING = ("FROM_PREFIX",)
# per-account values that neighbours pass on (means over the rare signals an account shares)
NEIGHBOUR_BASE = (
    "face_other_both",
    "face_n",
    "liveness_score",
    "document_authenticity_score",
    "n_rare",
    "reuse",
)

# pairs of signal kinds counted together within ``burst_hours``: a crew applies from one /24 within hours, each
# member from another address (a household shares one) and often with one document template
PAIR_BURSTS = (("FROM_PREFIX", "LIVES_AT"), ("FROM_PREFIX", "HAS_TEMPLATE"))


@dataclass(frozen=True)
class FeatureConfig:
    """``hub_degree``: a signal with more accounts is a hub. ``comp_degree``: only signals up to this degree
    join linked components; a popular official template or a quiet carrier NAT IP (shared by a few dozen
    strangers, under ``hub_degree``) otherwise chains thousands of unrelated people into one giant component
    whose size means nothing for anyone in it, and whose value in a new graph lies outside anything the model
    saw. ``near_days``: window for 'used at about the same time'; ``burst_hours``: window for 'used within the
    same couple of hours' (bursts from one /24)."""

    hub_degree: int = 50
    comp_degree: int = 24
    near_days: float = 3.0
    burst_hours: float = 2.0


@dataclass
class SignalTable:
    """One row per signal node (``rel``, ``signal``) and, per link, the node it points at."""

    link_node: np.ndarray  # int64 per link row
    rel_code: np.ndarray  # int16 per node
    signal: np.ndarray  # object per node (pseudonym)
    deg: np.ndarray
    n_name: np.ndarray
    n_dob: np.ndarray
    t_min: np.ndarray  # days
    t_max: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.deg)

    def stats_frame(self) -> pd.DataFrame:
        """Features of the signal nodes themselves (GNN input), same columns for every signal kind."""
        return signal_stats(self.deg, self.n_name, self.n_dob, self.t_min, self.t_max)


SIGNAL_STAT_COLUMNS = ("deg", "names", "dobs", "name_ratio", "dob_ratio", "span", "burst")


def signal_stats(deg, n_name, n_dob, t_min, t_max) -> pd.DataFrame:
    return pd.DataFrame(
        signal_stats_array(deg, n_name, n_dob, t_min, t_max), columns=list(SIGNAL_STAT_COLUMNS)
    )


def signal_stats_array(deg, n_name, n_dob, t_min, t_max) -> np.ndarray:
    """[nodes, len(SIGNAL_STAT_COLUMNS)] float32; the real-time path skips the frame."""
    deg = np.asarray(deg, dtype=np.float64)
    n_name, n_dob = np.asarray(n_name), np.asarray(n_dob)
    others = np.maximum(deg - 1, 1)
    span = np.asarray(t_max) - np.asarray(t_min)
    cols = (
        np.log1p(deg),
        np.log1p(n_name),
        np.log1p(n_dob),
        np.where(deg > 1, (n_name - 1) / others, 0.0),
        np.where(deg > 1, (n_dob - 1) / others, 0.0),
        np.log1p(span),
        np.log1p((deg - 1) / (span + 1.0)),
    )
    return np.stack(cols, axis=1).astype(np.float32)


@dataclass
class FeatureState:
    """What a new account's features need from the existing graph, kept from the last full computation."""

    config: FeatureConfig
    nodes: SignalTable
    node_index: dict[tuple[str, str], int]
    name_pairs: np.ndarray  # sorted int64 keys node * name_mod + name code
    dob_pairs: np.ndarray
    name_mod: int
    dob_mod: int
    node_member: np.ndarray  # one member account per node (all members of a linking node share a component)
    name_codes: dict[str, int]
    dob_codes: dict[str, int]
    time_keys: np.ndarray  # sorted int64 node * T + seconds since t0, one per link
    t0_ms: int
    identity_counts: dict[tuple[str, str], int]
    node_base_sum: np.ndarray  # [nodes, len(NEIGHBOUR_BASE)] sums of member base values (NaN as 0)
    node_base_cnt: np.ndarray  # [nodes, len(NEIGHBOUR_BASE)] non-NaN member counts
    component: np.ndarray  # per account
    comp_size: np.ndarray  # per component
    comp_names: np.ndarray
    comp_t_min: np.ndarray
    comp_t_max: np.ndarray
    # per PAIR_BURSTS: sorted pair keys (node_a * nodes + node_b) and time keys (pair * T + seconds since t0)
    pair_keys: list[np.ndarray] = field(default_factory=list)
    pair_time_keys: list[np.ndarray] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    pair_mod: int = 0  # pair keys are node_a * pair_mod + node_b (the node count when they were made)
    # (node, name) and (node, dob) keys added since (graph.learn.live): a small sorted level of its own, so
    # adding one does not copy the big arrays
    name_fresh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dob_fresh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


_T_SCALE = 10**10  # seconds; keeps node * T + t inside int64 for 1e8 nodes


def _codes(values: pd.Series) -> tuple[np.ndarray, dict[str, int]]:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64) + 1, {u: i + 1 for i, u in enumerate(uniques)}


def _unique(x: np.ndarray) -> np.ndarray:
    """``np.unique(x)`` by sorting: numpy 2.4's hash-based unique is slower on millions of int64 keys,
    enough to dominate the whole feature pass at 1M accounts."""
    k = np.sort(x)
    return k[np.concatenate([[True], k[1:] != k[:-1]])] if len(k) else k


def _distinct_per_node(
    node: np.ndarray, code: np.ndarray, n_nodes: int, m: int
) -> tuple[np.ndarray, np.ndarray]:
    keys = _unique(node * m + code)
    return np.bincount(keys // m, minlength=n_nodes), keys


def build_signal_table(
    tables: GraphTables,
) -> tuple[SignalTable, np.ndarray, np.ndarray, dict, dict, np.ndarray]:
    links = tables.links
    acc = links["account"].to_numpy(np.int64)
    rel = pd.Categorical(links["rel"], categories=RELS).codes.astype(np.int64)
    sig_codes, _ = pd.factorize(links["signal"])
    node, uniq = pd.factorize(sig_codes.astype(np.int64) * len(RELS) + rel)
    node = node.astype(np.int64)
    n_nodes = len(uniq)
    first = np.zeros(n_nodes, dtype=np.int64)
    first[node[::-1]] = np.arange(len(node))[::-1]
    name_code, name_map = _codes(tables.accounts["name_key"])
    dob_code, dob_map = _codes(tables.accounts["dob_key"])
    n_name, name_pairs = _distinct_per_node(node, name_code[acc], n_nodes, len(name_map) + 1)
    n_dob, dob_pairs = _distinct_per_node(node, dob_code[acc], n_nodes, len(dob_map) + 1)
    t = tables.accounts["created_at"].to_numpy(np.float64)[acc] / MS_PER_DAY
    t_min = np.full(n_nodes, np.inf)
    t_max = np.full(n_nodes, -np.inf)
    np.minimum.at(t_min, node, t)
    np.maximum.at(t_max, node, t)
    table = SignalTable(
        link_node=node,
        rel_code=rel[first].astype(np.int16),
        signal=links["signal"].to_numpy(dtype=object)[first],
        deg=np.bincount(node, minlength=n_nodes),
        n_name=n_name,
        n_dob=n_dob,
        t_min=t_min,
        t_max=t_max,
    )
    return table, name_pairs, dob_pairs, name_map, dob_map, acc[first]


def rel_values(deg, n_name, n_dob, span) -> dict[str, np.ndarray]:
    """The columns of one signal's statistics that every account holding it shows (``_rel_block``); also
    what the live graph writes into earlier members when a new account joins the signal."""
    deg = np.asarray(deg, dtype=np.float64)
    others = np.maximum(deg - 1, 1)
    return {
        "deg": np.log1p(deg - 1),
        "names": np.log1p(np.asarray(n_name) - 1),
        "dobs": np.log1p(np.asarray(n_dob) - 1),
        "name_ratio": np.where(deg > 1, (np.asarray(n_name) - 1) / others, 0.0),
        "span": np.where(deg > 1, np.log1p(span), 0.0),
    }


def _rel_block(
    n: int, acc: np.ndarray, rel: np.ndarray, deg, n_name, n_dob, span, near, burst
) -> dict[str, np.ndarray]:
    """Per-signal-kind features of each account's own signal; the same formula for batch and new accounts."""
    out = {}
    deg = np.asarray(deg, dtype=np.float64)
    vals = {
        "has": np.ones_like(deg),
        **rel_values(deg, n_name, n_dob, span),
        "near": np.log1p(near),
        "burst": np.log1p(burst),
    }
    for k, v in vals.items():
        m = np.zeros((n, len(RELS)), dtype=np.float32)
        m[acc, rel] = v  # one signal per kind per application; a duplicate keeps the last
        for j, r in enumerate(RELS):
            out[f"{r.lower()}_{k}"] = m[:, j]
    return out


def _time_keys(node: np.ndarray, t_days: np.ndarray, t0_days: float) -> np.ndarray:
    return node * _T_SCALE + np.round((t_days - t0_days) * 86_400).astype(np.int64)


def _within(sorted_keys: np.ndarray, keys: np.ndarray, window_s: float) -> np.ndarray:
    """Links of the same signal within ``window_s`` seconds of each key (itself included if present)."""
    w = int(window_s)
    return np.searchsorted(sorted_keys, keys + w, side="right") - np.searchsorted(
        sorted_keys, keys - w, side="left"
    )


def _account_node(n: int, acc: np.ndarray, node: np.ndarray, rel: np.ndarray, code: int) -> np.ndarray:
    """Per account: its node of signal kind ``code`` (-1 if none or unknown)."""
    out = np.full(n, -1, dtype=np.int64)
    m = rel == code
    out[acc[m]] = node[m]
    return out


def _pair_counts(
    n: int, acc, node, rel, n_nodes: int, t_days: np.ndarray, t0_days: float, window_s: float
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per PAIR_BURSTS: other accounts with both of this account's signals within ``window_s``, and the
    sorted pair keys and time keys that let ``features_for_new`` count the same for a new account."""
    counts, keys, time_keys = [], [], []
    for ra, rb in PAIR_BURSTS:
        na = _account_node(n, acc, node, rel, REL_CODE[ra])
        nb = _account_node(n, acc, node, rel, REL_CODE[rb])
        ok = (na >= 0) & (nb >= 0)
        uniq, pair = np.unique(na[ok] * n_nodes + nb[ok], return_inverse=True)
        tk = _time_keys(pair.astype(np.int64), t_days[ok], t0_days)
        stk = np.sort(tk)
        c = np.zeros(n)
        c[ok] = _within(stk, tk, window_s) - 1
        counts.append(c)
        keys.append(uniq)
        time_keys.append(stk)
    return counts, keys, time_keys


def _pair_block(n: int, acc, rel, burst, pair_counts: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Applications from the same /24 within hours that live elsewhere (not the household), and those that
    also hold the same document template. Hub /24s are not cut here: a burst ring can push its residential
    /24 past ``hub_degree``; the /24's own degree is a feature next to these."""
    prefix_burst = np.zeros(n)
    m = rel == REL_CODE["FROM_PREFIX"]
    prefix_burst[acc[m]] = burst[m]
    same_address, same_template = pair_counts
    return {
        "prefix_burst_strangers": np.log1p(np.maximum(prefix_burst - same_address, 0)),
        "prefix_burst_template": np.log1p(same_template),
    }


def _face_block(
    n: int, tables: GraphTables, name_code: np.ndarray, dob_code: np.ndarray
) -> dict[str, np.ndarray]:
    sf = tables.same_face
    a = sf["src"].to_numpy(np.int64)
    b = sf["dst"].to_numpy(np.int64)
    s = sf["similarity"].to_numpy(np.float64)
    ends = np.concatenate([a, b])
    other = np.concatenate([b, a])
    sim = np.concatenate([s, s])
    cnt = np.bincount(ends, minlength=n).astype(np.float64)
    ssum = np.bincount(ends, weights=sim, minlength=n)
    smax = np.zeros(n)
    np.maximum.at(smax, ends, sim)
    diff_name = name_code[ends] != name_code[other]
    diff_dob = dob_code[ends] != dob_code[other]
    return {
        "face_n": np.log1p(cnt),
        "face_max_sim": smax,
        "face_mean_sim": np.where(cnt > 0, ssum / np.maximum(cnt, 1), 0.0),
        "face_other_name": np.log1p(np.bincount(ends, weights=diff_name, minlength=n)),
        "face_other_dob": np.log1p(np.bincount(ends, weights=diff_dob, minlength=n)),
        "face_other_both": np.log1p(np.bincount(ends, weights=diff_name & diff_dob, minlength=n)),
    }


def _loo_neighbour_block(
    n: int, acc: np.ndarray, node: np.ndarray, rare: np.ndarray, base: np.ndarray, sums, cnts
) -> dict[str, np.ndarray]:
    """Leave-one-out mean of neighbours' base values over each rare signal; max and mean across signals."""
    keep = rare[node]
    a, nd = acc[keep], node[keep]
    own = base[a]
    own_ok = ~np.isnan(own)
    s = sums[nd] - np.where(own_ok, own, 0.0)
    c = cnts[nd] - own_ok
    loo = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    out = {}
    for j, name in enumerate(NEIGHBOUR_BASE):
        v = loo[:, j]
        ok = ~np.isnan(v)
        mx = np.full(n, -np.inf)
        np.maximum.at(mx, a[ok], v[ok])
        tot = np.bincount(a[ok], weights=v[ok], minlength=n)
        k = np.bincount(a[ok], minlength=n)
        out[f"nb_max_{name}"] = np.where(k > 0, mx, np.nan)
        out[f"nb_mean_{name}"] = np.where(k > 0, tot / np.maximum(k, 1), np.nan)
    return out


def _components(n: int, acc, node, rare, sf: pd.DataFrame, n_nodes: int) -> np.ndarray:
    """Connected components of accounts joined by rare signals and face matches (hubs cut)."""
    keep = rare[node]
    rows = np.concatenate([acc[keep], sf["src"].to_numpy(np.int64)])
    cols = np.concatenate([n + node[keep], sf["dst"].to_numpy(np.int64)])
    g = sparse.coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n + n_nodes, n + n_nodes))
    _, labels = connected_components(g, directed=False)
    _, comp = np.unique(labels[:n], return_inverse=True)
    return comp.astype(np.int64)


def _comp_block(comp, comp_size, comp_names, comp_t_min, comp_t_max) -> dict[str, np.ndarray]:
    size = comp_size[comp].astype(np.float64)
    span = comp_t_max[comp] - comp_t_min[comp]
    return {
        "comp_size": np.log1p(size - 1),
        "comp_name_ratio": np.where(size > 1, (comp_names[comp] - 1) / np.maximum(size - 1, 1), 0.0),
        "comp_span": np.where(size > 1, np.log1p(span), 0.0),
        "comp_rate": np.where(size > 1, np.log1p((size - 1) / (span + 1.0)), 0.0),
    }


def compute_features(
    tables: GraphTables, config: FeatureConfig | None = None
) -> tuple[pd.DataFrame, FeatureState]:
    """One row per account (row order of ``tables.accounts``), float32 columns, NaN where unknown."""
    config = config or FeatureConfig()
    accts = tables.accounts
    n = len(accts)
    nodes, name_pairs, dob_pairs, name_map, dob_map, node_member = build_signal_table(tables)
    name_code = pd.Series(accts["name_key"]).map(name_map).fillna(0).to_numpy(np.int64)
    dob_code = pd.Series(accts["dob_key"]).map(dob_map).fillna(0).to_numpy(np.int64)
    acc = tables.links["account"].to_numpy(np.int64)
    node = nodes.link_node
    rel = nodes.rel_code[node].astype(np.int64)
    t_days = accts["created_at"].to_numpy(np.float64) / MS_PER_DAY
    t0_ms = int(accts["created_at"].min()) if n else 0
    keys = _time_keys(node, t_days[acc], t0_ms / MS_PER_DAY)
    time_keys = np.sort(keys)
    near = _within(time_keys, keys, config.near_days * 86_400) - 1
    burst = _within(time_keys, keys, config.burst_hours * 3600) - 1
    cols: dict[str, np.ndarray] = {}
    cols.update(
        _rel_block(
            n,
            acc,
            rel,
            nodes.deg[node],
            nodes.n_name[node],
            nodes.n_dob[node],
            (nodes.t_max - nodes.t_min)[node],
            near,
            burst,
        )
    )
    pair_counts, pair_keys, pair_time_keys = _pair_counts(
        n, acc, node, rel, nodes.n_nodes, t_days, t0_ms / MS_PER_DAY, config.burst_hours * 3600
    )
    cols.update(_pair_block(n, acc, rel, burst, pair_counts))
    cols.update(_face_block(n, tables, name_code, dob_code))
    rare = links_accounts(config, nodes.rel_code, nodes.deg)
    cols["n_signals"] = np.bincount(acc, minlength=n).astype(np.float64)
    cols["n_rare"] = np.bincount(acc[rare[node]], minlength=n).astype(np.float64)
    cols["n_hub"] = np.bincount(acc[nodes.deg[node] > config.hub_degree], minlength=n).astype(np.float64)
    ident = pd.Series(list(zip(accts["name_key"], accts["dob_key"], strict=True)))
    identity_counts = ident.value_counts().to_dict()
    cols["reuse"] = np.log1p(ident.map(identity_counts).to_numpy(np.float64) - 1)
    for c in ("liveness_score", "document_authenticity_score"):
        v = pd.to_numeric(accts[c], errors="coerce").to_numpy(np.float64)
        cols[c] = v
        cols[f"{c}_missing"] = np.isnan(v).astype(np.float64)
    base = np.column_stack([cols[c] for c in NEIGHBOUR_BASE])
    ok = ~np.isnan(base)
    sums = np.zeros((nodes.n_nodes, base.shape[1]))
    cnts = np.zeros((nodes.n_nodes, base.shape[1]))
    np.add.at(sums, node, np.where(ok, base, 0.0)[acc])
    np.add.at(cnts, node, ok[acc])
    cols.update(_loo_neighbour_block(n, acc, node, rare, base, sums, cnts))
    comp_link = rare & (nodes.deg <= config.comp_degree)
    comp = _components(n, acc, node, comp_link, tables.same_face, nodes.n_nodes)
    n_comp = int(comp.max(initial=-1)) + 1
    comp_size = np.bincount(comp, minlength=n_comp)
    m = int(name_code.max(initial=0)) + 1
    comp_names = np.bincount(_unique(comp * m + name_code) // m, minlength=n_comp)
    comp_t_min = np.full(n_comp, np.inf)
    comp_t_max = np.full(n_comp, -np.inf)
    np.minimum.at(comp_t_min, comp, t_days)
    np.maximum.at(comp_t_max, comp, t_days)
    cols.update(_comp_block(comp, comp_size, comp_names, comp_t_min, comp_t_max))
    frame = pd.DataFrame(cols).astype(np.float32)
    state = FeatureState(
        config=config,
        nodes=nodes,
        node_index={
            (RELS[r], s): i for i, (r, s) in enumerate(zip(nodes.rel_code, nodes.signal, strict=True))
        },
        name_pairs=name_pairs,
        dob_pairs=dob_pairs,
        name_mod=len(name_map) + 1,
        dob_mod=len(dob_map) + 1,
        node_member=node_member,
        name_codes=name_map,
        dob_codes=dob_map,
        time_keys=time_keys,
        t0_ms=t0_ms,
        identity_counts=identity_counts,
        node_base_sum=sums,
        node_base_cnt=cnts,
        component=comp,
        comp_size=comp_size,
        comp_names=comp_names,
        comp_t_min=comp_t_min,
        comp_t_max=comp_t_max,
        pair_keys=pair_keys,
        pair_time_keys=pair_time_keys,
        columns=list(frame.columns),
        pair_mod=nodes.n_nodes,
    )
    return frame, state


# the face inputs of the data contract reach the models only as SAME_FACE links
FACE_INPUT = "face_embedding"


def input_coverage(tables: GraphTables) -> dict[str, int]:
    """Per optional data-contract column the features derive from: how many accounts of the graph carry it.

    Every optional column may be absent (DESIGN.md §2), and a model trained without one has learnt nothing
    from it, so the artifact records what its graph held. A signal column counts the accounts linked to a
    signal of its kind (``ip`` also yields the /24, which is not counted apart); the upstream scores count
    non-null values; ``face_embedding`` (or ``selfie_path``) shows only as SAME_FACE links, so it counts the
    accounts with a face match, and a graph without any match records it absent."""
    links = tables.links
    per_rel = links.groupby("rel")["account"].nunique() if len(links) else pd.Series(dtype=np.int64)
    out = {s.column: int(per_rel.get(s.rel, 0)) for s in SIGNALS if s.column in KNOWN_COLUMNS}
    for c in OPTIONAL_FLOAT01:
        out[c] = int(pd.to_numeric(tables.accounts[c], errors="coerce").notna().sum())
    sf = tables.same_face
    out[FACE_INPUT] = len(np.union1d(sf["src"].to_numpy(np.int64), sf["dst"].to_numpy(np.int64)))
    return out


def feature_coverage(x: np.ndarray, columns: list[str]) -> dict[str, list[str]]:
    """Feature columns that carry nothing on these rows (the rows a model is fitted on): ``all_nan`` (no
    value at all, e.g. every liveness feature when no application has a liveness score) and ``constant`` (one
    value and no NaN, e.g. every device feature is 0 without device ids; a value and NaN are two, since
    missing is something a tree can split on). No model can learn from either; the models must still accept
    them, because the feature schema is the same whatever the inputs (``compute_features``)."""
    x = np.asarray(x)
    nan = np.isnan(x)
    lo = np.fmin.reduce(x, axis=0, initial=np.inf)  # fmin/fmax skip NaN
    hi = np.fmax.reduce(x, axis=0, initial=-np.inf)
    all_nan, constant = nan.all(axis=0), ~nan.any(axis=0) & (lo == hi)
    return {
        "all_nan": [c for c, m in zip(columns, all_nan, strict=True) if m],
        "constant": [c for c, m in zip(columns, constant, strict=True) if m],
    }


def non_linking_codes() -> np.ndarray:
    return np.array([REL_CODE[r] for r in NON_LINKING], dtype=np.int16)


def links_accounts(config: FeatureConfig, rel_code, deg) -> np.ndarray:
    """Does a signal of this kind and degree link accounts: shared, not a hub, of a linking kind (not a /24)?
    The one test behind rare signals, components, ring evidence and the real-time receptive field."""
    deg = np.asarray(deg)
    return (deg >= 2) & (deg <= config.hub_degree) & ~np.isin(rel_code, non_linking_codes())


def is_linking(state: FeatureState) -> np.ndarray:
    """Per signal node: may it link accounts?"""
    return links_accounts(state.config, state.nodes.rel_code, state.nodes.deg)


class _KeyLog:
    """Sorted int64 time keys (``node * T + seconds``) in two levels, a large merged array and a small fresh
    one: adding a decision's handful sorts only the fresh level, which is merged in every ``MERGE_AT`` keys.
    At each merge, keys more than ``horizon_s`` older than the newest are dropped: no later window reaches
    them, and the log stays the size of the traffic within the longest window."""

    MERGE_AT = 4096

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self.merged = np.zeros(0, np.int64)
        self.fresh = np.zeros(0, np.int64)
        self.newest = None

    def __len__(self) -> int:
        return len(self.merged) + len(self.fresh)

    def add(self, keys: np.ndarray) -> None:
        if not len(keys):
            return
        self.fresh = np.sort(np.concatenate([self.fresh, keys]))
        top = int((keys % _T_SCALE).max())
        self.newest = top if self.newest is None else max(self.newest, top)
        if len(self.fresh) >= self.MERGE_AT:
            both = np.concatenate([self.merged, self.fresh])
            self.merged = np.sort(both[(both % _T_SCALE) >= self.newest - self.horizon_s])
            self.fresh = np.zeros(0, np.int64)

    def within(self, keys: np.ndarray, window_s: float) -> np.ndarray:
        return _within(self.merged, keys, window_s) + _within(self.fresh, keys, window_s)


class RecentLinks:
    """Time keys of the links that accounts decided since ``FeatureState`` was computed hold to existing
    signal nodes, so that the time-window counts of later new accounts include them without a rebuild (a
    device or a /24 used by others in the last hours). Only existing nodes: a brand-new signal waits for the
    next rebuild. Not thread-safe: add and read from the thread that scores."""

    def __init__(self, config: FeatureConfig) -> None:
        horizon = max(config.near_days * 86_400, config.burst_hours * 3600)
        self.keys = _KeyLog(horizon)
        self.pairs = [_KeyLog(horizon) for _ in PAIR_BURSTS]
        # pairs of nodes the state had no key for: (node_a, node_b) -> seconds since t0 of each use
        self.new_pairs: list[dict[tuple[int, int], list[int]]] = [{} for _ in PAIR_BURSTS]

    def __len__(self) -> int:
        """Time keys held, across all the logs."""
        return len(self.keys) + sum(len(log) for log in self.pairs)

    def add(self, state: FeatureState, accounts, links) -> None:
        """Count the links of ``accounts``/``links`` (as ``features_for_new`` takes them) from now on."""
        n = len(accounts["created_at"])
        acc, rel, node = _link_nodes(state, links)
        t_days = np.asarray(accounts["created_at"], dtype=np.float64) / MS_PER_DAY
        t0 = state.t0_ms / MS_PER_DAY
        known = node >= 0
        self.keys.add(_time_keys(node[known], t_days[acc[known]], t0))
        seconds = np.round((t_days - t0) * 86_400).astype(np.int64)
        for log, new, (pos, found, na, nb) in zip(
            self.pairs, self.new_pairs, _pair_positions(state, n, acc, node, rel), strict=True
        ):
            log.add(_time_keys(pos[found].astype(np.int64), t_days[found], t0))
            for i in np.flatnonzero(~found & (na >= 0) & (nb >= 0)):
                new.setdefault((int(na[i]), int(nb[i])), []).append(int(seconds[i]))

    def new_pair_counts(
        self, j: int, mask, na, nb, t_days, state: FeatureState, window_s: float
    ) -> np.ndarray:
        """Uses within ``window_s`` of pairs the state had no key for (``add`` logged them)."""
        out = np.zeros(len(mask))
        seconds = np.round((t_days - state.t0_ms / MS_PER_DAY) * 86_400).astype(np.int64)
        for i in np.flatnonzero(mask):
            times = self.new_pairs[j].get((int(na[i]), int(nb[i])))
            if times:
                out[i] = sum(abs(t - int(seconds[i])) <= int(window_s) for t in times)
        return out


@dataclass
class NewFeatures:
    """Features of new accounts, and per new link the existing node (-1 if new) with its updated stats."""

    x: np.ndarray  # float32 [new accounts, len(columns)]
    columns: list[str]
    link_node: np.ndarray
    deg: np.ndarray
    n_name: np.ndarray
    n_dob: np.ndarray
    t_min: np.ndarray
    t_max: np.ndarray
    base: np.ndarray  # [new accounts, len(NEIGHBOUR_BASE)]

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.x, columns=self.columns)


def _member(pairs: np.ndarray, keys: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(pairs, keys)
    pos = np.minimum(pos, max(len(pairs) - 1, 0))
    return (pairs[pos] == keys) if len(pairs) else np.zeros(len(keys), dtype=bool)


def _pair_positions(state: FeatureState, n: int, acc, node, rel) -> list[tuple[np.ndarray, ...]]:
    """Per PAIR_BURSTS: each new account's position among the existing pair keys, whether it is there, and
    its two nodes (-1 where it has none). Nodes made after the keys (``graph.learn.live``) are never there."""
    out = []
    mod = state.pair_mod or state.nodes.n_nodes
    for (ra, rb), keys in zip(PAIR_BURSTS, state.pair_keys, strict=True):
        na = _account_node(n, acc, node, rel, REL_CODE[ra])
        nb = _account_node(n, acc, node, rel, REL_CODE[rb])
        key = na * mod + nb
        pos = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
        ok = (na >= 0) & (nb >= 0) & (na < mod) & (nb < mod)
        found = ok & (keys[pos] == key) if len(keys) else np.zeros(n, dtype=bool)
        out.append((pos, found, na, nb))
    return out


def _pair_counts_new(
    state: FeatureState, n: int, acc, node, rel, t_days, recent: RecentLinks | None
) -> list[np.ndarray]:
    """``_pair_counts`` of new accounts against the existing ones (``node`` is -1 for a new signal)."""
    out = []
    window = state.config.burst_hours * 3600
    for j, (pos, found, na, nb) in enumerate(_pair_positions(state, n, acc, node, rel)):
        c = np.zeros(n)
        tk = _time_keys(pos[found].astype(np.int64), t_days[found], state.t0_ms / MS_PER_DAY)
        c[found] = _within(state.pair_time_keys[j], tk, window)
        if recent is not None:
            c[found] += recent.pairs[j].within(tk, window)
            c += recent.new_pair_counts(j, ~found & (na >= 0) & (nb >= 0), na, nb, t_days, state, window)
        out.append(c)
    return out


def _link_nodes(state: FeatureState, links) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Account, kind code and existing node (-1 for a new signal) of each link."""
    acc = np.asarray(links["account"], dtype=np.int64)
    rel = np.array([REL_CODE[r] for r in links["rel"]], dtype=np.int64)
    node = np.array(
        [state.node_index.get((r, s), -1) for r, s in zip(links["rel"], links["signal"], strict=True)],
        dtype=np.int64,
    )
    return acc, rel, node


def features_for_new(
    state: FeatureState,
    accounts: pd.DataFrame | dict,
    links: pd.DataFrame | dict,
    same_face: pd.DataFrame | dict,
    name_of: np.ndarray,
    dob_of: np.ndarray,
    base_of: np.ndarray,
    recent: RecentLinks | None = None,
) -> NewFeatures:
    """Features of new accounts against the cached graph, as if each had been in it for the last full run.

    ``accounts``: new rows (``created_at``, ``name_key``, ``dob_key`` and the two document scores are read).
    ``links``: ``account`` (row in ``accounts``), ``rel``, ``signal``. ``same_face``: ``new`` (row in
    ``accounts``), ``existing`` (account index), ``similarity``. All three are mappings of column name to
    array (DataFrames work), so one request builds no DataFrame.
    ``name_of``/``dob_of``: name/dob codes of existing accounts; ``base_of``: their NEIGHBOUR_BASE values.
    New accounts are scored independently: they see the existing graph, not each other. ``recent`` adds the
    time keys of accounts decided since the state was computed to the time-window counts.
    """
    cfg = state.config
    nodes = state.nodes
    n = len(accounts["created_at"])
    acc, rel, node = _link_nodes(state, links)
    known = node >= 0
    kn = np.where(known, node, 0)
    name_code = np.array([state.name_codes.get(k, -1) for k in accounts["name_key"]], dtype=np.int64)
    dob_code = np.array([state.dob_codes.get(k, -1) for k in accounts["dob_key"]], dtype=np.int64)
    t_days = np.asarray(accounts["created_at"], dtype=np.float64) / MS_PER_DAY
    t = t_days[acc]
    name_keys, dob_keys = kn * state.name_mod + name_code[acc], kn * state.dob_mod + dob_code[acc]
    seen_name = _member(state.name_pairs, name_keys) | _member(state.name_fresh, name_keys)
    seen_dob = _member(state.dob_pairs, dob_keys) | _member(state.dob_fresh, dob_keys)
    new_name = ~seen_name | (name_code[acc] < 0)
    new_dob = ~seen_dob | (dob_code[acc] < 0)
    deg = np.where(known, nodes.deg[kn] + 1, 1)
    n_name = np.where(known, nodes.n_name[kn] + new_name, 1)
    n_dob = np.where(known, nodes.n_dob[kn] + new_dob, 1)
    span = np.where(known, np.maximum(nodes.t_max[kn], t) - np.minimum(nodes.t_min[kn], t), 0.0)
    keys = _time_keys(kn, t, state.t0_ms / MS_PER_DAY)
    near = np.where(known, _within(state.time_keys, keys, cfg.near_days * 86_400), 0)
    burst = np.where(known, _within(state.time_keys, keys, cfg.burst_hours * 3600), 0)
    if recent is not None:
        near = near + np.where(known, recent.keys.within(keys, cfg.near_days * 86_400), 0)
        burst = burst + np.where(known, recent.keys.within(keys, cfg.burst_hours * 3600), 0)
    cols: dict[str, np.ndarray] = {}
    cols.update(_rel_block(n, acc, rel, deg, n_name, n_dob, span, near, burst))
    pair_counts = _pair_counts_new(state, n, acc, node, rel, t_days, recent)
    cols.update(_pair_block(n, acc, rel, burst, pair_counts))
    # faces: partners are existing accounts
    fn = np.asarray(same_face["new"], dtype=np.int64)
    fe = np.asarray(same_face["existing"], dtype=np.int64)
    fs = np.asarray(same_face["similarity"], dtype=np.float64)
    cnt = np.bincount(fn, minlength=n).astype(np.float64)
    smax = np.zeros(n)
    np.maximum.at(smax, fn, fs)
    diff_name = name_of[fe] != name_code[fn]
    diff_dob = dob_of[fe] != dob_code[fn]
    cols.update(
        {
            "face_n": np.log1p(cnt),
            "face_max_sim": smax,
            "face_mean_sim": np.where(
                cnt > 0, np.bincount(fn, weights=fs, minlength=n) / np.maximum(cnt, 1), 0.0
            ),
            "face_other_name": np.log1p(np.bincount(fn, weights=diff_name, minlength=n)),
            "face_other_dob": np.log1p(np.bincount(fn, weights=diff_dob, minlength=n)),
            "face_other_both": np.log1p(np.bincount(fn, weights=diff_name & diff_dob, minlength=n)),
        }
    )
    rare_link = known & links_accounts(cfg, rel, deg)
    cols["n_signals"] = np.bincount(acc, minlength=n).astype(np.float64)
    cols["n_rare"] = np.bincount(acc[rare_link], minlength=n).astype(np.float64)
    cols["n_hub"] = np.bincount(acc[deg > cfg.hub_degree], minlength=n).astype(np.float64)
    ident = list(zip(accounts["name_key"], accounts["dob_key"], strict=True))
    cols["reuse"] = np.log1p(np.array([state.identity_counts.get(k, 0) for k in ident], dtype=np.float64))
    for c in ("liveness_score", "document_authenticity_score"):
        v = np.asarray(pd.to_numeric(accounts[c], errors="coerce"), dtype=np.float64)
        cols[c] = v
        cols[f"{c}_missing"] = np.isnan(v).astype(np.float64)
    # neighbours: the existing members of each rare signal (the new account is not among them)
    s = state.node_base_sum[kn[rare_link]].copy()
    c = state.node_base_cnt[kn[rare_link]]
    a = acc[rare_link]
    # a signal that the new account makes shared is one more rare signal of its one earlier member, as
    # batch counts it on the graph with the new account in
    first = nodes.deg[kn[rare_link]] == 1
    if first.any():
        member = state.node_member[kn[rare_link]][first]
        key = a[first] * (int(member.max()) + 1) + member
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        s[first, NEIGHBOUR_BASE.index("n_rare")] += cnt[inv]
    mean = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    for j, name in enumerate(NEIGHBOUR_BASE):
        v = mean[:, j]
        ok = ~np.isnan(v)
        mx = np.full(n, -np.inf)
        np.maximum.at(mx, a[ok], v[ok])
        k = np.bincount(a[ok], minlength=n)
        cols[f"nb_max_{name}"] = np.where(k > 0, mx, np.nan)
        cols[f"nb_mean_{name}"] = np.where(
            k > 0, np.bincount(a[ok], weights=v[ok], minlength=n) / np.maximum(k, 1), np.nan
        )
    # component: the union of the components the new account would join
    size = np.ones(n)
    names = np.ones(n)
    tmin, tmax = t_days.copy(), t_days.copy()
    comp_link = rare_link & (deg <= cfg.comp_degree)
    member_of = state.node_member[kn[comp_link]]
    ja = np.concatenate([acc[comp_link], fn]).astype(np.int64)
    jc = np.concatenate([state.component[member_of], state.component[fe]]).astype(np.int64)
    # each (account, component) once, first occurrences in order: numpy, not a DataFrame per request
    _, first = np.unique(ja * (int(jc.max(initial=0)) + 1) + jc, return_index=True)
    first.sort()
    ja, jc = ja[first], jc[first]
    size += np.bincount(ja, weights=state.comp_size[jc], minlength=n)
    names += np.bincount(ja, weights=state.comp_names[jc], minlength=n)
    np.minimum.at(tmin, ja, state.comp_t_min[jc])
    np.maximum.at(tmax, ja, state.comp_t_max[jc])
    ident_comp = np.arange(n)
    cols.update(_comp_block(ident_comp, size, names, tmin, tmax))
    x = np.column_stack([cols[c] for c in state.columns]).astype(np.float32)
    t_lo = np.where(known, np.minimum(nodes.t_min[kn], t), t)
    t_hi = np.where(known, np.maximum(nodes.t_max[kn], t), t)
    return NewFeatures(
        x,
        state.columns,
        node,
        deg,
        n_name,
        n_dob,
        t_lo,
        t_hi,
        np.column_stack([cols[c] for c in NEIGHBOUR_BASE]),
    )
