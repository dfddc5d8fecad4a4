"""Operations endpoints on a real server: health, readiness, metrics, request ids, error envelope."""

from __future__ import annotations

import signal

import httpx


def test_healthz_and_readyz(api_server) -> None:
    with api_server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "store": True, "face_index": True, "scorer": True}


def test_metrics_count_requests_by_route_template(api_server) -> None:
    with api_server.client("investigator") as c:
        c.get("/v1/accounts/no-such-account")
        text = c.get("/metrics").text
    assert "ringwatch_request_seconds_bucket" in text
    assert 'route="/v1/accounts/{account_id}"' in text
    assert "no-such-account" not in text  # label is the template, not the concrete path


def test_unknown_route_uses_the_envelope_and_request_ids_round_trip(api_server) -> None:
    with api_server.client() as c:
        r = c.get("/v1/nothing-here", headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.headers["x-request-id"] == "abc-123"


def test_graceful_shutdown_saves_the_face_index(api_server, launch, bench_data, request_body) -> None:
    """A second server on the same store and data dir takes an application, then gets SIGTERM: it must
    exit cleanly and leave the new face in the saved index."""
    from embeddings.index import FaceIndex

    _, new, _ = bench_data
    row = new[new["face_embedding"].notna()].iloc[-1]
    body = request_body(row) | {"application_id": "graceful-shutdown-probe"}
    proc, base = launch(api_server.env)
    r = httpx.post(
        base + "/v1/applications", json=body, headers={"X-API-Key": api_server.keys["ingest"]}, timeout=60
    )
    assert r.status_code == 200, r.text
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down cleanly, then re-raises the signal so the exit status says what stopped it
    assert proc.wait(60) in (0, -signal.SIGTERM)
    assert "graceful-shutdown-probe" in FaceIndex.load(api_server.settings.face_index_path)
