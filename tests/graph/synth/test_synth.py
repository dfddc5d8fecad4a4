"""The synthetic onboarding generator: contract, determinism, benign look-alikes and rings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from graph.contract.prepare import prepare
from graph.contract.pseudonymise import Pseudonymiser
from graph.schema import KNOWN_COLUMNS
from graph.settings import Settings
from graph.synth import RING_STYLES, RingConfig, SynthConfig, generate, write

N = 6000


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate(N, seed=5)


@pytest.fixture(scope="module")
def prepared(data):
    apps, truth = data
    batch = prepare(apps, Settings(), Pseudonymiser(b"test-key-" * 4))
    frame = batch.frame.drop(columns=["label", "ring_id"]).merge(truth, on="application_id", how="left")
    return batch, frame


def test_applications_follow_the_contract(data):
    apps, truth = data
    assert len(apps) == len(truth) == N
    assert set(apps.columns) <= set(KNOWN_COLUMNS)
    assert "label" not in apps and "ring_id" not in apps
    assert apps["application_id"].is_unique
    assert (apps["application_id"] == truth["application_id"]).all()
    assert apps["created_at"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()
    assert apps["date_of_birth"].str.match(r"^\d{4}-\d\d-\d\d$").all()
    faces = apps["face_embedding"].dropna()
    assert 0.97 * N < len(faces) < N
    assert {len(f) for f in faces} == {512}
    assert apps["ip"].str.contains(":").any() and apps["ip"].str.contains(r"^\d+\.").mean() > 0.8
    assert apps["phone"].str.startswith("(").any() and apps["phone"].str.startswith("+1").any()
    assert apps["created_at"].is_monotonic_increasing


def test_every_row_passes_validation(prepared):
    batch, _ = prepared
    assert len(batch.rejects) == 0, batch.rejects.head()
    assert batch.summary["accepted"] == N


def test_truth_file(data):
    _, truth = data
    ring = truth["label"] == 1
    assert (truth.loc[ring, "scenario"] == "ring").all() and truth.loc[ring, "ring_id"].notna().all()
    assert truth.loc[~ring, "ring_id"].isna().all() and truth.loc[~ring, "ring_style"].isna().all()
    assert 0.02 <= ring.mean() <= 0.05
    sizes = truth.loc[ring, "ring_id"].value_counts()
    assert sizes.min() >= 2 and sizes.max() <= 50
    assert truth.loc[ring, "ring_style"].nunique() >= 4
    benign = set(truth.loc[~ring, "scenario"])
    assert {"honest", "household", "twin", "reapplicant", "nat", "kiosk", "campus"} <= benign


def test_same_seed_same_files_other_seed_differs(tmp_path):
    a = write(tmp_path / "a", 1500, seed=9, report=False)
    b = write(tmp_path / "b", 1500, seed=9, report=False)
    c = write(tmp_path / "c", 1500, seed=10, report=False)
    for name in ("applications.parquet", "truth.parquet"):
        ta, tb, tc = (pq.read_table(f"{s.out_dir}/{name}") for s in (a, b, c))
        assert ta.equals(tb)
        assert not ta.equals(tc)


def test_generate_and_write_agree(tmp_path, data):
    apps, _ = data
    write(tmp_path, N, seed=5, report=False)
    written = pq.read_table(tmp_path / "applications.parquet").to_pylist()
    assert len(written) == len(apps)
    for column in apps.columns:
        expected = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in apps[column]]
        got = [r[column] for r in written]
        if column == "face_embedding":
            assert all((a is None) == (b is None) for a, b in zip(expected, got, strict=True))
            assert all(
                np.array_equal(np.float32(a), np.float32(b))
                for a, b in zip(expected, got, strict=True)
                if a is not None
            )
        else:
            assert got == expected, column


def _group_sizes(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.groupby(column)[column].transform("size")


def test_benign_look_alikes_share_signals_innocently(prepared):
    _, f = prepared
    honest = f[f["label"] == 0]
    household = honest[honest["scenario"] == "household"]
    assert (_group_sizes(honest, "address")[household.index] >= 2).mean() > 0.95
    kiosk = honest[honest["scenario"] == "kiosk"]
    assert _group_sizes(honest, "device_id")[kiosk.index].median() >= 10
    nat = honest[honest["scenario"] == "nat"]
    assert _group_sizes(honest, "ip")[nat.index].max() >= 50
    # official templates: most honest people hold one shared by many
    assert _group_sizes(honest, "document_template").median() >= 50
    # re-applicants keep their national id and name but mostly change device
    re = honest[honest["scenario"] == "reapplicant"].dropna(subset=["national_id"])
    by_nid = re.groupby("national_id")
    assert (by_nid["name_key"].nunique() == 1).mean() > 0.95
    multi = by_nid.filter(lambda g: len(g) > 1)
    assert multi.groupby("national_id")["device_id"].nunique().mean() > 1.5


def test_twins_share_birth_date_and_look_alike(data):
    apps, truth = data
    twins = truth[truth["scenario"] == "twin"].dropna(subset=["face_identity"])
    assert len(twins) >= 10
    persons = twins.groupby("person_id").head(1)
    emb = apps.set_index("application_id")["face_embedding"]
    dob = apps.set_index("application_id")["date_of_birth"]
    same_dob = persons.merge(persons, how="cross").query("person_id_x < person_id_y")
    same_dob = same_dob[
        dob[same_dob["application_id_x"]].to_numpy() == dob[same_dob["application_id_y"]].to_numpy()
    ]
    sims = [
        float(np.dot(emb[a], emb[b]))
        for a, b in zip(same_dob["application_id_x"], same_dob["application_id_y"], strict=True)
    ]
    assert np.median(sims) > 0.3  # strangers sit near 0


def test_rings_are_not_trivially_separable(prepared):
    _, f = prepared
    ring = f[f["label"] == 1]
    # members keep fresh, unshared contact details
    assert (_group_sizes(f, "email")[ring.index] == 1).mean() > 0.9
    # burst rings share no strong identifier among members, only a /24 and timing
    burst = ring[ring["ring_style"] == "burst"]
    assert len(burst)
    for col in ("device_id", "phone", "email", "national_id", "document_number"):
        assert burst.groupby("ring_id")[col].nunique().eq(burst.groupby("ring_id").size()).mean() > 0.8
    assert (burst.groupby("ring_id")["ip_prefix"].agg(lambda s: s.value_counts().iloc[0]) >= 2).all()
    # the upstream IDV scores overlap: they are a hint, not a label
    assert ring["liveness_score"].quantile(0.75) > f.loc[f["label"] == 0, "liveness_score"].quantile(0.25)


def test_ring_styles_use_their_resource(prepared):
    _, f = prepared
    ring = f[f["label"] == 1]
    share = {
        "device_farm": "device_id",
        "drop_address": "address",
        "forged_template": "document_template",
    }
    for style, col in share.items():
        members = ring[ring["ring_style"] == style]
        if len(members):
            top = members.groupby("ring_id")[col].agg(lambda s: s.value_counts().iloc[0])
            assert (top >= 2).all(), style
    forged = ring[ring["ring_style"] == "forged_template"]
    honest_templates = set(f.loc[f["label"] == 0, "document_template"].dropna())
    if len(forged):
        main = forged.groupby("ring_id")["document_template"].agg(lambda s: s.value_counts().index[0])
        assert not set(main) & honest_templates


def test_config_controls_the_rings():
    _, truth = generate(3000, seed=1, config=SynthConfig(rings=RingConfig(fraction=0.05, mix={"burst": 1.0})))
    ring = truth[truth["label"] == 1]
    assert set(ring["ring_style"]) == {"burst"}
    assert abs(len(ring) / 3000 - 0.05) < 0.005
    _, none = generate(500, seed=1, config=SynthConfig(rings=RingConfig(fraction=0.0)))
    assert none["label"].sum() == 0
    with pytest.raises(ValueError):
        RingConfig(mix={"nonsense": 1.0})
    with pytest.raises(ValueError):
        generate(0)


def test_face_dimension_is_configurable():
    from graph.synth import FaceParams

    apps, _ = generate(300, seed=2, config=SynthConfig(face=FaceParams(dim=128)))
    assert {len(v) for v in apps["face_embedding"].dropna()} == {128}


def test_write_report(tmp_path):
    s = write(tmp_path, 4000, seed=3)
    for name in ("report.md", "signal_reuse.png", "ring_sizes.png", "face_similarity.png"):
        assert (tmp_path / name).stat().st_size > 500, name
    text = (tmp_path / "report.md").read_text()
    assert "genuine" in text and "impostor" in text and "peak resident memory" in text
    assert s.rows == 4000 and s.rings > 0 and set(s.ring_styles) == set(RING_STYLES)
