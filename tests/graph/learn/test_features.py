import numpy as np
import pandas as pd

from graph.learn.features import FeatureConfig, compute_features, features_for_new
from graph.learn.hetero import EDGE_TYPES, FACE_EDGE, GraphInput, to_heterodata
from graph.tables import GraphTables


def _tiny() -> GraphTables:
    day = 86_400_000
    accounts = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "created_at": [0, day, 2 * day, 100 * day],
            "name_key": ["n1", "n2", "n3", "n1"],
            "dob_key": ["d1", "d2", "d2", "d1"],
            "birth_year": [1990] * 4,
            "liveness_score": [0.9, np.nan, 0.5, 0.8],
            "document_authenticity_score": [0.9, 0.9, 0.9, 0.9],
            "label": [0.0, 1.0, 1.0, np.nan],
        }
    )
    links = pd.DataFrame(
        {
            "account": [0, 1, 2, 3, 0, 1],
            "rel": ["USED_DEVICE"] * 3 + ["USED_DEVICE", "HAS_PHONE", "HAS_PHONE"],
            "signal": ["dev1", "dev1", "dev1", "dev2", "ph1", "ph2"],
        }
    )
    same_face = pd.DataFrame({"src": [1], "dst": [2], "similarity": np.float32([0.8])})
    return GraphTables(accounts, links, same_face)


def test_signal_statistics_match_hand_counts():
    f, state = compute_features(_tiny())
    # dev1 is shared by a, b, c: two other accounts, under two other names, dobs d1/d2
    assert np.allclose(f["used_device_deg"][:3], np.log1p(2))
    assert np.allclose(f["used_device_names"][:3], np.log1p(2))
    assert np.allclose(f["used_device_dobs"][:3], np.log1p(1))
    assert f["used_device_deg"][3] == 0  # dev2 is used once
    assert f["has_phone_has"].tolist() == [1, 1, 0, 0]
    # b and c share a face under different names but the same dob
    assert np.isclose(f["face_other_name"][1], np.log1p(1)) and f["face_other_both"][1] == 0
    assert f["face_max_sim"][2] == np.float32(0.8)
    # a and d share name and dob (a re-applicant)
    assert np.isclose(f["reuse"][0], np.log1p(1))
    assert f["liveness_score_missing"].tolist() == [0, 1, 0, 0]
    # a, b, c form one component, d another
    assert state.component[0] == state.component[1] == state.component[2] != state.component[3]
    assert np.isclose(f["comp_size"][0], np.log1p(2))


def test_hubs_do_not_link():
    t = _tiny()
    f, state = compute_features(t, FeatureConfig(hub_degree=2))
    assert f["n_rare"][0] == 0 and f["n_hub"][0] == 1  # dev1 has 3 users > hub_degree
    # without the device, b and c are still joined by their face match
    assert state.component[1] == state.component[2] != state.component[0]


def test_features_for_new_match_batch_for_an_appended_account(toy_graph):
    tables, _ = toy_graph
    n = tables.n_accounts
    last = n - 1
    keep = tables.links["account"] < last
    sf_keep = (tables.same_face["src"] < last) & (tables.same_face["dst"] < last)
    old = GraphTables(
        tables.accounts.iloc[:last].reset_index(drop=True), tables.links[keep], tables.same_face[sf_keep]
    )
    g_old = GraphInput(old)
    full, _ = compute_features(tables)
    new_links = tables.links[~keep].assign(account=0)
    sf = tables.same_face[~sf_keep]
    new_sf = pd.DataFrame(
        {"new": 0, "existing": sf["src"].to_numpy(), "similarity": sf["similarity"].to_numpy()}
    )
    st = g_old.state
    name_of = old.accounts["name_key"].map(st.name_codes).fillna(0).to_numpy(np.int64)
    dob_of = old.accounts["dob_key"].map(st.dob_codes).fillna(0).to_numpy(np.int64)
    nf = features_for_new(
        st,
        tables.accounts.iloc[[last]],
        new_links,
        new_sf,
        name_of,
        dob_of,
        g_old.features[["face_other_both"]].to_numpy(),
    )
    got = nf.frame.iloc[0]
    want = full.iloc[last]
    own = [c for c in full.columns if not c.startswith(("nb_", "comp_"))]
    assert np.allclose(got[own].to_numpy(), want[own].to_numpy(), atol=1e-5, equal_nan=True)


