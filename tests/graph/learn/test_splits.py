"""The internal holdout of ``train``: the latest period by default, whole rings on one side (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from graph.learn.hetero import GraphInput
from graph.learn.splits import describe_split, group_split, holdout_split, ring_groups, time_split
from graph.learn.training import TrainConfig, train
from graph.settings import Settings
from graph.tables import GraphTables

torch.set_num_threads(1)
DAY = 86_400_000


def test_time_split_holds_out_the_latest_period_and_whole_rings():
    t = np.arange(20, dtype=np.int64) * DAY
    y = np.zeros(20)
    y[[3, 17]] = 1  # ring A: one member early, one late
    y[[5, 6]] = 1  # ring B: both early
    y[9] = np.nan  # unlabelled, late in ring C's company
    groups = np.array([f"a{i}" for i in range(20)], dtype=object)
    groups[[3, 17]] = "ring:A"
    groups[[5, 6]] = "ring:B"
    groups[[2, 16]] = "household"  # linked honest people, early and late
    hold, cut = time_split(t, groups, y, 0.25)
    labelled = np.flatnonzero(~np.isnan(y))
    assert cut == 15 * DAY  # the latest 5 of 19 labelled accounts: days 15..19
    assert set(np.flatnonzero(hold)) == {15, 16, 17, 18, 19, 3}  # ring A goes whole, with its early member
    assert not hold[2]  # a household without a positive is split by time, as it arrives in use
    assert not hold[[5, 6]].any() and not hold[9]
    fit = np.setdiff1d(labelled, np.flatnonzero(hold))
    assert (t[fit] < cut).all()
    assert not set(groups[fit]) & set(groups[hold]) - {"household"}


def test_holdout_split_records_the_split_and_keeps_random_available():
    t = np.arange(40, dtype=np.int64) * DAY
    y = (np.arange(40) % 5 == 0).astype(float)
    groups = ring_groups(np.array([f"a{i}" for i in range(40)], dtype=object), None)
    hold, info = holdout_split("time", t, groups, y, 0.25, seed=0)
    assert info == {
        "kind": "time",
        "cut": "1970-01-31T00:00:00Z",
        "cut_ms": 30 * DAY,
        "held_out_before_cut": 0,
        "holdout_fraction": 0.25,
    }
    assert hold.sum() == 10 and "time split at 1970-01-31T00:00:00Z" in describe_split(info)
    rand, info = holdout_split("random", t, groups, y, 0.25, seed=3)
    assert info == {"kind": "random", "seed": 3, "holdout_fraction": 0.25}
    np.testing.assert_array_equal(rand, group_split(groups, 0.25, 3))
    with pytest.raises(ValueError, match="unknown split 'weekly'"):
        holdout_split("weekly", t, groups, y, 0.25, seed=0)


def test_train_fits_on_the_past_and_records_the_split(toy_graph):
    tables, truth = toy_graph
    g = GraphInput(tables)
    groups = ring_groups(truth["application_id"], truth["ring_id"])
    cfg = TrainConfig(models=("rules", "gbt"))
    art = train(g, g.labels, groups, Settings(), cfg, progress=lambda m: None)
    hold, split = holdout_split("time", tables.accounts["created_at"].to_numpy(), groups, g.labels, 0.25, 0)
    assert art.split == split and art.summary()["split"] == split
    assert art.metrics["holdout_accounts"] == hold.sum()
    assert art.metrics["fit_accounts"] == (~np.isnan(g.labels)).sum() - hold.sum()
    fit = ~np.isnan(g.labels) & ~hold
    assert fit.sum() > 0 and (tables.accounts["created_at"].to_numpy()[fit] < split["cut_ms"]).all()
    held_rings = set(truth["ring_id"][hold].dropna())
    assert held_rings and not held_rings & set(truth["ring_id"][fit].dropna())
    rand = train(
        g, g.labels, groups, Settings(), TrainConfig(models=("gbt",), split="random"), lambda m: None
    )
    assert rand.split["kind"] == "random"
    assert rand.metrics["holdout_accounts"] == group_split(groups, 0.25, 0).sum()


def _early_rings(tables: GraphTables) -> GraphTables:
    """The toy graph with every ring member moved to the first day: a latest period without fraud."""
    acc = tables.accounts.copy()
    ring = acc["label"].to_numpy() == 1
    acc.loc[ring, "created_at"] = int(acc["created_at"].min())
    return GraphTables(acc, tables.links, tables.same_face)


def test_a_side_without_positives_is_a_clear_error(toy_graph):
    tables, truth = toy_graph
    g = GraphInput(_early_rings(tables))
    groups = ring_groups(truth["application_id"], truth["ring_id"])
    with pytest.raises(ValueError, match=r"time split \(cut at .*\) left no positives on the held-out side"):
        train(g, g.labels, groups, Settings(), TrainConfig(models=("gbt",)), progress=lambda m: None)
    with pytest.raises(ValueError, match="--split random"):
        train(g, g.labels, groups, Settings(), TrainConfig(models=("gbt",)), progress=lambda m: None)
    # every labelled account held out: nothing to fit on
    with pytest.raises(ValueError, match="nothing left to fit on"):
        train(
            g,
            g.labels,
            groups,
            Settings(),
            TrainConfig(models=("gbt",), holdout_fraction=1.0),
            lambda m: None,
        )
    rand = train(
        g, g.labels, groups, Settings(), TrainConfig(models=("gbt",), split="random"), lambda m: None
    )
    assert rand.metrics["holdout_positives"] > 0
    labels = pd.Series(g.labels)
    assert labels.notna().sum() > rand.metrics["holdout_accounts"] > 0
