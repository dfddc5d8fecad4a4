"""What a running app holds: settings, keys, metrics, audit log, jobs, and the store and face index.

The store may be down when the app starts or go down later; the app still starts, ``/readyz`` says 503, and
each request that needs the store tries to reconnect (at most once every few seconds), so the service heals
itself when the store comes back instead of needing a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from neo4j import GraphDatabase

from api.http.audit import AuditLog
from api.http.auth import KeyRing
from api.http.batcher import DecisionBatcher
from api.http.errors import ApiError, StoreUnavailable
from api.http.jobs import JobRunner
from api.http.metrics import Metrics
from api.http.scorer import ScorerCache
from api.settings import ApiSettings
from embeddings.extract import (
    Extractor,
    ImageTooLarge,
    NoFaceFound,
    UnreadableImage,
    load_rgb,
    make_extractor,
)
from embeddings.index import FaceIndex
from graph.contract.pseudonymise import Pseudonymiser, load_key
from graph.ingest.load import ThresholdMissing, new_face_index, open_face_index, same_face_threshold
from graph.store import arcade
from graph.store.bolt import GraphStore

log = logging.getLogger("ringwatch.api")

RECONNECT_EVERY_S = 2.0
# the driver's own retry window for a managed transaction (its default is 30 s, and GraphStore retries on
# top): a request must fail fast with 503 when the store is down, not hang for minutes
DRIVER_RETRY_S = 1.0
STORE_ATTEMPTS = 2


def open_store(settings: ApiSettings) -> GraphStore:
    """Connect like every other process (``GraphStore.connect`` starts the embedded server if needed and
    checks credentials), then reopen with fail-fast driver settings for request serving."""
    probe = GraphStore.connect(settings, start_local=settings.neo4j_uri is None)
    database, dialect = probe.database, probe.dialect
    probe.close()
    if dialect == "neo4j":
        uri, auth = settings.neo4j_uri, (settings.neo4j_user, settings.neo4j_password.get_secret_value())
    else:
        uri = arcade.status(settings).uri
        auth = (settings.arcadedb_user, settings.arcadedb_password.get_secret_value())
    driver = GraphDatabase.driver(
        uri, auth=auth, max_transaction_retry_time=DRIVER_RETRY_S, connection_timeout=2.0,
        connection_acquisition_timeout=5.0,
    )  # fmt: skip
    return GraphStore(
        driver,
        database,
        dialect,
        batch_size=settings.batch_size,
        max_attempts=STORE_ATTEMPTS,
        retry_backoff_s=settings.store_retry_backoff_s,
    )


@dataclass
class Context:
    settings: ApiSettings
    keyring: KeyRing
    metrics: Metrics
    audit: AuditLog
    scoring: ScorerCache
    jobs: JobRunner = field(default_factory=JobRunner)
    decisions: DecisionBatcher | None = None  # set by create_app (it needs the decide function)
    warm_up: Callable[[GraphStore, FaceIndex, ApiSettings], float] | None = None  # set by create_app
    # one writer at a time: the store rules (DESIGN.md §5) and the face index both want a single writer
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _store: GraphStore | None = None
    _index: FaceIndex | None = None
    _extractor: Extractor | None = None
    _extract_lock: threading.Lock = field(default_factory=threading.Lock)
    _index_dirty: bool = False
    _pseudonymiser: Pseudonymiser | None = None
    _threshold: float | None = None
    _last_attempt: float = 0.0
    _connect_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, settings: ApiSettings) -> Context:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        ctx = cls(
            settings=settings,
            keyring=KeyRing(settings.api_keys),
            metrics=Metrics(),
            audit=AuditLog(settings.data_dir / "audit.jsonl"),
            scoring=ScorerCache(settings),
        )
        ctx.metrics.watch_scorer(ctx.scoring.gauges)
        return ctx

    def open(self) -> None:
        """Best effort at start-up; failures leave the app running but not ready."""
        self._try_connect(force=True)

    def _open_index(self, store: GraphStore) -> FaceIndex:
        """The saved index, made to agree with the faces stored on the accounts (the system of record):
        an unreadable or stale file is repaired from the store."""
        path = self.settings.face_index_path
        try:
            saved = FaceIndex.load(path) if path.exists() else None
        except (OSError, ValueError) as exc:
            log.error("face index unreadable; rebuilding", extra={"error_type": type(exc).__name__})
            saved = None
        index = open_face_index(self.settings, store, saved or new_face_index(self.settings))
        # the recall knobs are the server's settings, not whatever the saved file was built with
        index.nprobe, index.ef_search = self.settings.face_nprobe, self.settings.face_ef_search
        return index

    def _check_index_type(self, index: FaceIndex) -> None:
        """The saved index keeps the type it was built with; say so when the settings ask for another (the
        conversion rebuilds the whole index, minutes at 100k faces: ``ringwatch faces rebuild --type``)."""
        wanted = self.settings.face_index_type
        log.info("face index loaded", extra={"index_type": index.index_type, "faces": len(index)})
        if wanted != "auto" and index.index_type != wanted and len(index):
            log.warning(
                "face index type differs from RINGWATCH_FACE_INDEX_TYPE; run `ringwatch faces rebuild --type`",
                extra={"index_type": index.index_type, "configured": wanted},
            )

    def face_threshold(self) -> float:
        """The SAME_FACE threshold ingest links with: configured, else calibrated."""
        if self._threshold is None:
            try:
                self._threshold = same_face_threshold(self.settings)
            except ThresholdMissing as exc:
                raise ApiError(503, "face_threshold_missing", str(exc)) from exc
        return self._threshold

    def embed_image(self, data: bytes) -> np.ndarray:
        """Embed an uploaded selfie with the configured extractor (loaded on first use). One image at a time,
        decoding included: the detector is not safe to share between threads, and one decoded image at a
        time bounds memory. An image declaring more than ``max_image_pixels`` is refused from its header."""
        limit = self.settings.max_image_pixels
        with self._extract_lock:
            try:
                rgb = load_rgb(data, max_pixels=limit)
            except ImageTooLarge as exc:
                raise ApiError(
                    422,
                    "image_too_large",
                    f"the image has more than {limit} pixels (RINGWATCH_MAX_IMAGE_PIXELS)",
                ) from exc
            except UnreadableImage as exc:
                raise ApiError(422, "unreadable_image", "the upload is not a readable image") from exc
            try:
                if self._extractor is None:
                    self._extractor = make_extractor(self.settings.face_model, max_pixels=limit)
            except ImportError as exc:
                raise ApiError(
                    503, "extractor_unavailable", "install ringwatch[faces] for image search"
                ) from exc
            except (OSError, ValueError) as exc:  # RINGWATCH_FACE_MODEL names a missing or unusable model
                log.error("face extractor unavailable", extra={"error_type": type(exc).__name__})
                raise ApiError(503, "extractor_unavailable", "the face extractor cannot be loaded") from exc
            try:
                return np.asarray(self._extractor.extract(rgb), dtype=np.float32)
            except NoFaceFound as exc:
                raise ApiError(422, "no_face", "no face found in the image") from exc

    def pseudonymiser(self) -> Pseudonymiser:
        if self._pseudonymiser is None:
            self._pseudonymiser = Pseudonymiser(load_key(self.settings))
        return self._pseudonymiser

    def scorer(self):
        return self.scoring.get()

    def ring_info(self, ring_id: str) -> tuple[float | None, int | None]:
        return self.scoring.ring_info(ring_id)

    def run_batch_scoring(self, store: GraphStore) -> dict:
        return self.scoring.rescore_all(store)

    def mark_index_dirty(self) -> None:
        self._index_dirty = True

    def store(self) -> GraphStore:
        if self._store is None:
            self._try_connect()
        if self._store is None:
            raise StoreUnavailable()
        return self._store

    def index(self) -> FaceIndex:
        if self._index is None:
            raise ApiError(503, "index_unavailable", "the face index is not loaded")
        return self._index

    def ready(self) -> dict[str, bool]:
        store_ok = False
        try:
            store_ok = self.store().ping()
        except ApiError:
            store_ok = False
        return {"store": store_ok, "face_index": self._index is not None, "scorer": self.scoring.ready()}

    def close(self) -> None:
        """Graceful shutdown: finish queued decisions and the running job, persist the face index, then
        close the store."""
        if self.decisions is not None:
            self.decisions.stop()
        self.jobs.wait(timeout=30)
        with self.write_lock:
            if self._index is not None and self._index_dirty:
                self._index.save(self.settings.face_index_path)
                log.info("face index saved", extra={"faces": len(self._index)})
            if self._store is not None:
                self._store.close()
                self._store = None
        self.audit.close()

    def _try_connect(self, force: bool = False) -> None:
        with self._connect_lock:
            if self._store is not None:
                return
            now = time.monotonic()
            if not force and now - self._last_attempt < RECONNECT_EVERY_S:
                return
            self._last_attempt = now
            try:
                store = open_store(self.settings)
                store.ensure_schema()
                if self._index is None:
                    self._index = self._open_index(store)
                    self._check_index_type(self._index)
                    warm_s = self.warm_up(store, self._index, self.settings) if self.warm_up else 0.0
                    log.info("store and face index warmed up", extra={"seconds": round(warm_s, 2)})
                self._store = store
                log.info("store connected", extra={"dialect": store.dialect})
                self.scoring.load_in_background(store)
            except Exception as exc:  # any failure here means "not ready yet", reported by /readyz
                log.warning("store not reachable", extra={"error_type": type(exc).__name__})
