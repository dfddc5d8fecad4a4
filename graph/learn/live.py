"""The serving graph state, kept live: every decided account is folded into the cached ``FeatureState``.

A decision is worth most while a ring forms, and a ring that starts after the last batch job is made only of
accounts decided since. So each decided account updates, in place and in arrival order, what the next
decision's features read (``graph.learn.features.features_for_new``): new signal nodes, signal degrees,
distinct names and dates of birth per signal, first and last use, the time-window logs, identity reuse,
members' base values per signal, face partners, and linked components (union by rare signals and faces).
The features of the next account then come from the same code as batch over the graph as it stands.

What is not replayed: a signal that becomes a hub does not split the components it joined, and members'
own values (their degrees, their face counts) stay as they were when each was scored, while a batch over
the grown graph would recompute them. The batch job recomputes everything and the scorer is rebuilt.

Arrays grow by doubling (``Rows``), so folding an account costs what it touches, not the size of the graph;
the sorted name and date-of-birth key arrays take one insertion each.
"""

from __future__ import annotations

import numpy as np

from graph.learn.features import (
    MS_PER_DAY,
    REL_CODE,
    FeatureState,
    NewFeatures,
    _member,
    links_accounts,
    signal_stats_array,
)


class Rows:
    """A numpy array that grows at the end with amortised O(1) appends; ``view`` is its live part."""

    def __init__(self, a: np.ndarray) -> None:
        # room to grow from the start: the scorer is built in the background, so the copy is made there and
        # not by the first decision after each build
        self.buf = np.empty((len(a) + max(1024, len(a) // 8), *a.shape[1:]), a.dtype)
        self.buf[: len(a)] = a
        self.n = len(a)

    @property
    def view(self) -> np.ndarray:
        return self.buf[: self.n]

    def append(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=self.buf.dtype)
        k = len(rows)
        if self.n + k > len(self.buf):
            grown = np.empty((max(2 * len(self.buf), self.n + k, 16), *self.buf.shape[1:]), self.buf.dtype)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : self.n + k] = rows
        self.n += k
        return self.view


MERGE_AT = 4096
_NODE_FIELDS = ("rel_code", "signal", "deg", "n_name", "n_dob", "t_min", "t_max")


class LiveState:
    """Owns the growing arrays of one ``FeatureState`` and folds accounts into it."""

    def __init__(self, state: FeatureState, name_of: np.ndarray, dob_of: np.ndarray) -> None:
        self.state = state
        nodes = state.nodes
        self.node_rows = {f: Rows(getattr(nodes, f)) for f in _NODE_FIELDS}
        self.node_rows["base_sum"] = Rows(state.node_base_sum)
        self.node_rows["base_cnt"] = Rows(state.node_base_cnt)
        self.node_rows["member"] = Rows(state.node_member)
        self.comp_rows = {
            f: Rows(getattr(state, f)) for f in ("comp_size", "comp_names", "comp_t_min", "comp_t_max")
        }
        self.component = Rows(state.component)
        self.name_of = Rows(name_of)
        self.dob_of = Rows(dob_of)
        self._publish()

    # ---- codes -----------------------------------------------------------------------------------------
    def _code(self, key, kind: str) -> int:
        st = self.state
        codes = st.name_codes if kind == "name" else st.dob_codes
        if key is None or key != key:
            return 0
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(codes) + 1
            mod = getattr(st, f"{kind}_mod")
            if code >= mod:  # keys are node * mod + code: widen the modulus, order is kept
                wide = max(2 * mod, code + 1)
                for level in (f"{kind}_pairs", f"{kind}_fresh"):
                    keys = getattr(st, level)
                    setattr(st, level, (keys // mod) * wide + keys % mod)
                setattr(st, f"{kind}_mod", wide)
        return code

    def _seen(self, kind: str, keys: np.ndarray) -> np.ndarray:
        st = self.state
        return _member(getattr(st, f"{kind}_pairs"), keys) | _member(getattr(st, f"{kind}_fresh"), keys)

    def _add_keys(self, kind: str, keys: np.ndarray) -> None:
        """Into the fresh level; merged into the big one every ``MERGE_AT`` keys (one copy per merge)."""
        st = self.state
        fresh = getattr(st, f"{kind}_fresh")
        fresh = np.insert(fresh, np.searchsorted(fresh, keys), keys)
        if len(fresh) >= MERGE_AT:
            big = getattr(st, f"{kind}_pairs")
            setattr(st, f"{kind}_pairs", np.insert(big, np.searchsorted(big, fresh), fresh))
            fresh = np.zeros(0, np.int64)
        setattr(st, f"{kind}_fresh", fresh)

    def _nodes(self, rels, signals, position: int) -> np.ndarray:
        """The node of each (kind, signal); those the graph has never seen are made, empty, in one append."""
        st, r = self.state, self.node_rows
        out, new = [], []
        for rel, signal in zip(rels, signals, strict=True):
            found = st.node_index.get((rel, signal))
            if found is None:
                found = st.node_index[(rel, signal)] = r["deg"].n + len(new)
                new.append((rel, signal))
            out.append(found)
        if new:
            k = len(new)
            fresh = {
                "rel_code": [REL_CODE[rel] for rel, _ in new],
                "signal": [signal for _, signal in new],
                "deg": np.zeros(k),
                "n_name": np.zeros(k),
                "n_dob": np.zeros(k),
                "t_min": np.full(k, np.inf),
                "t_max": np.full(k, -np.inf),
                "member": np.full(k, position),
            }
            for f, v in fresh.items():
                r[f].append(np.array(v, dtype=object) if f == "signal" else v)
            r["base_sum"].append(np.zeros((k, r["base_sum"].buf.shape[1])))
            r["base_cnt"].append(np.zeros((k, r["base_cnt"].buf.shape[1])))
        return np.array(out, dtype=np.int64)

    def _publish(self) -> None:
        """Point the state at the live parts of its buffers (appends may have moved them)."""
        st, r = self.state, self.node_rows
        for f in _NODE_FIELDS:
            setattr(st.nodes, f, r[f].view)
        st.node_base_sum, st.node_base_cnt, st.node_member = (
            r["base_sum"].view,
            r["base_cnt"].view,
            r["member"].view,
        )
        for f, rows in self.comp_rows.items():
            setattr(st, f, rows.view)
        st.component = self.component.view

    # ---- the fold --------------------------------------------------------------------------------------
    def fold(self, account: dict, links: dict, partners: np.ndarray, nf: NewFeatures) -> np.ndarray:
        """Fold one new account (row 0 of ``account``/``links``, as ``features_for_new`` took them; ``nf`` its
        features; ``partners`` the positions of its face matches) in at the next position. Returns its signal
        nodes, in link order; the caller extends its own per-account and per-node arrays."""
        st = self.state
        position = self.component.n
        name = self._code(account["name_key"][0], "name")
        dob = self._code(account["dob_key"][0], "dob")
        self.name_of.append([name])
        self.dob_of.append([dob])
        nodes = self._nodes(links["rel"], links["signal"], position)
        self._publish()
        nodes_u = np.unique(nodes)
        t = float(account["created_at"][0]) / MS_PER_DAY
        nd = st.nodes
        for kind, code in (("name", name), ("dob", dob)):
            mod = getattr(st, f"{kind}_mod")
            keys = nodes_u * mod + code
            fresh = keys[~self._seen(kind, keys)]
            np.add.at(nd.n_name if kind == "name" else nd.n_dob, fresh // mod, 1)
            self._add_keys(kind, fresh)
        np.add.at(nd.deg, nodes_u, 1)
        nd.t_min[nodes_u] = np.minimum(nd.t_min[nodes_u], t)
        nd.t_max[nodes_u] = np.maximum(nd.t_max[nodes_u], t)
        ident = (account["name_key"][0], account["dob_key"][0])
        st.identity_counts[ident] = st.identity_counts.get(ident, 0) + 1
        b = nf.base[0]
        ok = ~np.isnan(b)
        st.node_base_sum[nodes_u] += np.where(ok, b, 0.0)
        st.node_base_cnt[nodes_u] += ok
        self._join(position, nodes_u, np.asarray(partners, dtype=np.int64), t)
        return nodes

    def _join(self, position: int, nodes: np.ndarray, partners: np.ndarray, t: float) -> None:
        """The account's linked component: the union of the components its rare signals and face partners
        are in, as ``features_for_new`` counts them for a new account."""
        st, cfg = self.state, self.state.config
        deg = st.nodes.deg[nodes]
        joins = links_accounts(cfg, st.nodes.rel_code[nodes], deg) & (deg <= cfg.comp_degree)
        members = np.concatenate([st.node_member[nodes[joins]], partners])
        members = members[members != position]
        roots = np.unique(st.component[members]) if len(members) else np.zeros(0, np.int64)
        c = self.comp_rows
        if not len(roots):
            root = c["comp_size"].n
            c["comp_size"].append([1])
            c["comp_names"].append([1])
            c["comp_t_min"].append([t])
            c["comp_t_max"].append([t])
            self.component.append([root])
            self._publish()
            return
        root = int(roots[0])
        self.component.append([root])
        self._publish()
        comp = st.component
        if len(roots) > 1:
            comp[np.isin(comp, roots[1:])] = root
        st.comp_size[root] = st.comp_size[roots].sum() + 1
        st.comp_t_min[root] = min(st.comp_t_min[roots].min(), t)
        st.comp_t_max[root] = max(st.comp_t_max[roots].max(), t)
        st.comp_names[root] = len(np.unique(self.name_of.view[comp == root]))

    def node_features(self, nodes: np.ndarray) -> np.ndarray:
        """``graph.learn.hetero.signal_node_features`` of these nodes, from the live statistics."""
        st = self.state
        nd = st.nodes
        stats = signal_stats_array(
            nd.deg[nodes], nd.n_name[nodes], nd.n_dob[nodes], nd.t_min[nodes], nd.t_max[nodes]
        )
        cnt = st.node_base_cnt[nodes]
        mean = np.where(cnt > 0, st.node_base_sum[nodes] / np.maximum(cnt, 1), 0.0)
        return np.concatenate([stats, mean.astype(np.float32)], axis=1)

    def linking(self, nodes: np.ndarray) -> np.ndarray:
        """``graph.learn.features.is_linking`` of these nodes."""
        st = self.state
        return links_accounts(st.config, st.nodes.rel_code[nodes], st.nodes.deg[nodes])
