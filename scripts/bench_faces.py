"""Benchmark 1:N face search: index types at 100k, the chosen index at 1M, all-pairs linking, and LFW.

Synthetic galleries come from the generator (``graph.synth.faces.sample_embeddings``: ArcFace-like 512-d
geometry with repeat captures). Queries are extra rows of the same draw, so a few are mated (another
capture of a gallery identity) and most are not, as at onboarding. "Exact" is brute-force inner product.

    .venv/bin/python scripts/bench_faces.py                      # 100k + LFW
    flock /tmp/ringwatch-bench.lock .venv/bin/python scripts/bench_faces.py --sizes 1000000 --types hnsw_index \
        --lfw-draws 0 --link-ef 32 --index-cache /tmp/rw-faces-cache --out out/bench_faces_1m.json

``--types`` picks what is compared: ``flat`` (exact), the shipped ``FaceIndex`` as ``hnsw_index`` and
``ivf_flat`` (each with a recall sweep and then all-pairs linking), and bare FAISS ``hnsw`` and
``ivf_sq8_refine`` candidates. ``--index-cache`` keeps a built FaceIndex (and its build figures) so a rerun
of the same size and parameters skips the build. Figures are printed and written to ``--out``. Timings on a
shared machine are noisy: the load average is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.calibrate import calibrate, identification, pair_scores  # noqa: E402
from embeddings.index import HNSW_EF_CONSTRUCTION, HNSW_M, FaceIndex, choose_nlist, normalise  # noqa: E402
from embeddings.linking import _top_k_above, link_all_pairs  # noqa: E402
from graph.synth.faces import sample_embeddings  # noqa: E402

SHARED = Path(os.environ.get("RINGWATCH_SHARED_DATA", ROOT / ".." / "shared" / "data"))
LATENCY_THREADS = 1


def rss_gb() -> float:
    return psutil.Process().memory_info().rss / 2**30


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "single_query_threads": LATENCY_THREADS,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "faiss": faiss.__version__,
    }


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner product in gallery chunks (no second copy of the gallery)."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.full((len(q), k), -1, np.int64)
    for lo in range(0, len(x), 131_072):
        s = q @ x[lo : lo + 131_072].T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, part + lo], axis=1)
        top = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_i, top, 1)
    return best_s, best_i


def recall(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    hits = [len(set(f[:k]) & set(e[:k])) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits) / k)


def recall_above(found: np.ndarray, exact: np.ndarray, exact_s: np.ndarray, threshold: float) -> float:
    """Share of the exact top-10 neighbours at or above the SAME_FACE threshold that the index returned:
    the neighbours that become links. The rest of an exact top-10 are strangers ranked by noise."""
    want = [set(e[s >= threshold]) for e, s in zip(exact, exact_s, strict=True)]
    total = sum(len(w) for w in want)
    got = sum(len(w & set(f)) for w, f in zip(want, found, strict=True))
    return float(got / total) if total else float("nan")


def latency(search, q: np.ndarray) -> dict:
    """Single queries on one FAISS thread (serving: concurrency comes from requests, and OpenMP threads
    spinning on busy cores multiplied latency 4-5x here); batches on all threads."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(LATENCY_THREADS)
    times = []
    for row in q:
        t0 = time.perf_counter()
        search(row[None])
        times.append(time.perf_counter() - t0)
    faiss.omp_set_num_threads(threads)
    ms = np.array(times) * 1e3
    t0 = time.perf_counter()
    search(q)
    batch = time.perf_counter() - t0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "batch_qps": round(len(q) / batch, 1),
    }


def raw_index(kind: str, x: np.ndarray, n: int) -> tuple[faiss.Index, dict]:
    """The comparison candidates as bare FAISS indexes (positions as ids)."""
    d = x.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
        index.add(x)
        return index, {"M": 32, "efConstruction": 64}
    nlist = choose_nlist(n)
    sq = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    sample = x[np.random.default_rng(0).choice(n, min(n, nlist * 64), replace=False)]
    sq.train(sample)
    index = faiss.IndexRefineFlat(sq)
    index.add(x)
    return index, {"nlist": nlist, "k_factor": 4}


