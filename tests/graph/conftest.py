"""A small hand-made identity graph for the scoring tests (the generator's output is used when present).

Honest people have their own identifiers except for the benign look-alikes that make this hard: households
(shared address and IP), carrier NAT IPs and kiosks (hubs), official document templates, re-applicants (same
person, same face, same name) and twins. Rings reuse devices, phones, addresses, forged templates and faces
across invented identities, in bursts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graph.tables import ACCOUNT_COLUMNS, GraphTables

DAY_MS = 86_400_000


def make_toy_tables(
    n_honest: int = 1500, n_rings: int = 25, seed: int = 0
) -> tuple[GraphTables, pd.DataFrame]:
    """Returns the tables and a truth frame (application_id, label, ring_id, scenario, ring_style)."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    links: list[tuple[int, str, str]] = []
    faces: list[tuple[int, int, float]] = []
    t0 = 1_700_000_000_000

    def add(
        sc: str, label: int, ring: str | None, style: str | None, name: str, dob: str, t: int, **sig
    ) -> int:
        i = len(rows)
        rows.append(
            dict(
                id=f"app{seed}_{i}",
                created_at=t,
                name_key=name,
                dob_key=dob,
                birth_year=1980,
                liveness_score=float(np.clip(rng.normal(0.9 - 0.15 * label, 0.08), 0, 1)),
                document_authenticity_score=float(np.clip(rng.normal(0.9 - 0.1 * label, 0.1), 0, 1)),
                label=float(label),
                ring_id=ring,
                scenario=sc,
                ring_style=style,
            )
        )
        for rel, v in sig.items():
            links.append((i, rel, v))
        return i

    templates = [f"tpl{k}" for k in range(5)]
    nat = [f"nat{k}" for k in range(3)]
    kiosks = [f"kiosk{k}" for k in range(2)]
    for h in range(n_honest):
        t = t0 + int(rng.integers(0, 180 * DAY_MS))
        sig = dict(
            USED_DEVICE=f"dev_h{h}",
            PRESENTED=f"doc_h{h}",
            HAS_TEMPLATE=str(rng.choice(templates)),
            HAS_PHONE=f"ph_h{h}",
            HAS_EMAIL=f"em_h{h}",
            LIVES_AT=f"ad_h{h}",
            FROM_IP=f"ip_h{h}",
            FROM_PREFIX=f"pre{h % 40}",
            CLAIMS=f"ssn_h{h}",
        )
        sc = "honest"
        r = rng.random()
        if r < 0.1:
            sig["FROM_IP"] = str(rng.choice(nat))
            sc = "nat"
        elif r < 0.14:
            sig["USED_DEVICE"] = str(rng.choice(kiosks))
            sc = "kiosk"
        a = add(sc, 0, None, None, f"n_h{h}", f"d{h % 9000}", t, **sig)
        r = rng.random()
        if r < 0.08:  # household of 2-4
            for k in range(int(rng.integers(1, 4))):
                s2 = dict(
                    sig,
                    USED_DEVICE=f"dev_h{h}_{k}",
                    PRESENTED=f"doc_h{h}_{k}",
                    HAS_PHONE=f"ph_h{h}_{k}",
                    HAS_EMAIL=f"em_h{h}_{k}",
                    CLAIMS=f"ssn_h{h}_{k}",
                )
                add(
                    "household",
                    0,
                    None,
                    None,
                    f"n_h{h}_{k}",
                    f"d{(h + k) % 9000}",
                    t + int(rng.integers(0, 60 * DAY_MS)),
                    **s2,
                )
        elif r < 0.12:  # re-applicant: same person, same face, same name
            b = add(
                "reapplicant",
                0,
                None,
                None,
                f"n_h{h}",
                f"d{h % 9000}",
                t + int(rng.integers(1, 30)) * DAY_MS,
                **dict(sig, PRESENTED=f"doc_h{h}_r"),
            )
            faces.append((a, b, 0.97))
        elif r < 0.14:  # twin: same dob, address, similar face, own identifiers
            b = add(
                "twin",
                0,
                None,
                None,
                f"n_h{h}_t",
                f"d{h % 9000}",
                t + int(rng.integers(0, 90)) * DAY_MS,
                **dict(
                    sig,
                    USED_DEVICE=f"dev_h{h}_t",
                    PRESENTED=f"doc_h{h}_t",
                    HAS_PHONE=f"ph_h{h}_t",
                    HAS_EMAIL=f"em_h{h}_t",
                    CLAIMS=f"ssn_h{h}_t",
                ),
            )
            faces.append((a, b, 0.93))
    styles = ("device_farm", "face_reuse", "forged_template")
    for g in range(n_rings):
        style = styles[g % 3]
        size = int(rng.integers(4, 12))
        start = t0 + int(rng.integers(0, 170 * DAY_MS))
        devices = [f"dev_r{g}_{k}" for k in range(2)]
        addrs = [f"ad_r{g}_{k}" for k in range(2)]
        members = []
        for m in range(size):
            t = start + int(rng.integers(0, 10 * DAY_MS))
            sig = dict(
                USED_DEVICE=str(rng.choice(devices)) if style != "face_reuse" else f"dev_r{g}_{m}",
                PRESENTED=f"doc_r{g}_{m}",
                HAS_TEMPLATE=f"forged{g}" if style == "forged_template" else str(rng.choice(templates)),
                HAS_PHONE=f"ph_r{g}_{m % 3}",
                HAS_EMAIL=f"em_r{g}_{m}",
                LIVES_AT=str(rng.choice(addrs)),
                FROM_IP=f"ip_r{g}_{m % 2}",
                FROM_PREFIX=f"pre_r{g}",
                CLAIMS=f"ssn_r{g}_{m}",
            )
            if rng.random() < 0.3:
                del sig["HAS_PHONE"]
            members.append(add("ring", 1, f"ring{seed}_{g}", style, f"n_r{g}_{m}", f"dr{g}_{m}", t, **sig))
        if style == "face_reuse":
            for k in range(1, len(members)):
                faces.append((members[0], members[k], 0.95))
    acc = pd.DataFrame(rows)
    tables = GraphTables(
        accounts=acc[list(ACCOUNT_COLUMNS)].copy(),
        links=pd.DataFrame(links, columns=["account", "rel", "signal"]),
        same_face=pd.DataFrame(faces, columns=["src", "dst", "similarity"]).astype(
            {"src": np.int64, "dst": np.int64, "similarity": np.float32}
        ),
    )
    truth = acc[["id", "label", "ring_id", "scenario", "ring_style"]].rename(columns={"id": "application_id"})
    return tables, truth


@pytest.fixture(scope="session")
def toy_graph() -> tuple[GraphTables, pd.DataFrame]:
    return make_toy_tables(seed=0)


@pytest.fixture(scope="session")
def toy_graph_other_seed() -> tuple[GraphTables, pd.DataFrame]:
    return make_toy_tables(seed=1)
