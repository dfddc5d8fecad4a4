"""The identity graph as three plain tables.

Both roads into scoring meet here: export from the store (``graph.store.export``) and the in-memory path from a
prepared batch (``from_prepared``, used by tests and the evaluation harness). Keeping one shape means the
features and models never care where the graph came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from graph.schema import SIGNALS

ACCOUNT_COLUMNS = (
    "id",
    "created_at",  # int64 epoch milliseconds, UTC
    "name_key",
    "dob_key",
    "birth_year",
    "liveness_score",
    "document_authenticity_score",
    "label",  # float: 1.0, 0.0, or NaN when unknown
)


@dataclass
class GraphTables:
    """accounts: one row per account, row position = account index, columns ``ACCOUNT_COLUMNS``.
    links: ``account`` (int index), ``rel`` (relationship type from ``schema.SIGNALS``), ``signal`` (pseudonym).
    same_face: ``src``, ``dst`` (int indices, src < dst) and ``similarity`` (cosine).

    ``same_face`` holds the SAME_FACE pairs of ``embeddings.pairs`` over account positions, not ids (hence
    ``src``/``dst`` rather than ``a``/``b``): features, rings and the GNN index arrays with them. Pairs of ids
    become these rows through ``account_positions`` then ``same_face_rows``.
    """

    accounts: pd.DataFrame
    links: pd.DataFrame
    same_face: pd.DataFrame

    @property
    def n_accounts(self) -> int:
        return len(self.accounts)

    def account_index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.accounts["id"].tolist())}


def account_positions(accounts: pd.DataFrame, ids) -> np.ndarray:
    """Row positions of application ``ids`` among ``accounts``, -1 for an id that is not an account."""
    return pd.Index(accounts["id"]).get_indexer(pd.Index(ids, dtype=object)).astype(np.int64)


def same_face_rows(src, dst, similarity) -> pd.DataFrame:
    """``GraphTables.same_face`` rows from the positions of both faces' accounts: a pair with an end that
    is no account (-1) or on one account is dropped, each is ordered ``src < dst`` and kept once (the
    first)."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    s = np.asarray(similarity, dtype=np.float32)
    ok = (src >= 0) & (dst >= 0) & (src != dst)
    src, dst, s = src[ok], dst[ok], s[ok]
    sf = pd.DataFrame({"src": np.minimum(src, dst), "dst": np.maximum(src, dst), "similarity": s})
    return sf.drop_duplicates(["src", "dst"], ignore_index=True)


def from_prepared(frame: pd.DataFrame, same_face: pd.DataFrame | None = None) -> GraphTables:
    """Build tables from a prepared frame (``graph.contract.prepare``). ``same_face``: pairs of application
    ids (``embeddings.pairs``)."""
    accounts = pd.DataFrame({c: frame[c] if c in frame else np.nan for c in ACCOUNT_COLUMNS})
    accounts["id"] = frame["application_id"].to_numpy()
    accounts = accounts.reset_index(drop=True)
    if "label" in frame:
        accounts["label"] = pd.to_numeric(frame["label"], errors="coerce").astype(float).to_numpy()
    parts = []
    for sig in SIGNALS:
        if sig.column not in frame:
            continue
        col = frame[sig.column].to_numpy()
        mask = pd.notna(col)
        idx = np.flatnonzero(mask)
        parts.append(pd.DataFrame({"account": idx, "rel": sig.rel, "signal": col[mask]}))
    links = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"account": [], "rel": [], "signal": []})
    )
    if same_face is None or len(same_face) == 0:
        sf = same_face_rows((), (), ())
    else:
        sf = same_face_rows(
            account_positions(accounts, same_face["a"]),
            account_positions(accounts, same_face["b"]),
            same_face["similarity"],
        )
    return GraphTables(accounts=accounts, links=links, same_face=sf)


def append_prepared(
    tables: GraphTables, rows: list[dict], pairs: list[tuple[str, str, float]]
) -> GraphTables:
    """``tables`` plus prepared rows (dicts from ``graph.contract.prepare.prepare_rows``) whose ids it lacks, with their
    signal links and the SAME_FACE ``pairs`` (application ids) that touch them: what the real-time scorer
    folds in between batch scoring jobs. Rows already present (updated or re-sent ids) are left to the next
    job, which reads the store."""
    known = tables.account_index()
    fresh, seen = [], set()
    for r in rows:
        i = str(r["application_id"])
        if i not in known and i not in seen:
            fresh.append(r)
            seen.add(i)
    if not fresh:
        return tables
    n = tables.n_accounts
    frame = pd.DataFrame({c: [r.get(c) for r in fresh] for c in fresh[0]})
    add = from_prepared(frame)
    accounts = pd.concat([tables.accounts, add.accounts], ignore_index=True)
    links = pd.concat(
        [tables.links, add.links.assign(account=add.links["account"].to_numpy(np.int64) + n)],
        ignore_index=True,
    )
    ia = account_positions(accounts, [str(p[0]) for p in pairs])
    ib = account_positions(accounts, [str(p[1]) for p in pairs])
    s = np.array([p[2] for p in pairs], dtype=np.float32)
    touches = np.maximum(ia, ib) >= n  # old-old pairs are there
    sf = same_face_rows(ia[touches], ib[touches], s[touches])
    same_face = pd.concat([tables.same_face, sf], ignore_index=True).drop_duplicates(["src", "dst"])
    return GraphTables(accounts=accounts, links=links, same_face=same_face.reset_index(drop=True))
