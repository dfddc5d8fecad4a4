"""The whole identity graph out of the store as ``GraphTables`` (and on to PyG ``HeteroData``).

One read query streams every account, in one read transaction: the driver pulls ``page`` records at a time
and Python turns each chunk into table columns while the server computes the next. Memory stays bounded by a
chunk plus the growing tables. The query has no predicate: an earlier version paged through windows of the
indexed ``Account.created_at``, and ArcadeDB served each window by scanning the whole label, so a page cost
a scan of every account however few it returned, and the export's server time grew with the square of the
graph.

The shape of a record was measured on a 10k-account graph on the embedded ArcadeDB (two runs, loaded
machine). Most of the client's time went into the pure-Python Bolt decoder, which pays per record and per
value, so:

- an account comes back as **one list** (its properties, links and face partners);
- an account's signal links are **one string**, ``SEP`` + ``"TYPE id"`` per link, from one traversal of its
  outgoing relationships (``reduce`` on the server), split on the client by a few C-level ``join``/``split``
  calls per chunk, rather than nine lists from nine typed traversals.

Against the previous shape (eight properties and nine lists per account), this cut the client's CPU for an
export to a fraction and the server's too. Most of what is left on the client is the eight account
properties; the ``neo4j-rust-ext`` decoder takes more off.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

import numpy as np
import pandas as pd
from tqdm import tqdm

from graph import schema
from graph.store.bolt import GraphStore
from graph.tables import ACCOUNT_COLUMNS, GraphTables, account_positions, same_face_rows

PAGE = 10_000
RELS = tuple(s.rel for s in schema.SIGNALS)
# account properties, then the signal links, then the SAME_FACE partners; relationships to other accounts
# (SAME_FACE) are left out of the links, those to other labels (MEMBER_OF a Ring) are dropped by type
_ALL = (
    "MATCH (a:Account) RETURN ["
    + ", ".join(f"a.{c}" for c in ACCOUNT_COLUMNS)
    + ", reduce(t = '', x IN [(a)-[r]->(s) WHERE NOT s:Account AND s.id IS NOT NULL | type(r) + ' ' + s.id]"
    + " | t + $sep + x)"
    + f", [(a)-[r:{schema.SAME_FACE}]->(b) | [b.id, r.similarity]]"
    + "] AS account"
)
# between an account's links: ids are pseudonyms and ring ids (hex), never control characters
SEP = "\x1f"
_CREATED = ACCOUNT_COLUMNS.index("created_at")
_LINKS = len(ACCOUNT_COLUMNS)
_FACES = _LINKS + 1


def export_tables(store: GraphStore, page: int = PAGE, progress: bool = False) -> GraphTables:
    """Accounts, signal links and SAME_FACE pairs, with account index = row position; ``page`` records are
    pulled and converted at a time."""
    return store.read_chunks(_ALL, lambda chunks: _tables(chunks, progress), chunk=page, sep=SEP)


def _tables(chunks: Iterator[list[tuple]], progress: bool) -> GraphTables:
    """Build the tables from chunks of records (called afresh if the read transaction is retried)."""
    accounts: dict[str, list] = {c: [] for c in ACCOUNT_COLUMNS}
    link_acc: list[np.ndarray] = []
    link_rel: list[np.ndarray] = []
    link_sig: list[np.ndarray] = []
    face_src: list[np.ndarray] = []
    face_dst: list[str] = []
    face_sim: list[float] = []
    rel_index = pd.Index(RELS)
    bar = tqdm(desc="export", unit="account", disable=not progress)
    for records in chunks:
        # an account without created_at is a stub no ingest wrote: left out, as the windowed export did (this
        # filter is on the client: a predicate on created_at could make the server use its slow index scan)
        rows = [record[0] for record in records if record[0][_CREATED] is not None]
        first = len(accounts["id"])
        here = np.arange(first, first + len(rows), dtype=np.int64)
        cols = list(zip(*rows, strict=True))
        for k, c in enumerate(ACCOUNT_COLUMNS):
            accounts[c] += cols[k]
        acc, rel, sig = _split_links(cols[_LINKS], here, rel_index)
        link_acc.append(acc)
        link_rel.append(rel)
        link_sig.append(sig)
        faces = cols[_FACES]
        counts = np.fromiter(map(len, faces), dtype=np.int64, count=len(faces))
        if counts.sum():
            face_src.append(np.repeat(here, counts))
            for other, sim in chain.from_iterable(faces):
                face_dst.append(other)
                face_sim.append(np.nan if sim is None else sim)
        bar.update(len(rows))
    bar.close()
    acc_frame = _account_frame(accounts)
    codes = np.concatenate(link_rel) if link_rel else np.zeros(0, np.int8)
    links = pd.DataFrame(
        {
            "account": np.concatenate(link_acc) if link_acc else np.zeros(0, np.int64),
            "rel": np.asarray(RELS, dtype=object)[codes],
            "signal": np.concatenate(link_sig) if link_sig else np.zeros(0, object),
        }
    )
    src = np.concatenate(face_src) if face_src else np.zeros(0, np.int64)
    return GraphTables(
        acc_frame, links, same_face_rows(src, account_positions(acc_frame, face_dst), face_sim)
    )


def export_heterodata(store: GraphStore, page: int = PAGE, progress: bool = False) -> tuple:
    """``(HeteroData, IdMaps)`` for the whole graph, via ``graph.learn.hetero.to_heterodata``."""
    from graph.learn.hetero import to_heterodata

    return to_heterodata(export_tables(store, page=page, progress=progress))


def _split_links(
    packed: tuple[str, ...], here: np.ndarray, rel_index: pd.Index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account index, relationship code, signal id) of one chunk: each account's ``SEP``-led ``"TYPE id"``
    items, split with a few C-level ``join``/``split`` calls rather than a Python loop over the links."""
    counts = np.fromiter((p.count(SEP) for p in packed), dtype=np.int64, count=len(packed))
    items = "".join(packed).split(SEP)[1:]
    parts = " ".join(items).split(" ")
    if len(parts) == 2 * len(items):
        types, ids = parts[0::2], parts[1::2]
    else:  # some id holds a space: split each item at its first one
        types = [x.partition(" ")[0] for x in items]
        ids = [x.partition(" ")[2] for x in items]
    codes = rel_index.get_indexer(types) if items else np.zeros(0, np.int64)
    ok = codes >= 0
    return np.repeat(here, counts)[ok], codes[ok].astype(np.int8), np.asarray(ids, dtype=object)[ok]


def _account_frame(accounts: dict[str, list]) -> pd.DataFrame:
    acc = pd.DataFrame({"id": pd.Series(accounts["id"], dtype=object)})
    acc["created_at"] = np.asarray(accounts["created_at"], dtype=np.int64)
    for c in ("name_key", "dob_key"):
        acc[c] = pd.Series(accounts[c], dtype=object)
    acc["birth_year"] = (
        pd.to_numeric(pd.Series(accounts["birth_year"]), errors="coerce").fillna(0).astype(np.int64)
    )
    for c in ("liveness_score", "document_authenticity_score", "label"):
        acc[c] = pd.to_numeric(pd.Series(accounts[c], dtype=object), errors="coerce").astype(float)
    return acc[list(ACCOUNT_COLUMNS)]
