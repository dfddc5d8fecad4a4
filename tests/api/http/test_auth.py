"""Every /v1 route under every role: 401 without or with an unknown key, 403 with the wrong role, through
otherwise when the role fits (admin fits everywhere). Bodies are deliberately invalid, so the allowed calls
stop at validation (422) or a missing resource (404) without side effects."""

from __future__ import annotations

import pytest

ROUTES = [
    ("POST", "/v1/applications", "ingest"),
    ("POST", "/v1/applications:batch", "ingest"),
    ("POST", "/v1/faces/search", "investigator"),
    ("GET", "/v1/accounts/{account_id}", "investigator"),
    ("GET", "/v1/accounts/{account_id}/neighbourhood", "investigator"),
    ("GET", "/v1/rings", "investigator"),
    ("GET", "/v1/rings/forming", "investigator"),
    ("GET", "/v1/rings/{ring_id}", "investigator"),
    ("POST", "/v1/rings/{ring_id}/review", "investigator"),
    ("POST", "/v1/jobs/score", "admin"),
    ("GET", "/v1/jobs/{job_id}", "admin"),
]
ROLES = ("ingest", "investigator", "admin")


def _call(client, method: str, template: str):
    path = template.format(account_id="missing", ring_id="missing", job_id="missing")
    if method == "GET":
        listing = path in ("/v1/rings", "/v1/rings/forming")
        return client.get(path, params={"limit": "not-a-number"} if listing else None)
    if path == "/v1/jobs/score":
        return client.post(path, params={"force": "x"})
    return client.post(path, json={"not": "valid"})


def test_every_v1_route_is_in_the_matrix(api_server) -> None:
    with api_server.client() as c:
        spec = c.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() if p.startswith("/v1") for m in ops}
    assert documented == {(m, p) for m, p, _ in ROUTES}


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
def test_missing_and_unknown_keys_are_401(api_server, method: str, path: str, needed: str) -> None:
    with api_server.client() as c:
        missing = _call(c, method, path)
        c.headers["X-API-Key"] = "rw_not-a-real-key"
        unknown = _call(c, method, path)
    for r in (missing, unknown):
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
@pytest.mark.parametrize("role", ROLES)
def test_roles(api_server, method: str, path: str, needed: str, role: str) -> None:
    with api_server.client(role) as c:
        r = _call(c, method, path)
    if role in (needed, "admin"):
        assert r.status_code not in (401, 403, 500), r.text
        assert 400 <= r.status_code < 500 or r.status_code == 202, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"


def test_bearer_token_is_accepted(api_server) -> None:
    with api_server.client() as c:
        r = c.get("/v1/rings", headers={"Authorization": f"Bearer {api_server.keys['investigator']}"})
    assert r.status_code == 200, r.text


def test_investigator_reads_are_audited_without_bodies(api_server) -> None:
    with api_server.client("investigator") as c:
        c.get("/v1/accounts/audited-account")
        c.post("/v1/rings/audited-ring/review", json={"decision": "confirm", "reason": "secret free text"})
    audit = (api_server.settings.data_dir / "audit.jsonl").read_text()
    assert "audited-account" in audit and "audited-ring" in audit
    assert "secret free text" not in audit
    assert api_server.keys["investigator"] not in audit
