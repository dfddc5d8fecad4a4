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
    """

    accounts: pd.DataFrame
    links: pd.DataFrame
    same_face: pd.DataFrame

    @property
    def n_accounts(self) -> int:
        return len(self.accounts)

    def account_index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.accounts["id"].tolist())}


def from_prepared(frame: pd.DataFrame, same_face: pd.DataFrame | None = None) -> GraphTables:
    """Build tables from a prepared frame (``graph.contract.prepare``). ``same_face`` holds application ids in
    ``src``/``dst`` and a ``similarity`` column."""
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
        sf = pd.DataFrame(
            {
                "src": np.array([], dtype=np.int64),
                "dst": np.array([], dtype=np.int64),
                "similarity": np.array([], dtype=np.float32),
            }
        )
    else:
        pos = pd.Series(np.arange(len(accounts)), index=accounts["id"])
        a = pos.reindex(same_face["src"]).to_numpy()
        b = pos.reindex(same_face["dst"]).to_numpy()
        ok = ~(np.isnan(a) | np.isnan(b))
        a, b = a[ok].astype(np.int64), b[ok].astype(np.int64)
        sf = pd.DataFrame(
            {
                "src": np.minimum(a, b),
                "dst": np.maximum(a, b),
                "similarity": same_face["similarity"].to_numpy()[ok].astype(np.float32),
            }
        )
        sf = sf[sf.src != sf.dst].drop_duplicates(["src", "dst"]).reset_index(drop=True)
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
    index = known | {str(r["application_id"]): n + k for k, r in enumerate(fresh)}
    src, dst, sim = [], [], []
    for a, b, s in pairs:
        ia, ib = index.get(str(a)), index.get(str(b))
        if ia is not None and ib is not None and ia != ib and max(ia, ib) >= n:  # old-old pairs are there
            src.append(min(ia, ib))
            dst.append(max(ia, ib))
            sim.append(s)
    sf = pd.DataFrame(
        {
            "src": np.array(src, dtype=np.int64),
            "dst": np.array(dst, dtype=np.int64),
            "similarity": np.array(sim, dtype=np.float32),
        }
    )
    same_face = pd.concat([tables.same_face, sf], ignore_index=True).drop_duplicates(["src", "dst"])
    return GraphTables(accounts=accounts, links=links, same_face=same_face.reset_index(drop=True))
