"""Bad input and a down store: every answer is a 4xx/503 with the error envelope, never a 500."""

from __future__ import annotations

import json
import struct
import time
import zlib

import httpx
import pytest

MAX_BATCH = 5  # tests/api/conftest.py
MAX_BODY = 200_000
MAX_UPLOAD = 300_000
FACE_DIM = 512
MAX_IMAGE_PIXELS = 40_000_000  # the setting's default, which the shared server runs with


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


def _not_stored(server, app_id: str) -> None:
    with server.client("investigator") as c:
        _assert_envelope(c.get(f"/v1/accounts/{app_id}"), 404, "account_not_found")


def _png(width: int, height: int) -> bytes:
    """A complete, valid 1-bit PNG: the file stays small (zeros compress about 1000:1) while the image it
    declares is huge, the shape of a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pack = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte, then the row's bits
    data = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


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


@pytest.mark.parametrize(
    "value,why",
    [(1e30, "overflows"), (1e-45, "below")],
    ids=["norm-overflows-float32", "denormal-norm-is-zero"],
)
def test_embedding_that_cannot_be_normalised_is_rejected(api_server, value, why) -> None:
    """Finite values whose float32 L2 norm overflows (1e30) or underflows to zero (subnormal 1e-45) cannot be
    made unit vectors: they used to reach the face index as NaN and answer 500."""
    app_id = f"err-emb-{why}"
    with api_server.client("ingest") as c:
        r = c.post("/v1/applications", json={**_valid(app_id), "face_embedding": [value] * FACE_DIM})
        batch = c.post(
            "/v1/applications:batch",
            json={"applications": [{**_valid(app_id), "face_embedding": [value] * FACE_DIM}]},
        )
    err = _assert_envelope(r, 422, "invalid_application")
    assert "face_embedding" in err["message"] and "normalise" in err["message"] and why in err["message"]
    assert batch.status_code == 200 and not batch.json()["results"]
    assert "normalise" in batch.json()["rejected"][0]["reasons"][0]
    with api_server.client("investigator") as c:
        search = c.post("/v1/faces/search", json={"embedding": [value] * FACE_DIM})
    assert "normalise" in _assert_envelope(search, 422, "invalid_request")["message"]
    _not_stored(api_server, app_id)


@pytest.mark.parametrize(
    "created_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"], ids=["year-0", "year-10000"]
)
def test_created_at_out_of_range_in_utc_is_rejected(api_server, created_at) -> None:
    """Valid ISO-8601, but the offset moves it out of the years a datetime holds once converted to UTC (the
    conversion used to raise OverflowError: 500)."""
    app_id = f"err-ts-{created_at[:4]}"
    with api_server.client("ingest") as c:
        r = c.post("/v1/applications", json={**_valid(app_id), "created_at": created_at})
    err = _assert_envelope(r, 422, "invalid_application")
    assert "created_at" in err["message"] and "out of range" in err["message"]
    _not_stored(api_server, app_id)


def test_lone_surrogates_are_rejected(api_server) -> None:
    """JSON can spell a lone UTF-16 surrogate (``"\\ud800"``), which no UTF-8 store or response can hold."""
    both = b'{"application_id": "\\ud800", "national_id": "\\ud800", "created_at": "2026-01-02T03:04:05Z", ' \
        b'"full_name": "Ada Lovelace", "date_of_birth": "1990-12-10"}'  # fmt: skip
    one = both.replace(b'"application_id": "\\ud800"', b'"application_id": "err-surrogate"')
    raw_bytes = one.replace(b"\\ud800", b"\xed\xa0\x80")  # the surrogate as WTF-8 bytes, not an escape
    headers = {"content-type": "application/json"}
    with api_server.client("ingest") as c:
        answers = [
            c.post("/v1/applications", content=body, headers=headers) for body in (both, one, raw_bytes)
        ]
        batch = c.post("/v1/applications:batch", content=b'{"applications": [' + one + b"]}", headers=headers)
    for r in (*answers, batch):
        err = _assert_envelope(r, 422, "invalid_request")
        assert "unicode" in err["message"].lower() or "parse" in err["message"], err
    assert "national_id" in answers[1].json()["error"]["message"]
    _not_stored(api_server, "err-surrogate")


def test_decompression_bomb_is_refused_before_decoding(api_server) -> None:
    """Small files declaring huge images: 20000 x 20000 (Pillow's own guard fires) and 8000 x 8000 (under
    Pillow's guard, over RINGWATCH_MAX_IMAGE_PIXELS), both refused from the header. Decoding them would take
    gigabytes, or hundreds of megabytes and the detector's time."""
    with api_server.client("investigator") as c:
        for side in (20_000, 8_000):
            assert side * side > MAX_IMAGE_PIXELS
            png = _png(side, side)
            assert len(png) < MAX_UPLOAD
            r = c.post("/v1/faces/search", files={"image": ("bomb.png", png, "image/png")})
            err = _assert_envelope(r, 422, "image_too_large")
            assert "pixels" in err["message"]
        small = c.post("/v1/faces/search", files={"image": ("a.png", _png(64, 64), "image/png")})
    # a small image of the same kind is decoded and searched: refused only for want of a face
    _assert_envelope(small, 422, "no_face")


def test_oversized_upload_is_413(api_server) -> None:
    """The file itself over RINGWATCH_MAX_UPLOAD_BYTES (the route's check), and a form far over it, declared
    or streamed (the body limit for forms)."""
    big_file = b"\x89PNG" + bytes(MAX_UPLOAD)
    form = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    huge = form + bytes(MAX_UPLOAD + 200_000) + b"\r\n--b--\r\n"
    headers = {"content-type": "multipart/form-data; boundary=b"}

    def chunks():
        for i in range(0, len(huge), 16_384):
            yield huge[i : i + 16_384]

    with api_server.client("investigator") as c:
        just_over = c.post("/v1/faces/search", files={"image": ("a.png", big_file, "image/png")})
        declared = c.post("/v1/faces/search", content=huge, headers=headers)
        streamed = c.post("/v1/faces/search", content=chunks(), headers=headers)
    _assert_envelope(just_over, 413, "upload_too_large")
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
        for send in (
            lambda: c.get("/v1/rings"),
            lambda: c.post("/v1/applications", json=_valid()),
            lambda: c.post("/v1/jobs/score"),
        ):
            t0 = time.monotonic()
            r = send()
            took = time.monotonic() - t0
            err = _assert_envelope(r, 503)
            assert err["code"] in ("store_unavailable",), err
            assert r.headers["retry-after"]
            assert took < 10, took


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


def test_openapi_documents_every_error_status(api_server) -> None:
    """Every /v1 route documents the statuses it answers with the envelope: 401/403 (keys and roles), 422
    when it takes parameters or a body, 413 when it takes a body; generated clients and schemathesis read
    the spec to know what can come back."""
    with api_server.client() as c:
        spec = c.get("/openapi.json").json()
    envelope = {"$ref": "#/components/schemas/ErrorOut"}
    checked = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            expected = set()
            if path.startswith("/v1/"):
                expected |= {"401", "403"}
                if op.get("parameters") or "requestBody" in op:
                    expected.add("422")
                if "requestBody" in op:
                    expected.add("413")
            assert expected <= codes, (method, path, sorted(expected - codes))
            for code in codes - {"200", "201", "202"}:
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == envelope, (method, path, code, schema)
            checked += 1
    assert checked >= 13
    assert "503" in spec["paths"]["/v1/applications"]["post"]["responses"]
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