def test_heterodata_has_every_relation_and_reverse(toy_graph):
    tables, _ = toy_graph
    data, maps = to_heterodata(tables)
    assert set(EDGE_TYPES) <= set(data.edge_types)
    assert data[FACE_EDGE].edge_attr.shape[0] == 2 * len(tables.same_face)
    assert data["account"].x.shape[0] == tables.n_accounts == len(maps.accounts)
    for et in EDGE_TYPES:
        src, _, dst = et
        ei = data[et].edge_index
        if ei.numel():
            assert int(ei[0].max()) < data[src].num_nodes and int(ei[1].max()) < data[dst].num_nodes
    # every signal node in the GNN graph links at least two accounts
    dev = data["account", "used_device", "Device"].edge_index[1]
    assert int(np.bincount(dev.numpy()).min()) >= 2


def test_popular_signals_below_the_hub_cap_do_not_join_components():
    t = _tiny()
    f, state = compute_features(t, FeatureConfig(comp_degree=2))
    # dev1 (3 users) still links a, b, c for the neighbour features, but joins no component
    assert f["n_rare"][0] == 1
    assert state.component[0] != state.component[1]
    assert state.component[1] == state.component[2]  # the face match still joins b and c
    assert f["comp_size"][0] == 0


def _prefix_burst() -> GraphTables:
    """Four applications from one quiet /24 within an hour: a and b share an address (a household), c and d
    live elsewhere; c, d share a document template; e applies from the /24 a week later."""
    minute, day = 60_000, 86_400_000
    n = 5
    accounts = pd.DataFrame(
        {
            "id": list("abcde"),
            "created_at": [0, 10 * minute, 20 * minute, 30 * minute, 7 * day],
            "name_key": list("vwxyz"),
            "dob_key": list("vwxyz"),
            "birth_year": [1990] * n,
            "liveness_score": [0.9] * n,
            "document_authenticity_score": [0.9] * n,
            "label": [0.0, 0.0, 1.0, 1.0, 0.0],
        }
    )
    links = pd.DataFrame(
        {
            "account": [*range(n), *range(n), 2, 3],
            "rel": ["FROM_PREFIX"] * n + ["LIVES_AT"] * n + ["HAS_TEMPLATE"] * 2,
            "signal": ["p1"] * n + ["home", "home", "x1", "x2", "x3"] + ["t1", "t1"],
        }
    )
    return GraphTables(accounts, links, pd.DataFrame({"src": [], "dst": [], "similarity": []}))


def test_prefix_bursts_count_strangers_not_the_household():
    f, _ = compute_features(_prefix_burst())
    # within 2 hours: a sees b (same address), c, d: two strangers; c sees a, b, d: three
    assert np.allclose(f["prefix_burst_strangers"], np.log1p([2, 2, 3, 3, 0]))
    assert np.allclose(f["prefix_burst_template"], np.log1p([0, 0, 1, 1, 0]))


def test_prefix_bursts_of_a_new_account_match_batch():
    tables = _prefix_burst()
    full, _ = compute_features(tables)
    old_links = tables.links[tables.links["account"] != 3]
    old_links = old_links.assign(account=old_links["account"].replace({4: 3}))
    old = GraphTables(tables.accounts.iloc[[0, 1, 2, 4]].reset_index(drop=True), old_links, tables.same_face)
    _, st = compute_features(old)
    new_links = tables.links[tables.links["account"] == 3].assign(account=0)
    nf = features_for_new(
        st,
        tables.accounts.iloc[[3]],
        new_links,
        {"new": np.zeros(0, np.int64), "existing": np.zeros(0, np.int64), "similarity": np.zeros(0)},
        np.zeros(4, np.int64),
        np.zeros(4, np.int64),
        np.zeros((4, 6)),
    )
    for c in ("prefix_burst_strangers", "prefix_burst_template", "from_prefix_burst"):
        assert np.isclose(nf.frame[c][0], full[c][3]), c


def test_key_log_counts_both_levels_and_forgets_what_no_window_reaches():
    from graph.learn.features import _T_SCALE, _KeyLog

    log = _KeyLog(horizon_s=100)
    node = 7 * _T_SCALE
    log.add(np.array([node + 10, node + 20]))
    assert list(log.within(np.array([node + 15]), 5)) == [2]
    many = node + np.arange(
        1000, 1000 + _KeyLog.MERGE_AT
    )  # one a second: merged, and the two old ones dropped
    log.add(many[::-1].copy())
    assert len(log.fresh) == 0 and len(log) == 101  # the last 100 seconds and the newest
    assert log.within(np.array([node + 15]), 5)[0] == 0
    last = int(many.max())
    assert log.within(np.array([last]), 10)[0] == 11 and log.within(np.array([last + _T_SCALE]), 10)[0] == 0
