"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): check that they parse and agree
with the code they deploy: the settings they set exist, the command they run exists, Neo4j is wired as the
official image documents it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.cli.main import app
from api.settings import ApiSettings as Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_neo4j_service_follows_the_image_documentation(compose: dict) -> None:
    neo4j = compose["services"]["neo4j"]
    assert neo4j["image"] == "neo4j:5-community"
    env = neo4j["environment"]
    assert re.fullmatch(r"neo4j/\$\{NEO4J_PASSWORD:\?.+\}", env["NEO4J_AUTH"])  # user/password, from the env
    # settings as NEO4J_<name>, '.' -> '_', '_' -> '__'
    for key in (
        "NEO4J_server_memory_heap_initial__size",
        "NEO4J_server_memory_heap_max__size",
        "NEO4J_server_memory_pagecache_size",
    ):
        assert key in env
    mounts = {volume.split(":")[1] for volume in neo4j["volumes"]}
    assert {"/data", "/logs"} <= mounts
    assert "7687" in " ".join(neo4j["ports"]) and "7474" in " ".join(neo4j["ports"])
    assert neo4j["healthcheck"]["test"][0] == "CMD-SHELL"


def test_api_service_points_at_neo4j_with_settings_that_exist(compose: dict) -> None:
    api = compose["services"]["api"]
    assert api["depends_on"] == {"neo4j": {"condition": "service_healthy"}}
    assert api["build"] == "."
    env = api["environment"]
    assert env["RINGWATCH_NEO4J_URI"] == "bolt://neo4j:7687"
    fields = set(Settings.model_fields)
    for key in env:
        assert key.startswith("RINGWATCH_") and key.removeprefix("RINGWATCH_").lower() in fields, key
    assert (
        env["RINGWATCH_NEO4J_PASSWORD"]
        == compose["services"]["neo4j"]["environment"]["NEO4J_AUTH"].split("/", 1)[1]
    )
    assert api["command"][:2] == ["ringwatch", "serve"] and "0.0.0.0" in api["command"]
    assert set(compose["volumes"]) >= {"neo4j-data", "neo4j-logs", "ringwatch-data"}


def test_the_command_the_image_runs_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    cmd = re.search(r'^CMD \["ringwatch", "(\w+)", (.*)\]$', dockerfile, flags=re.MULTILINE)
    assert cmd, "CMD must run `ringwatch <command> ...`"
    result = CliRunner().invoke(app, [cmd.group(1), "--help"])
    assert result.exit_code == 0 and "--host" in result.output
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".env", ".git"} <= set(ignored)
