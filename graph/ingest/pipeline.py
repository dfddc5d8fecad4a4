"""The in-memory road from an applications table to ``GraphTables``, without the store.

Used by the evaluation harness, the benchmarks and the tests: prepare (validate, normalise, pseudonymise),
link duplicate faces exactly (``graph.ingest.face_links``), and build the tables. The store road
(``graph.ingest.load`` then ``graph.store.export``) gives the same tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from embeddings.calibrate import calibrate_identities, save_calibration
from graph.contract.prepare import PreparedBatch, prepare, prepare_file
from graph.contract.pseudonymise import Pseudonymiser
from graph.ingest.face_links import new_face_pairs
from graph.ingest.load import same_face_threshold
from graph.settings import Settings
from graph.synth.faces import sample_embeddings
from graph.tables import GraphTables, from_prepared


def calibrate_synthetic_faces(settings: Settings, gallery_size: int, seed: int = 0) -> float:
    """Synthetic data has no labelled real faces, so calibrate on a fresh draw from the generator's face
    model (another seed than the data it will link) and save it where ingest and the API look for it."""
    emb, identity = sample_embeddings(20_000, settings.face_dim, seed=seed + 7919, dup_rate=0.3)
    cal = calibrate_identities(emb, identity, gallery_size=gallery_size, seed=seed)
    save_calibration(cal, settings.face_calibration_path)
    return cal.same_face_threshold


def face_pairs(faces: np.ndarray, ids: np.ndarray, threshold: float, k: int = 20) -> pd.DataFrame:
    """SAME_FACE pairs (``embeddings.pairs``) with cosine ``similarity`` >= threshold.

    The same exact linking as the store road (``graph.ingest.face_links``), with an empty gallery."""
    return new_face_pairs(list(ids), faces, (), threshold, k)


def tables_from_batch(batch: PreparedBatch, settings: Settings) -> GraphTables:
    pairs = face_pairs(batch.faces, batch.face_ids, same_face_threshold(settings), settings.face_link_k)
    return from_prepared(batch.frame, pairs)


def tables_from_frame(raw: pd.DataFrame, settings: Settings, pseudonymiser: Pseudonymiser) -> GraphTables:
    return tables_from_batch(prepare(raw, settings, pseudonymiser), settings)


def tables_from_file(path: str | Path, settings: Settings) -> GraphTables:
    return tables_from_batch(prepare_file(path, settings), settings)
