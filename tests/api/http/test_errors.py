"""Bad input and a down store: every answer is a 4xx/503 with the error envelope, never a 500."""

from __future__ import annotations

import json
import time

import httpx
import pytest

MAX_BATCH = 5  # tests/api/conftest.py
MAX_BODY = 200_000


def _valid(app_id: str = "err-1") -> dict:
    return {"application_id": app_id, "created_at": "2026-01-02T03:04:05Z", "full_name": "Ada Lovelace",
            "date_of_birth": "1990-12-10"}  # fmt: skip


def _assert_envelope(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"]
    if code:
        assert err["code"] == code
    return err


def test_malformed_bodies(api_server) -> None:
    with api_server.client("ingest") as c:
        broken = c.post(
            "/v1/applications", content=b'{"application_id": ', headers={"content-type": "application/json"}
        )
        wrong_type = c.post("/v1/applications", json={**_valid(), "liveness_score": "high"})
        out_of_range = c.post("/v1/applications", json={**_valid(), "liveness_score": 1.5})
        missing = c.post("/v1/applications", json={"application_id": "x"})
        unknown = c.post("/v1/applications", json={**_valid(), "favourite_colour": "blue"})
        bad_date = c.post("/v1/applications", json={**_valid(), "date_of_birth": "31/12/1990"})
        not_object = c.post("/v1/applications", json=[1, 2, 3])
        empty_batch = c.post("/v1/applications:batch", json={"applications": []})
    for r in (broken, wrong_type, out_of_range, missing, unknown, bad_date, not_object, empty_batch):
        err = _assert_envelope(r, 422, "invalid_request")
        assert "details" in err
    assert "liveness_score" in wrong_type.json()["error"]["message"]
    # validation errors never echo what was sent (it may be PII)
    assert "Ada Lovelace" not in missing.text + unknown.text + bad_date.text


def test_oversized_batch_is_413(api_server) -> None:
    apps = [_valid(f"big-{i}") for i in range(MAX_BATCH + 1)]
    with api_server.client("ingest") as c:
        r = c.post("/v1/applications:batch", json={"applications": apps})
    _assert_envelope(r, 413, "batch_too_large")


def test_oversized_body_is_413_declared_and_streamed(api_server) -> None:
    big = json.dumps({**_valid(), "address": "x" * (MAX_BODY + 10)}).encode()

    def chunks():
        for i in range(0, len(big), 16_384):
            yield big[i : i + 16_384]

    with api_server.client("ingest") as c:
        declared = c.post("/v1/applications", content=big, headers={"content-type": "application/json"})
        streamed = c.post("/v1/applications", content=chunks(), headers={"content-type": "application/json"})
    _assert_envelope(declared, 413, "payload_too_large")
    _assert_envelope(streamed, 413, "payload_too_large")


def test_path_and_query_validation(api_server) -> None:
    with api_server.client("investigator") as c:
        for r in (
            c.get("/v1/rings", params={"limit": 0}),
            c.get("/v1/rings", params={"status": "weird"}),
            c.get("/v1/accounts/" + "a" * 200),
            c.get("/v1/accounts/x/neighbourhood", params={"max_nodes": -1}),
        ):
            _assert_envelope(r, 422, "invalid_request")
        _assert_envelope(c.get("/v1/accounts/does-not-exist"), 404, "account_not_found")
        _assert_envelope(c.get("/v1/rings/does-not-exist"), 404, "ring_not_found")
        _assert_envelope(c.delete("/v1/rings"), 405, "method_not_allowed")
    with api_server.client("admin") as c:
        _assert_envelope(c.get("/v1/jobs/does-not-exist"), 404, "job_not_found")


def test_store_never_reachable(api_server, launch, free_port_fn) -> None:
    """A server whose store is down from the start: healthy, not ready, and 503 + Retry-After on data
    routes, quickly (no long driver retries)."""
    env = dict(api_server.env, RINGWATCH_NEO4J_URI=f"bolt://127.0.0.1:{free_port_fn()}")
    env["RINGWATCH_DATA_DIR"] = str(api_server.settings.data_dir / "down")
    _, base = launch(env, wait_ready=False)
    with httpx.Client(base_url=base, headers={"X-API-Key": api_server.keys["admin"]}, timeout=30) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        _assert_envelope(ready, 503, "not_ready")
        assert ready.headers["retry-after"]
        for r in (c.get("/v1/rings"), c.post("/v1/applications", json=_valid()), c.post("/v1/jobs/score")):
            t0 = time.monotonic()
            err = _assert_envelope(r, 503)
            assert err["code"] in ("store_unavailable",), err
            assert r.headers["retry-after"]
            assert time.monotonic() - t0 < 10


@pytest.mark.slow
def test_store_goes_down_while_serving(
    arcade_settings, role_keys, launch, make_env, free_port_fn, tmp_path
) -> None:
    """A server on its own ArcadeDB, which is then stopped: 503 with Retry-After, not a hang or a 500."""
    from graph.store import arcade

    own = arcade_settings.model_copy(
        update={
            "data_dir": tmp_path / "own",
            "arcadedb_bolt_port": free_port_fn(),
            "arcadedb_http_port": free_port_fn(),
        }
    )
    arcade.start(own)
    try:
        _, base = launch(make_env(own, role_keys))
        with httpx.Client(base_url=base, headers={"X-API-Key": role_keys["investigator"]}, timeout=60) as c:
            assert c.get("/v1/rings").status_code == 200
            arcade.stop(own)
            t0 = time.monotonic()
            r = c.get("/v1/rings")
            _assert_envelope(r, 503, "store_unavailable")
            assert r.headers["retry-after"]
            assert time.monotonic() - t0 < 15
            _assert_envelope(c.get("/readyz"), 503, "not_ready")
    finally:
        arcade.stop(own)
