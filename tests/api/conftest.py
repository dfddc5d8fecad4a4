"""A real ``ringwatch serve`` (uvicorn) on a free port, against the session's embedded ArcadeDB.

Keys for every role are made the way operators make them (random key, SHA-256 entry in RINGWATCH_API_KEYS).
Small limits (batch, body, upload) keep the limit tests fast. The decision deadline is long here: the shared
server is not the one that tests admission control (tests/api/http/test_admission.py starts its own), and on
a busy test machine a pass can take longer than the production default.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from api.http.auth import Role, hash_key, new_key
from api.settings import ApiSettings

REPO = Path(__file__).resolve().parents[2]
FACE_DIM = 512
MAX_BATCH = 5
MAX_BODY = 200_000
MAX_UPLOAD = 300_000
DECISION_DEADLINE_MS = 60_000
START_TIMEOUT_S = 90
PSEUDONYM_KEY = "test-pseudonym-key-0123456789abcdef"
THRESHOLD = (
    0.45  # the generator's faces: genuine pairs about 0.69, impostors about 0.01 (graph.ingest.pipeline)
)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ApiServer:
    base_url: str
    keys: dict[str, str]  # role -> plaintext key
    settings: ApiSettings
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = None, **kw) -> httpx.Client:
        headers = {"X-API-Key": self.keys[role]} if role else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60, **kw)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_env(settings: ApiSettings, keys: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGWATCH_")}
    env.update(
        RINGWATCH_DATA_DIR=str(settings.data_dir),
        RINGWATCH_ARCADEDB_BOLT_PORT=str(settings.arcadedb_bolt_port),
        RINGWATCH_ARCADEDB_HTTP_PORT=str(settings.arcadedb_http_port),
        RINGWATCH_ARCADEDB_HOST=settings.arcadedb_host,
        RINGWATCH_ARCADEDB_DATABASE=settings.arcadedb_database,
        RINGWATCH_PSEUDONYM_KEY=PSEUDONYM_KEY,
        RINGWATCH_FACE_DIM=str(FACE_DIM),
        RINGWATCH_SAME_FACE_THRESHOLD=str(THRESHOLD),
        RINGWATCH_MAX_BATCH=str(MAX_BATCH),
        RINGWATCH_MAX_BODY_BYTES=str(MAX_BODY),
        RINGWATCH_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        RINGWATCH_DECISION_DEADLINE_MS=str(DECISION_DEADLINE_MS),
        RINGWATCH_API_KEYS=json.dumps([f"{role}:{hash_key(key)}" for role, key in keys.items()]),
        RINGWATCH_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def start_server(
    env: dict[str, str], log_path: Path, wait_ready: bool = True
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "api.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    path = "/readyz" if wait_ready else "/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base + path, timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"server not ready after {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@pytest.fixture(scope="session")
def free_port_fn():
    return _free_port


@pytest.fixture(scope="session")
def make_env():
    return server_env


@pytest.fixture(scope="session")
def role_keys() -> dict[str, str]:
    return {role.value: new_key() for role in Role}


@pytest.fixture
def launch(tmp_path):
    """Start extra servers with custom settings (e.g. a store that is down); stopped after the test."""
    started: list[subprocess.Popen] = []

    def _launch(env: dict[str, str], wait_ready: bool = True) -> tuple[subprocess.Popen, str]:
        proc, base = start_server(env, tmp_path / f"server{len(started)}.log", wait_ready=wait_ready)
        started.append(proc)
        return proc, base

    yield _launch
    for proc in started:
        stop_server(proc)


HISTORY = 1200
NEW = 60


@pytest.fixture(scope="package")
def bench_data(arcade_settings: ApiSettings):
    """A small generated population: history rows (with labels, to train on) and new applications."""
    from graph.synth import FaceParams, SynthConfig
    from graph.synth.dataset import generate

    apps, truth = generate(HISTORY + NEW, seed=11, config=SynthConfig(face=FaceParams(dim=FACE_DIM)))
    apps = apps.merge(truth[["application_id", "label", "ring_id"]], on="application_id")
    apps = apps.sort_values("created_at", kind="stable").reset_index(drop=True)
    return apps.iloc[:HISTORY].reset_index(drop=True), apps.iloc[HISTORY:].reset_index(drop=True), truth


def as_request(row) -> dict:
    """A generated row as the JSON body of POST /v1/applications."""
    out = {}
    for key, value in dict(row).items():
        if key in ("label", "ring_id") or value is None or (isinstance(value, float) and value != value):
            continue
        out[key] = [float(x) for x in value] if key == "face_embedding" else value
    return out


@pytest.fixture(scope="session")
def request_body():
    return as_request


@pytest.fixture(scope="package")
def api_server(arcade_settings: ApiSettings, role_keys, bench_data, tmp_path_factory) -> Iterator[ApiServer]:
    """One server for the package: history ingested, a model trained on it and batch scoring written back
    (as `ringwatch ingest`, `train` and `score` would), then `ringwatch serve` started on top."""
    from embeddings.index import FaceIndex
    from graph.ingest.load import ingest_records
    from graph.learn.hetero import GraphInput
    from graph.learn.scoring import score_all
    from graph.learn.splits import ring_groups
    from graph.learn.training import TrainConfig, save_artifact, train
    from graph.store.bolt import GraphStore
    from graph.store.export import export_tables
    from graph.store.writeback import write_back

    settings = arcade_settings.model_copy(
        update={
            "face_dim": FACE_DIM,
            "pseudonym_key": SecretStr(PSEUDONYM_KEY),
            "same_face_threshold": THRESHOLD,
        }
    )
    history, _, _ = bench_data
    for path in (settings.face_index_path, settings.data_dir / "audit.jsonl"):
        path.unlink(missing_ok=True)
    import shutil

    shutil.rmtree(settings.models_dir, ignore_errors=True)
    with GraphStore.connect(settings, start_local=False) as store:
        store.ensure_schema()
        store.delete_all()
        index = FaceIndex(FACE_DIM)
        records = [as_request(r) | {"label": int(r["label"])} for r in history.to_dict(orient="records")]
        ingest_records(records, settings, store, index)
        index.save(settings.face_index_path)
        graph = GraphInput(export_tables(store))
        ring_of = dict(zip(history["application_id"], history["ring_id"], strict=True))
        groups = ring_groups(
            graph.tables.accounts["id"].to_numpy(),
            graph.tables.accounts["id"].map(ring_of).to_numpy(dtype=object),
        )
        artifact = train(
            graph,
            graph.labels,
            groups,
            settings,
            # the rings of this small history come late: the latest quarter (train's default holdout)
            # holds most of them, and a model fitted on the few left finds no ring for the ring routes
            TrainConfig(models=("rules", "gbt"), split="random"),
            progress=lambda m: None,
        )
        save_artifact(artifact, settings.models_dir)
        write_back(store, score_all(graph, artifact), settings.batch_size)
    env = server_env(settings, role_keys)
    log_path = tmp_path_factory.mktemp("api-logs") / "server.log"
    proc, base = start_server(env, log_path)
    server = ApiServer(base, role_keys, settings, proc, log_path, env)
    try:
        yield server
    finally:
        stop_server(proc)
