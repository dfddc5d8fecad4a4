"""One settings object for the whole service.

Everything configurable comes from environment variables with the ``RINGWATCH_`` prefix (or a ``.env``
file), so that the CLI, the API and the batch jobs agree without passing flags around.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RINGWATCH_", env_file=".env", extra="ignore")

    # where ringwatch keeps its state: embedded store, face index, models, keys
    data_dir: Path = Path("ringwatch-data")
    # demo mode generates and saves a pseudonymisation key instead of requiring one
    demo: bool = False
    # HMAC key for pseudonymising PII; required outside demo mode
    pseudonym_key: SecretStr | None = None
    # region assumed for phone numbers written without a country code
    default_phone_region: str = "US"
    # extra input columns kept as Account properties; others are ignored with one warning
    extra_columns: list[str] = Field(default_factory=list)

    # -- faces
    # dimension of face embeddings (512 for ArcFace-like models, 128 for dlib)
    face_dim: int = 512
    # cosine threshold for SAME_FACE links; None means "read the calibration file in data_dir"
    same_face_threshold: float | None = None
    # at most this many SAME_FACE links per face
    face_link_k: int = 20
    # face extractor for selfie_path: "dlib" (128-d, needs the faces extra) or a path to an ArcFace-style .onnx
    face_model: str = "dlib"
    # IVF cells probed per face search once the gallery is large (recall vs latency; see bench_faces.py)
    face_nprobe: int = 64
    # index for large galleries: "auto" (exact below 50k faces, then IVF-Flat), "flat", "ivf_flat" or "hnsw"
    # (faster 1:N at 1M, slower to grow); applies when an index is built, a saved index keeps its type
    face_index_type: Literal["auto", "flat", "ivf_flat", "hnsw"] = "auto"
    # HNSW search beam (recall vs latency; see bench_faces.py)
    face_ef_search: int = Field(256, gt=0)

    # -- graph store
    # Neo4j Bolt URI; when unset, ringwatch runs the embedded ArcadeDB itself
    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"  # Neo4j user
    neo4j_password: SecretStr = SecretStr("neo4j")  # Neo4j password
    neo4j_database: str = "neo4j"  # Neo4j database
    arcadedb_bolt_port: int = 7688  # embedded server's Bolt port
    arcadedb_http_port: int = 2481  # embedded server's HTTP port
    arcadedb_user: str = "root"  # ArcadeDB's Bolt user; Neo4j's default `neo4j` is refused
    # embedded server's root password, fixed when its data directory is first started
    arcadedb_password: SecretStr = SecretStr("ringwatch-local")
    arcadedb_database: str = "ringwatch"  # embedded database name
    arcadedb_heap: str = "2g"  # JVM heap of the embedded server
    # interface the embedded server binds (Bolt and HTTP); loopback unless you mean to expose it
    arcadedb_host: str = "localhost"
    # seconds to wait for Bolt after `db start` (a few when idle; far more on a busy machine)
    arcadedb_start_timeout: float = 120.0
    # seconds between SIGTERM and SIGKILL on `db stop`
    arcadedb_stop_timeout: float = 30.0
    # rows per write transaction (client-side UNWIND batches)
    batch_size: int = 5000
    # rows prepared and loaded at a time by `ringwatch ingest`; bounds memory on large files
    ingest_chunk_rows: int = 100_000
    # attempts per write transaction (transient errors, commit-time constraint conflicts), with backoff
    store_max_attempts: int = 5
    store_retry_backoff_s: float = 0.2  # first retry backoff in seconds; doubles each attempt

    # -- scoring
    # torch threads for the GNN (1 was fastest on a small, shared machine)
    torch_threads: int = 1
    # wall-clock seconds for GNN training (unset: no limit); it then stops at its best checkpoint so far, says so
    gnn_time_budget_s: float | None = None

    # share of honest held-out applicants allowed above the decline threshold
    target_fpr: float = 0.005
    # share of honest held-out applicants allowed above the review threshold
    review_fpr: float = 0.02

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "arcadedb"

    @property
    def face_index_path(self) -> Path:
        return self.data_dir / "faces.index"

    @property
    def face_calibration_path(self) -> Path:
        return self.data_dir / "face_calibration.json"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"
