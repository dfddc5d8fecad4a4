"""Small valid application rows and the ways to break them, shared by the contract tests."""

from __future__ import annotations

import numpy as np

DIM = 8


def valid_rows(n: int, seed: int = 0, dim: int = DIM) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        emb = rng.normal(size=dim).astype(np.float32)
        rows.append(
            {
                "application_id": f"app-{i:06d}",
                "created_at": f"2026-0{1 + i % 9}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                "full_name": f"Person {i} Example",
                "date_of_birth": f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "national_id": f"{100 + i % 800:03d}-{10 + i % 89:02d}-{1000 + i:04d}",
                "email": f"person{i}@example.com",
                "phone": f"+1 415 555 {i % 10000:04d}",
                "address": f"{1 + i % 999} Main Street, Apt {i % 50}",
                "ip": f"10.{i % 250}.{(i // 250) % 250}.{i % 200 + 1}",
                "device_id": f"dev-{i % 5000}",
                "document_number": f"D{i:08d}",
                "document_type": "DL",
                "document_country": "US",
                "document_template": f"tmpl-{i % 20}",
                "face_embedding": emb.tolist(),
                "liveness_score": round(float(rng.uniform()), 4),
                "document_authenticity_score": round(float(rng.uniform()), 4),
            }
        )
    return rows


# (name, column the reject must name, mutation) — each breaks one row in one way
BREAKAGES = [
    ("missing id", "application_id", lambda r: r.update(application_id=None)),
    ("missing name", "full_name", lambda r: r.update(full_name="  ")),
    ("missing created_at", "created_at", lambda r: r.pop("created_at")),
    ("bad timestamp", "created_at", lambda r: r.update(created_at="yesterday at noon")),
    ("bad dob", "date_of_birth", lambda r: r.update(date_of_birth="1990-02-30")),
    ("dob format", "date_of_birth", lambda r: r.update(date_of_birth="03/04/1990")),
    ("future dob", "date_of_birth", lambda r: r.update(date_of_birth="2999-01-01")),
    ("bad ip", "ip", lambda r: r.update(ip="300.1.2.3")),
    ("bad email", "email", lambda r: r.update(email="not-an-email")),
    ("bad phone", "phone", lambda r: r.update(phone="12")),
    ("short embedding", "face_embedding", lambda r: r.update(face_embedding=r["face_embedding"][:-1])),
    ("nan embedding", "face_embedding", lambda r: r.update(face_embedding=[float("nan")] * DIM)),
    ("zero embedding", "face_embedding", lambda r: r.update(face_embedding=[0.0] * DIM)),
    ("score out of range", "liveness_score", lambda r: r.update(liveness_score=1.7)),
    (
        "score not a number",
        "document_authenticity_score",
        lambda r: r.update(document_authenticity_score="high"),
    ),
    ("bad label", "label", lambda r: r.update(label=7)),
]
