"""The real-time decision, face search, investigator routes, reviews and jobs on a server with a trained
model over a generated population (history ingested and batch-scored first)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks


@pytest.fixture(scope="module")
def new_rows(bench_data):
    _, new, _ = bench_data
    return new


def test_decision_shape_and_idempotency(api_server, new_rows, request_body) -> None:
    body = request_body(new_rows.iloc[0])
    with api_server.client("ingest") as c:
        first = c.post("/v1/applications", json=body)
        again = c.post("/v1/applications", json=body)
    assert first.status_code == 200, first.text
    d = first.json()
    assert 0.0 <= d["risk_score"] <= 1.0
    assert d["decision"] in ("approve", "review", "decline")
    assert d["replayed"] is False and d["model_version"]
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["risk_score"] == d["risk_score"] and again.json()["decision"] == d["decision"]


def test_concurrent_duplicates_get_one_answer(api_server, bench_data, request_body) -> None:
    """The same application sent many times at once: one copy is decided and written, every other copy is
    answered from the store (replayed) with the same score and decision (the batcher keeps an id out of a
    pass that already holds it, so the next pass reads it back once it is written)."""
    _, new, _ = bench_data
    body = request_body(new.iloc[-1])
    body["application_id"] = body["application_id"] + "-dup"
    headers = {"X-API-Key": api_server.keys["ingest"]}

    def post(_: int) -> httpx.Response:
        return httpx.post(api_server.base_url + "/v1/applications", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(16)))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    data = [r.json() for r in answers]
    assert sum(not d["replayed"] for d in data) == 1
    assert len({(d["risk_score"], d["decision"], d["model_version"]) for d in data}) == 1


def test_ring_member_reusing_a_face_and_device_is_flagged(api_server, bench_data, request_body) -> None:
    """A new application that reuses a known ring member's face and device: the face search must find
    the member, and the reasons must name the shared device."""
    history, _, truth = bench_data
    members = history[history["label"] == 1]
    member = members.iloc[0]
    body = request_body(member)
    body["application_id"] = "api-test-copycat"
    body["full_name"] = "SOMEONE ELSE ENTIRELY"
    body["national_id"] = "123-45-6789"
    body["email"] = "fresh.person@example.org"
    with api_server.client("ingest") as c:
        r = c.post("/v1/applications", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    top = d["face_matches"][0]
    assert top["application_id"] == member["application_id"]
    assert top["similarity"] > 0.99 and top["above_threshold"]
    assert any("USED_DEVICE" in reason or "face" in reason for reason in d["reasons"]), d["reasons"]


def test_a_ring_forming_after_the_last_batch_job_is_answered_with_its_candidate(
    api_server, new_rows, request_body
) -> None:
    """Four applications after the last batch job under four names, with one face, one device and one
    phone nobody had before, and nothing else shared with anyone (one operator behind synthetic
    identities). Each decision sees the earlier ones (the live graph): the face index and the signal degrees
    count them, the fourth is not approved, the first one not approved names the ring candidate they form
    and every later one joins it, and investigators find it in ``GET /v1/rings/forming``."""
    rng = np.random.default_rng(5)
    face = rng.standard_normal(len(request_body(new_rows.iloc[0])["face_embedding"]))
    answers = []
    with api_server.client("ingest") as c:
        for k in range(4):
            body = request_body(new_rows.iloc[20 + k])
            for column in ("email", "national_id", "document_number", "document_template", "ip", "address"):
                body.pop(column, None)
            body |= {
                "application_id": f"api-test-forming-{k}",
                "full_name": f"FORMING PERSON {k}",
                "device_id": "forming-device-never-seen",
                "phone": "+44 7700 900123",
                "face_embedding": (face + 0.01 * rng.standard_normal(len(face))).tolist(),
            }
            r = c.post("/v1/applications", json=body)
            assert r.status_code == 200, r.text
            answers.append(r.json())
    assert [len(a["face_matches"]) for a in answers] == [0, 1, 2, 3]  # the face index sees the stream
    assert "USED_DEVICE shared with 3 other accounts under 3 other names" in answers[3]["reasons"]
    assert answers[3]["decision"] != "approve", answers[3]
    first = next(k for k, a in enumerate(answers) if a["decision"] != "approve")
    assert first >= 1 and answers[first]["ring"]["id"] == "live-api-test-forming-0", answers[first]
    for k, a in enumerate(answers[first:], start=first):
        assert a["ring"] == {"id": "live-api-test-forming-0", "score": None, "size": k}, a  # k earlier
    with api_server.client("investigator") as c:
        forming = c.get("/v1/rings/forming").json()
    mine = next(f for f in forming if f["id"] == "live-api-test-forming-0")
    assert mine["size"] == 4 and mine["answered"] == 4 - first


def test_a_restarted_server_sees_what_the_last_one_decided(
    api_server, launch, new_rows, request_body
) -> None:
    """The live graph survives a restart: a new server builds its scorer from the store, decided accounts
    included, so an application after the restart sees the two decided before it on a device they share."""

    def body(k: int) -> dict:
        b = request_body(new_rows.iloc[30 + k])
        for column in (
            "email",
            "national_id",
            "document_number",
            "document_template",
            "ip",
            "address",
            "phone",
        ):
            b.pop(column, None)
        return b | {"application_id": f"api-test-restart-{k}", "full_name": f"RESTART PERSON {k}",
                    "device_id": "restart-device-never-seen", "face_embedding": None}  # fmt: skip

    with api_server.client("ingest") as c:
        for k in range(2):
            r = c.post("/v1/applications", json={k: v for k, v in body(k).items() if v is not None})
            assert r.status_code == 200, r.text
    _, base = launch(api_server.env)
    with httpx.Client(base_url=base, headers={"X-API-Key": api_server.keys["ingest"]}, timeout=60) as c:
        r = c.post("/v1/applications", json={k: v for k, v in body(2).items() if v is not None})
    assert r.status_code == 200, r.text
    assert "USED_DEVICE shared with 2 other accounts under 2 other names" in r.json()["reasons"], r.json()


def test_honest_applications_mostly_approved(api_server, new_rows, request_body) -> None:
    honest = new_rows[new_rows["label"] == 0].iloc[1:21]
    with api_server.client("ingest") as c:
        batch = [request_body(x) for x in honest.iloc[:5].to_dict("records")]
        r = c.post("/v1/applications:batch", json={"applications": batch})
        singles = [
            c.post("/v1/applications", json=request_body(x)) for x in honest.iloc[5:].to_dict("records")
        ]
    decisions = [x.json()["decision"] for x in singles]
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 5
    decisions += [x["decision"] for x in r.json()["results"]]
    assert decisions.count("approve") >= 0.8 * len(decisions), decisions


def test_invalid_application_writes_nothing(api_server, new_rows, request_body) -> None:
    body = request_body(new_rows.iloc[30])
    body["face_embedding"] = body["face_embedding"][:10]
    with api_server.client("ingest") as c:
        r = c.post("/v1/applications", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_application"
    assert "face_embedding" in r.json()["error"]["message"]
    with api_server.client("investigator") as c:
        assert c.get(f"/v1/accounts/{body['application_id']}").status_code == 404


def test_batch_with_one_invalid_application_decides_the_rest(api_server, new_rows, request_body) -> None:
    """A record to reject sends the pass down the full preparation path (which words the rejects): the others
    are decided and stored as on the row-by-row path, so a replay answers the same."""
    good, bad = request_body(new_rows.iloc[32]), request_body(new_rows.iloc[33])
    bad["face_embedding"] = bad["face_embedding"][:10]
    with api_server.client("ingest") as c:
        r = c.post("/v1/applications:batch", json={"applications": [bad, good]})
        again = c.post("/v1/applications", json=good)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    (rejected,) = r.json()["rejected"]
    assert result["application_id"] == good["application_id"] and result["replayed"] is False
    assert rejected["application_id"] == bad["application_id"]
    assert any("face_embedding" in reason for reason in rejected["reasons"])
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["risk_score"] == result["risk_score"] and again.json()["reasons"] == result["reasons"]
    with api_server.client("investigator") as c:
        assert c.get(f"/v1/accounts/{bad['application_id']}").status_code == 404


def test_batch_with_duplicate_ids_is_rejected(api_server, new_rows, request_body) -> None:
    body = request_body(new_rows.iloc[31])
    with api_server.client("ingest") as c:
        r = c.post("/v1/applications:batch", json={"applications": [body, body]})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "duplicate_application_id"


def test_face_search_by_embedding(api_server, bench_data) -> None:
    history, _, _ = bench_data
    row = history[history["face_embedding"].notna()].iloc[3]
    with api_server.client("investigator") as c:
        r = c.post("/v1/faces/search", json={"embedding": [float(x) for x in row["face_embedding"]], "k": 5})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["matches"][0]["application_id"] == row["application_id"]
    assert out["matches"][0]["above_threshold"]
    sims = [m["similarity"] for m in out["matches"]]
    assert sims == sorted(sims, reverse=True) and len(sims) == 5


def test_face_search_rejects_bad_vectors(api_server) -> None:
    with api_server.client("investigator") as c:
        wrong_dim = c.post("/v1/faces/search", json={"embedding": [0.1] * 7})
        zeros = c.post("/v1/faces/search", json={"embedding": [0.0] * 512})
        text = c.post("/v1/faces/search", content=b"hello", headers={"content-type": "text/plain"})
    assert wrong_dim.status_code == 422 and "dimension" in wrong_dim.json()["error"]["message"]
    assert zeros.status_code == 422
    assert text.status_code == 415


def test_account_and_neighbourhood(api_server, bench_data) -> None:
    history, _, _ = bench_data
    member = history[history["label"] == 1].iloc[0]["application_id"]
    with api_server.client("investigator") as c:
        acc = c.get(f"/v1/accounts/{member}")
        hood = c.get(f"/v1/accounts/{member}/neighbourhood", params={"hops": 2, "max_nodes": 50})
    assert acc.status_code == 200, acc.text
    a = acc.json()
    assert a["id"] == member and a["risk_score"] is not None
    assert "USED_DEVICE" in {s["rel"] for s in a["signals"]}
    assert hood.status_code == 200
    h = hood.json()
    ids = {n["id"] for n in h["nodes"]}
    assert member in ids and len(h["nodes"]) <= 50
    assert all(e["source"] in ids and e["target"] in ids for e in h["edges"])


def test_rings_review_and_jobs(api_server) -> None:
    with api_server.client("investigator") as c:
        page = c.get("/v1/rings", params={"limit": 5})
        assert page.status_code == 200, page.text
        rings = page.json()
        assert rings["total"] >= 1 and 1 <= len(rings["items"]) <= 5
        scores = [r["score"] for r in rings["items"]]
        assert scores == sorted(scores, reverse=True)
        ring_id = rings["items"][0]["id"]
        detail = c.get(f"/v1/rings/{ring_id}").json()
        assert len(detail["members"]) == detail["size"] >= 2
        assert detail["evidence"] and detail["score_history"]
        review = c.post(
            f"/v1/rings/{ring_id}/review", json={"decision": "confirm", "reason": "same device farm"}
        )
        assert review.status_code == 201, review.text
        opened = c.get(f"/v1/rings/{ring_id}").json()
        assert opened["status"] == "confirmed"
        members = {m["id"] for m in opened["members"]}
        confirmed = c.get("/v1/rings", params={"status": "confirmed"}).json()
        assert ring_id in {r["id"] for r in confirmed["items"]}
        assert (
            c.post(
                "/v1/rings/no-such-ring/review", json={"decision": "dismiss", "reason": "nope"}
            ).status_code
            == 404
        )
    with api_server.client("admin") as c:
        job = _start_score_job(c)
        busy = c.post("/v1/jobs/score")
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "job_running"
        state = _finished(c, job["id"])
        assert state["status"] == "succeeded", state
        assert state["result"]["rings_found"] >= 1
    with api_server.client("investigator") as c:
        detail = c.get(f"/v1/rings/{ring_id}").json()
    assert len(detail["score_history"]) >= 1 and detail["reviews"][0]["decision"] == "confirmed"
    # the review becomes training labels for the next `ringwatch train`
    from graph.store.bolt import GraphStore
    from graph.store.reviews import review_labels

    with GraphStore.connect(api_server.settings, start_local=False) as store:
        labels = review_labels(store)
    assert set(labels.loc[labels["label"] == 1, "application_id"]) >= members


def test_metrics_count_decisions(api_server, new_rows, request_body) -> None:
    body = request_body(new_rows.iloc[4])
    body["application_id"] += "-metrics"
    with api_server.client("ingest") as c:
        assert c.post("/v1/applications", json=body).json()["replayed"] is False
        assert c.post("/v1/applications", json=body).json()["replayed"] is True
        text = c.get("/metrics").text
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("ringwatch_decisions_total{")
    ]
    assert sum(counted) >= 1
    assert 'ringwatch_ingested_applications_total{outcome="replayed"}' in text
    # where a pass's time goes, by stage, and how many applications a pass decided
    for stage in ("prepare", "read", "face", "score", "write", "pass"):
        assert f'ringwatch_decision_stage_seconds_count{{stage="{stage}"}}' in text, stage
    assert "ringwatch_decision_pass_size_count" in text


def _start_score_job(c) -> dict:
    """``POST /v1/jobs/score`` once no job runs: another test on this shared server may have started one."""
    deadline = time.monotonic() + 120
    while (job := c.post("/v1/jobs/score")).status_code == 409:
        assert job.json()["error"]["code"] == "job_running" and time.monotonic() < deadline, job.text
        time.sleep(0.5)
    assert job.status_code == 202, job.text
    return job.json()


def _finished(c, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while (state := c.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    return state


def _gauges(c) -> dict[str, float]:
    lines = [line.split(" ") for line in c.get("/metrics").text.splitlines()]
    return {
        name.removeprefix("ringwatch_scorer_"): float(value)
        for name, value in (line for line in lines if len(line) == 2)
        if name.startswith("ringwatch_scorer_")
    }


def test_metrics_show_how_stale_the_scorer_is(api_server, new_rows, request_body) -> None:
    """An SRE sees the cached graph's size and age, and each decision counted in since it was built.

    A scoring job swaps in a new cache and, while it runs, keeps each decision for it (``pending_rebuild``):
    one that another test started on this shared server (the role matrix, the fuzzer) would move the
    gauges, so this test runs one to its end first."""
    with api_server.client("admin") as c:
        assert _finished(c, _start_score_job(c)["id"])["status"] == "succeeded"
    with api_server.client("ingest") as c:
        before = _gauges(c)
        body = request_body(new_rows.iloc[3])
        body["application_id"] += "-gauge"
        assert c.post("/v1/applications", json=body).status_code == 200
        # the worker folds the decided account into the live graph just after answering
        settled = time.monotonic() + 5
        while (after := _gauges(c))["overlay_keys"] <= before["overlay_keys"] and time.monotonic() < settled:
            time.sleep(0.05)
    assert set(before) == {
        "cache_accounts", "live_accounts", "cache_age_seconds", "decided_since_build", "overlay_keys",
        "pending_rebuild",
    }  # fmt: skip
    assert after["cache_accounts"] == before["cache_accounts"] > 0
    assert after["live_accounts"] == before["live_accounts"] + 1 >= before["cache_accounts"] + 1
    assert after["cache_age_seconds"] >= before["cache_age_seconds"] >= 0
    assert after["decided_since_build"] == before["decided_since_build"] + 1
    assert after["overlay_keys"] > before["overlay_keys"]
    assert after["pending_rebuild"] == 0  # rebuilds are off by default: nothing is kept for one


def _fuzz(case, server) -> None:
    """No 500, the error envelope on every failure, and only the statuses (and bodies) the spec documents:
    clients and their generated code read the spec to know what can come back."""
    response = case.call(base_url=server.base_url, headers={"X-API-Key": server.keys["admin"]}, timeout=60)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}
    case.validate_response(
        response, checks=[checks.status_code_conformance, checks.response_schema_conformance]
    )


def _fuzz_all(server, max_examples: int) -> int:
    """Every operation in the served OpenAPI spec, with schemathesis-generated requests (valid and
    invalid). Driven through hypothesis directly: schemathesis' pytest plugin does not support pytest 9."""
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case) -> None:
            _fuzz(case, server)

        run()
    return len(operations)


def test_fuzz_quick_no_server_errors(api_server) -> None:
    assert _fuzz_all(api_server, max_examples=8) >= 13


@pytest.mark.slow
def test_fuzz_thorough_no_server_errors(api_server) -> None:
    assert _fuzz_all(api_server, max_examples=150) >= 13