def bench_raw(kind: str, x, q, ex_i, ex_s, threshold: float, truth, n: int, sweep: list[int]) -> list[dict]:
    rss0 = rss_gb()
    t0 = time.perf_counter()
    index, params = raw_index(kind, x, n)
    build = time.perf_counter() - t0
    mem = rss_gb() - rss0
    rows = []
    for value in sweep:
        if kind == "hnsw":
            sp = faiss.SearchParametersHNSW(efSearch=value)
        else:
            sp = faiss.IndexRefineSearchParameters(
                k_factor=4, base_index_params=faiss.SearchParametersIVF(nprobe=value)
            )
        _, found = index.search(q, 10, params=sp)
        lat = latency(lambda v, sp=sp, ix=index: ix.search(v, 10, params=sp), q)
        rows.append(
            {
                "type": kind,
                **params,
                ("efSearch" if kind == "hnsw" else "nprobe"): value,
                "build_s": round(build, 1),
                "index_mem_gb": round(mem, 2),
                **quality(found, ex_i, ex_s, threshold, truth),
                **lat,
            }
        )
        print(f"  {rows[-1]}", flush=True)
    del index
    gc.collect()
    return rows


@dataclass
class Truth:
    mated: np.ndarray
    q_ident: np.ndarray
    g_ident: np.ndarray


