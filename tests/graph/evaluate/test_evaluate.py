import json

import numpy as np
import pandas as pd

from graph.evaluate.metrics import account_metrics, evaluate, recall_at_fpr, ring_metrics, write_report


def _truth():
    return pd.DataFrame(
        {
            "application_id": [f"a{i}" for i in range(10)],
            "label": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
            "ring_id": ["r1", "r1", "r2", "r2", None, None, None, None, None, None],
            "scenario": ["ring"] * 4 + ["honest", "honest", "household", "household", "nat", "nat"],
            "ring_style": ["burst", "burst", "face_reuse", "face_reuse"] + [None] * 6,
        }
    )


def test_ring_matching_rule():
    t = _truth()
    # r1 found (both members, ring is half true); r2 not (a3 alone with two honest is < half true)
    m = ring_metrics([["a0", "a1", "a4", "a5"], ["a3", "a6", "a7"]], t)
    assert m["found"] == ["r1"] and m["precision"] == 0.5 and m["recall"] == 0.5
    assert ring_metrics([], t)["recall"] == 0


def test_recall_at_fpr():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.2, 0.5, 0.1, 0.0])
    assert recall_at_fpr(y, p, 0.0) == 0.5
    assert account_metrics(y, p)["auroc"] == 5 / 6


def test_report_outputs(tmp_path):
    t = _truth()
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.75, 0.0, 0.1, 0.2, 0.3])
    rep = evaluate(t, t["application_id"].to_numpy(), {"m": p}, {"m": [["a0", "a1"]]}, "m", 0.7, 0.5)
    assert rep.scenarios["honest"]["fpr"] == 0.5 and rep.scenarios["nat"]["fpr"] == 0.0
    assert rep.styles["burst"]["ring_recall"] == 1.0 and rep.styles["face_reuse"]["ring_recall"] == 0.0
    paths = write_report(rep, t["label"].to_numpy(), {"m": p}, tmp_path)
    assert all(x.exists() and x.stat().st_size > 0 for x in paths)
    assert json.loads(paths[0].read_text())["models"][0]["name"] == "m"
    assert "| m |" in paths[1].read_text()


def test_rings_outside_the_evaluated_rows_are_not_judged():
    t = _truth()
    held_out = t[t["application_id"].isin(["a0", "a1", "a4", "a5"])]
    ids = t["application_id"].to_numpy()
    p = np.linspace(0, 1, 10)
    # the second ring is made of rows that are not held out (training rows): it must not count as a miss
    rep = evaluate(held_out, ids, {"m": p}, {"m": [["a0", "a1"], ["a2", "a3", "a6"]]}, "m", 0.5, 0.5)
    ring = rep.models[0].ring
    assert ring["predicted"] == 1 and ring["precision"] == 1.0 and ring["recall"] == 1.0
