"""Session fixtures: a real ArcadeDB over Bolt (and Neo4j when ``RINGWATCH_NEO4J_URI`` is set).

The ArcadeDB server is started once per test session, in a temporary data directory on free ports, tied to
this process (it stops itself if the session is killed) and stopped at the end. Store-backed tests take
``store`` or ``clean_store``; both are parametrised over the two servers, and the Neo4j half skips with
its reason when no Neo4j is configured.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graph.settings import Settings
from graph.store import arcade
from graph.store.bolt import GraphStore

NEO4J_ENV = "RINGWATCH_NEO4J_URI"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def arcade_test_settings(data_dir: Path) -> Settings:
    """Settings for a private embedded server: explicit values, so no RINGWATCH_* variable leaks in."""
    return Settings(
        data_dir=data_dir,
        neo4j_uri=None,
        arcadedb_bolt_port=free_port(),
        arcadedb_http_port=free_port(),
        arcadedb_host="localhost",
        arcadedb_heap="768m",
        arcadedb_database="ringwatch",
        batch_size=1000,
        store_retry_backoff_s=0.05,
    )


@pytest.fixture(scope="session")
def make_arcade_settings() -> Callable[[Path], Settings]:
    """Settings for a private embedded server in the given data dir (for tests that start and stop their own)."""
    return arcade_test_settings


@pytest.fixture(scope="session")
def arcade_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the session's running ArcadeDB (data under a temp dir, free ports)."""
    settings = arcade_test_settings(tmp_path_factory.mktemp("ringwatch-arcadedb"))
    arcade.start(settings, owner_pid=os.getpid())
    try:
        yield settings
    finally:
        arcade.stop(settings)


def _neo4j_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    if not os.environ.get(NEO4J_ENV):
        pytest.skip(f"{NEO4J_ENV} is not set: the Neo4j run of the store tests is skipped")
    return Settings(data_dir=tmp_path_factory.mktemp("ringwatch-neo4j"), batch_size=1000)


@pytest.fixture(scope="session", params=["arcadedb", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """A GraphStore with the schema in place; shared by the session, so tests must not assume it is empty."""
    if request.param == "neo4j":
        settings = _neo4j_settings(tmp_path_factory)
    else:
        settings = request.getfixturevalue("arcade_settings")
    graph_store = GraphStore.connect(settings, start_local=False)
    try:
        graph_store.ensure_schema()
        yield graph_store
    finally:
        graph_store.close()


@pytest.fixture
def clean_store(store: GraphStore) -> GraphStore:
    """The session store, emptied of data (schema kept) before the test."""
    store.delete_all()
    return store