def move_queries_to_end(x: np.ndarray, ident: np.ndarray, q: int, rng: np.random.Generator) -> None:
    """Half the queries are repeat captures of an identity that stays in the gallery (mated searches),
    half are identities seen once (non-mated); swapped in place to the end so the gallery stays a view."""
    _, first, counts = np.unique(ident, return_index=True, return_counts=True)
    repeat_ids = set(np.unique(ident)[counts > 1].tolist())
    # a mated query is any capture after the first of a repeated identity
    later = np.setdiff1d(np.flatnonzero(np.isin(ident, list(repeat_ids))), first)
    single = first[counts == 1]
    pick = np.concatenate(
        [
            rng.choice(later, min(len(later), q // 2), replace=False),
            rng.choice(single, q - min(len(later), q // 2), replace=False),
        ]
    )
    pick = np.unique(pick)
    tail = np.arange(len(x) - q, len(x))
    # rows already in the tail stay; the others swap with tail rows that were not picked
    incoming = np.setdiff1d(pick, tail)
    outgoing = np.setdiff1d(tail, pick)[: len(incoming)]
    x[incoming], x[outgoing] = x[outgoing].copy(), x[incoming].copy()
    ident[incoming], ident[outgoing] = ident[outgoing].copy(), ident[incoming].copy()


def quality(found: np.ndarray, ex_i: np.ndarray, ex_s: np.ndarray, threshold: float, truth: Truth) -> dict:
    m = truth.mated
    mate_hit = [
        bool(np.any(truth.g_ident[f[f >= 0]] == qi)) for f, qi in zip(found, truth.q_ident, strict=True)
    ]
    mate_exact = [bool(np.any(truth.g_ident[e] == qi)) for e, qi in zip(ex_i, truth.q_ident, strict=True)]
    return {
        "recall@1": recall(found, ex_i, 1),
        "recall@10": recall(found, ex_i, 10),
        "recall@10_mated": recall(found[m], ex_i[m], 10),
        "recall@10_nonmated": recall(found[~m], ex_i[~m], 10),
        "mate_in_top10": float(np.mean(np.array(mate_hit)[m])),
        "mate_in_exact_top10": float(np.mean(np.array(mate_exact)[m])),
        "recall_above_threshold": recall_above(found, ex_i, ex_s, threshold),
        # mated: mostly the query's other captures; non-mated: twins and the impostor tail near the threshold
        "recall_above_threshold_mated": recall_above(found[m], ex_i[m], ex_s[m], threshold),
        "recall_above_threshold_nonmated": recall_above(found[~m], ex_i[~m], ex_s[~m], threshold),
        "exact_neighbours_above_threshold": [
            int((ex_s[m] >= threshold).sum()),
            int((ex_s[~m] >= threshold).sum()),
        ],
    }


def bench_size(n: int, args: argparse.Namespace) -> dict:
    print(f"== gallery {n:,} x {args.dim}", flush=True)
    t0 = time.perf_counter()
    x_all, ident = sample_embeddings(n + args.queries, dim=args.dim, seed=args.seed)
    move_queries_to_end(x_all, ident, args.queries, np.random.default_rng(args.seed))
    x, q = x_all[:n], np.ascontiguousarray(x_all[n:])
    gen_s = time.perf_counter() - t0
    mated = np.isin(ident[n:], ident[:n])
    truth = Truth(mated=mated, q_ident=ident[n:], g_ident=ident[:n])
    print(f"  generated in {gen_s:.0f}s; {mated.sum()} of {len(q)} queries are mated", flush=True)
    t0 = time.perf_counter()
    ex_s, ex_i = exact_topk(x, q, 10)
    exact_s = time.perf_counter() - t0
    # the SAME_FACE threshold from this gallery's own calibration (target FPIR 1% at this gallery size)
    sub = np.random.default_rng(1).choice(n, size=min(n, 200_000), replace=False)
    genuine, impostor = pair_scores(x[sub], ident[sub], max_impostor=1_000_000)
    cal = calibrate(genuine, impostor, target_fpir=0.01, gallery_size=n)
    del genuine, impostor
    result: dict = {
        "n": n,
        "dim": args.dim,
        "queries": len(q),
        "mated_queries": int(mated.sum()),
        "exact_search_s_per_query": round(exact_s / len(q), 4),
        "same_face_threshold": round(cal.same_face_threshold, 4),
        "calibration": {
            k: getattr(cal, k) for k in ("fnir_at_same_face_threshold", "threshold_at_fmr", "tail")
        },
        "queries_with_a_neighbour_above_threshold": int((ex_s[:, 0] >= cal.same_face_threshold).sum()),
        "candidates": [],
    }
    for kind in args.types:
        if kind == "flat":
            flat = faiss.IndexFlatIP(args.dim)
            flat.add(x)
            result["candidates"].append(
                {"type": "flat", "recall@10": 1.0, **latency(lambda v, f=flat: f.search(v, 10), q)}
            )
            print(f"  {result['candidates'][-1]}", flush=True)
            del flat
        elif kind in ("hnsw", "ivf_sq8_refine"):
            sweep = [64, 128, 256] if kind == "hnsw" else [16, 32, 64]
            result["candidates"] += bench_raw(
                kind, x, q, ex_i, ex_s, cal.same_face_threshold, truth, n, sweep
            )
    face_kinds = [k for k in args.types if k in ("hnsw_index", "ivf_flat")]
    if face_kinds:
        threshold = cal.same_face_threshold
        pairs_true = true_pairs(x, ident[:n], threshold)
        exact_rows = sampled_exact_pairs(x, threshold, args.link_check_rows, args.seed)
        result["face_index"] = {}
        for kind in face_kinds:
            result["face_index"][kind] = bench_face_index(
                kind, x, q, ex_i, ex_s, cal, truth, pairs_true, exact_rows, args
            )
            gc.collect()
    return result


def build_face_index(kind: str, x: np.ndarray, args: argparse.Namespace) -> tuple[FaceIndex, dict]:
    """Build the shipped FaceIndex, or load it from ``--index-cache`` with the figures of its build."""
    index_type = "hnsw" if kind == "hnsw_index" else kind
    params = {"hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction} if index_type == "hnsw" else {}
    tag = "_".join([index_type, str(len(x)), str(args.seed), *(str(v) for v in params.values())])
    cache = args.index_cache / f"{tag}.index" if args.index_cache else None
    gc.collect()
    if cache and cache.exists():
        info = json.loads(cache.with_suffix(".json").read_text())
        index = FaceIndex.load(cache)
        print(f"  FaceIndex {tag} loaded from {cache} (built in {info['build_s']}s)", flush=True)
        return index, {**info, "loaded_from_cache": str(cache)}
    ids = [f"app-{i}" for i in range(len(x))]
    rss0 = rss_gb()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    index = FaceIndex.build(ids, x, index_type=index_type, **params)
    build = time.perf_counter() - t0
    info = {
        "type": index.index_type,
        **params,
        **({"nlist": int(index._index.nlist)} if index_type == "ivf_flat" else {}),
        "build_s": round(build, 1),
        "index_mem_gb": round(rss_gb() - rss0, 2),
        "build_load_avg_1m": [round(load0, 1), round(os.getloadavg()[0], 1)],
    }
    print(f"  FaceIndex built: {info}", flush=True)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        index.save(cache)
        cache.with_suffix(".json").write_text(json.dumps(info))
    return index, info


def bench_face_index(kind, x, q, ex_i, ex_s, cal, truth, pairs_true, exact_rows, args) -> dict:
    """The shipped FaceIndex: a recall/latency sweep, then all-pairs linking at the calibrated threshold."""
    index, out = build_face_index(kind, x, args)
    knob, values = ("ef_search", args.ef) if kind == "hnsw_index" else ("nprobe", args.nprobe)
    out["sweep"] = []
    for value in values:
        opt = {knob: value}
        _, found = index.search_arrays(q, 10, **opt)
        row = {
            knob: value,
            **quality(found, ex_i, ex_s, cal.same_face_threshold, truth),
            **latency(lambda v, o=opt, ix=index: ix.search_arrays(v, 10, **o), q),
        }
        out["sweep"].append(row)
        print(f"  {row}", flush=True)
    for key in ("recall@10", "recall_above_threshold", "mate_in_top10"):
        ok = [r for r in out["sweep"] if r[key] >= 0.99]
        out[f"smallest_{knob}_{key}>=0.99"] = min(ok, key=lambda r: r[knob]) if ok else None
    out["linking"] = []
    for value in args.link_ef if kind == "hnsw_index" else args.link_nprobe:
        if args.link_sample_rows:
            row = bench_linking_sampled(index, x, {knob: value}, cal, exact_rows, args)
        else:
            row = bench_linking(index, {knob: value}, cal, pairs_true, exact_rows, args)
        out["linking"].append(row)
    out["peak_rss_gb"] = round(peak_rss_gb(), 2)
    del index
    return out


def bench_linking(index: FaceIndex, opt: dict, cal, pairs_true: set, exact_rows: dict, args) -> dict:
    """All-pairs linking, checked against every same-identity pair above the threshold and against an exact
    scan of sampled gallery rows (every neighbour above the threshold, impostors and twins included)."""
    threshold = cal.same_face_threshold
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    pairs = link_all_pairs(index, threshold, k=args.link_k, batch_size=16_384, progress=False, **opt)
    link_s = time.perf_counter() - t0
    a = np.array([int(v[4:]) for v in pairs.a], dtype=np.int64)
    b = np.array([int(v[4:]) for v in pairs.b], dtype=np.int64)
    found = set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True))
    want = {(min(r, c), max(r, c)) for r, cols in exact_rows.items() for c in cols}
    out = {
        "threshold": round(threshold, 4),
        "threshold_fnir": round(cal.fnir_at_same_face_threshold, 4),
        "k": args.link_k,
        **opt,
        "seconds": round(link_s, 1),
        "load_avg_1m": [round(load0, 1), round(os.getloadavg()[0], 1)],
        "pairs": len(pairs),
        "true_pairs_above_threshold": len(pairs_true),
        "recall_of_true_pairs": round(len(found & pairs_true) / max(1, len(pairs_true)), 4),
        "other_pairs": len(found - pairs_true),
        "sampled_rows": len(exact_rows),
        "exact_pairs_of_sampled_rows": len(want),
        "recall_of_exact_pairs_of_sampled_rows": round(len(found & want) / max(1, len(want)), 4),
    }
    print(f"  linking: {out}", flush=True)
    return out


def bench_linking_sampled(index: FaceIndex, x: np.ndarray, opt: dict, cal, exact_rows: dict, args) -> dict:
    """The all-pairs pass on sampled gallery rows only, for galleries where the whole pass would not fit the
    time available: each face's search is independent, so the pass takes (time per face) x n, and recall is
    that of the sampled rows' exact neighbours above the threshold, found from either end as in the full pass
    (the partners' own searches are run too, but not timed)."""
    threshold = cal.same_face_threshold
    rows = np.array(sorted(exact_rows), dtype=np.int64)[: args.link_sample_rows]
    partners = np.setdiff1d(np.concatenate([exact_rows[int(r)] for r in rows] + [rows[:0]]), rows)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    found_from = link_rows(index, x, rows, threshold, opt, args.link_k)
    per_face = (time.perf_counter() - t0) / len(rows)
    found_from.update(link_rows(index, x, partners, threshold, opt, args.link_k))
    want = {(int(r), int(c)) for r in rows.tolist() for c in exact_rows[r].tolist()}
    got = {(r, c) for r, c in want if c in found_from.get(r, ()) or r in found_from.get(c, ())}
    out = {
        "threshold": round(threshold, 4),
        "k": args.link_k,
        **opt,
        "sampled_rows": len(rows),
        "seconds_per_face": round(per_face, 6),
        "extrapolated_seconds_for_gallery": round(per_face * len(x), 1),
        "load_avg_1m": [round(load0, 1), round(os.getloadavg()[0], 1)],
        "exact_pairs_of_sampled_rows": len(want),
        "recall_of_exact_pairs_of_sampled_rows": round(len(got) / max(1, len(want)), 4),
    }
    print(f"  linking (sampled): {out}", flush=True)
    return out


def link_rows(index: FaceIndex, x, rows: np.ndarray, threshold: float, opt: dict, k: int) -> dict[int, set]:
    """What ``link_all_pairs`` keeps for these gallery rows: up to ``k`` neighbours above the threshold."""
    out: dict[int, set] = {}
    for lo in range(0, len(rows), 16_384):
        part = rows[lo : lo + 16_384]
        sims, keys = index.search_arrays(x[part], k + 1, **opt)
        # FaceIndex.build gave row i the key i
        sims, keys = _top_k_above(sims, keys, part, threshold, k)
        for r, krow in zip(part.tolist(), keys.tolist(), strict=True):
            out[r] = {c for c in krow if c >= 0}
    return out


def sampled_exact_pairs(x: np.ndarray, threshold: float, rows: int, seed: int) -> dict[int, np.ndarray]:
    """Every gallery neighbour at or above the threshold of ``rows`` random gallery rows, by brute force."""
    pick = np.sort(np.random.default_rng(seed + 7).choice(len(x), size=min(rows, len(x)), replace=False))
    out: dict[int, list[np.ndarray]] = {int(r): [] for r in pick}
    for qlo in range(0, len(pick), 1024):
        qrows = pick[qlo : qlo + 1024]
        qv = x[qrows]
        for lo in range(0, len(x), 131_072):
            r, c = np.nonzero(qv @ x[lo : lo + 131_072].T >= threshold)
            for i, j in zip(qrows[r].tolist(), (c + lo).tolist(), strict=True):
                if i != j:
                    out[i].append(j)
    return {r: np.array(v, dtype=np.int64) for r, v in out.items()}


def true_pairs(x: np.ndarray, ident: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """Same-identity pairs whose cosine clears the threshold: what linking should find."""
    order = np.argsort(ident, kind="stable")
    bounds = np.flatnonzero(np.diff(ident[order])) + 1
    out = set()
    for group in np.split(order, bounds):
        if len(group) < 2:
            continue
        v = normalise(x[group], x.shape[1])
        s = v @ v.T
        a, b = np.nonzero(np.triu(s >= threshold, k=1))
        out.update(
            (int(min(group[i], group[j])), int(max(group[i], group[j]))) for i, j in zip(a, b, strict=True)
        )
    return out


def bench_lfw(seeds: int) -> dict:
    """One random enrolment image per person over the full 423-identity gallery; several draws."""
    path = SHARED / "lfw_dlib128" / "embeddings.npz"
    if not path.exists():
        print(f"LFW embeddings not found at {path}; skipped")
        return {"skipped": f"not found: {path}"}
    data = np.load(path)
    x, labels = data["embeddings"], data["identity"]
    runs = [identification(x, labels, fpir_targets=(0.01, 0.003), seed=s) for s in range(seeds)]
    # cross-check rank-1 of the first draw through FaceIndex itself (exact flat index)
    r0 = runs[0]
    rng = np.random.default_rng(0)
    names, lab = np.unique(labels, return_inverse=True)
    enrol = np.array([rng.choice(np.flatnonzero(lab == c)) for c in range(len(names))])
    probes = np.setdiff1d(np.arange(len(x)), enrol)
    index = FaceIndex.build([str(n) for n in names], x[enrol])
    top = [hits[0][0] for hits in index.search(x[probes], k=1)]
    rank1_index = float(np.mean(np.array(top) == names[lab[probes]]))

    def summary(values: list[float]) -> dict:
        return {
            "mean": round(float(np.mean(values)), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }

    out = {
        "gallery_size": r0.gallery_size,
        "probes_per_draw": r0.mated_searches,
        "enrolment_draws": seeds,
        "rank1": summary([r.rank1 for r in runs]),
        "rank1_via_face_index_draw0": round(rank1_index, 4),
        "rank1_draw0": round(r0.rank1, 4),
        "fnir_at_fpir_0.01": summary([r.fnir_at_fpir["0.01"]["fnir"] for r in runs]),
        "fnir_at_fpir_0.003": summary([r.fnir_at_fpir["0.003"]["fnir"] for r in runs]),
        "threshold_at_fpir_0.01": summary([r.fnir_at_fpir["0.01"]["threshold"] for r in runs]),
        "threshold_at_fpir_0.003": summary([r.fnir_at_fpir["0.003"]["threshold"] for r in runs]),
    }
    print(f"== LFW dlib-128: {out}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--types",
        nargs="*",
        default=["flat", "hnsw_index", "ivf_flat", "ivf_sq8_refine"],
        help="index types to compare",
    )
    ap.add_argument("--nprobe", type=int, nargs="*", default=[16, 32, 64, 128, 256])
    ap.add_argument("--ef", type=int, nargs="*", default=[16, 32, 64, 128, 256, 512])
    ap.add_argument("--hnsw-m", type=int, default=HNSW_M)
    ap.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    ap.add_argument("--index-cache", type=Path, default=None, help="folder to keep built FaceIndexes in")
    ap.add_argument("--link-k", type=int, default=20)
    ap.add_argument("--link-nprobe", type=int, nargs="*", default=[8])
    ap.add_argument("--link-ef", type=int, nargs="*", default=[32])
    ap.add_argument("--link-check-rows", type=int, default=4000, help="rows checked exactly for link recall")
    ap.add_argument(
        "--link-sample-rows",
        type=int,
        default=0,
        help="time the all-pairs pass on this many of the checked rows and extrapolate (0: the whole pass)",
    )
    ap.add_argument("--lfw-draws", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench_faces.json")
    args = ap.parse_args()
    report = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sizes": [],
    }
    print(f"machine: {report['machine']}", flush=True)
    if args.lfw_draws:
        report["lfw"] = bench_lfw(args.lfw_draws)
    for n in args.sizes:
        report["sizes"].append(bench_size(n, args))
        gc.collect()
    report["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    report["peak_rss_gb"] = round(peak_rss_gb(), 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
