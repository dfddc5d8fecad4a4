"""One settings object for the whole service.

Everything configurable comes from environment variables with the ``RINGWATCH_`` prefix (or a ``.env``
file), so that the CLI, the API and the batch jobs agree without passing flags around.
"""

from __future__ import annotations

from pathlib import Path

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
    default_phone_region: str = "US"
    # extra input columns kept as Account properties; others are ignored with one warning
    extra_columns: list[str] = Field(default_factory=list)

    # face embeddings
    face_dim: int = 512
    # cosine threshold for SAME_FACE links; None means "read the calibration file in data_dir"
    same_face_threshold: float | None = None
    face_link_k: int = 20
    # face extractor for selfie_path: "dlib" (128-d, needs the faces extra) or a path to an ArcFace-style .onnx
    face_model: str = "dlib"
    # IVF cells probed per face search once the gallery is large (recall vs latency; see bench_faces.py)
    face_nprobe: int = 64

    # graph store: Neo4j when a URI is set, otherwise the managed embedded ArcadeDB
    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("neo4j")
    neo4j_database: str = "neo4j"
    arcadedb_bolt_port: int = 7688
    arcadedb_http_port: int = 2481
    arcadedb_user: str = "root"  # ArcadeDB's Bolt user; Neo4j's default `neo4j` is refused
    arcadedb_password: SecretStr = SecretStr("ringwatch-local")
    arcadedb_database: str = "ringwatch"
    arcadedb_heap: str = "2g"
    # interface the embedded server binds (Bolt and HTTP); loopback unless you mean to expose it
    arcadedb_host: str = "localhost"
    # seconds to wait for Bolt after `db start` (3-5 s idle; more on a busy machine)
    arcadedb_start_timeout: float = 120.0
    # seconds between SIGTERM and SIGKILL on `db stop`
    arcadedb_stop_timeout: float = 30.0
    batch_size: int = 5000
    # rows prepared and loaded at a time by `ringwatch ingest`; bounds memory on large files
    ingest_chunk_rows: int = 100_000
    # attempts per write transaction (transient errors, commit-time constraint conflicts), with backoff
    store_max_attempts: int = 5
    store_retry_backoff_s: float = 0.2

    # scoring: torch threads for the GNN (1 is fastest on a small, shared machine)
    torch_threads: int = 1

    # decisions
    target_fpr: float = 0.005
    review_fpr: float = 0.02

    # API
    api_keys: list[str] = Field(
        default_factory=list,
        description="entries 'role:sha256hex' (hashed at rest); roles: ingest, investigator, admin",
    )
    max_batch: int = 1000
    max_body_bytes: int = 2_000_000
    log_level: str = "INFO"

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
