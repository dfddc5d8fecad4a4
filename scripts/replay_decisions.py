"""Replay the API benchmark's stream of new applications through the real-time decision path and score the
answers against the generator's truth: are real-time decisions right, not just fast?

Works on a set-up made by ``scripts/bench_api.py --keep DIR`` (history loaded, model trained, batch-scored),
which it copies first (decisions write to the store). Applications go through ``api.http.decisions.decide`` one per
pass, in arrival order, as the server's worker would run them; the truth comes from regenerating the set-up's
data with the same seed.

    .venv/bin/python scripts/replay_decisions.py --keep /tmp/rw-bench-api --n 3000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.http.batcher import one_thread_pools  # noqa: E402
from api.http.context import Context  # noqa: E402
from api.http.decisions import decide  # noqa: E402
from api.http.schemas import Application  # noqa: E402
from graph.store import arcade  # noqa: E402
from graph.synth import FaceParams, SynthConfig  # noqa: E402
from graph.synth.dataset import generate  # noqa: E402
from scripts.bench_api import bench_settings  # noqa: E402


def replay(data: Path, n: int, rebuild_every: int) -> pd.DataFrame:
    # no rebuild on its own; with --rebuild-every, decided accounts are kept for the rebuilds called below
    keep = 10**9 if rebuild_every else 0
    settings = bench_settings(data, 512).model_copy(
        update={"scorer_refresh_accounts": keep, "scorer_refresh_s": 0}
    )
    one_thread_pools()
    arcade.start(settings)
    ctx = Context.create(settings)
    try:
        ctx.open()
        while ctx.scoring.state not in ("ready", "no model", "failed"):
            time.sleep(0.5)
        lines = (data / "bench_new_applications.jsonl").read_text().splitlines()[:n]
        rows, started = [], time.perf_counter()
        for k, line in enumerate(lines):
            if rebuild_every and k and k % rebuild_every == 0:
                ctx.scoring.refresh()
            (out,) = decide(ctx, [Application(**json.loads(line))]).values()
            rows.append({"application_id": out.application_id, "risk": getattr(out, "risk_score", np.nan),
                         "decision": getattr(out, "decision", "rejected")})  # fmt: skip
            if (k + 1) % 500 == 0 or k + 1 == len(lines):
                print(f"  {k + 1}/{len(lines)} decided, {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        ctx.close()
        arcade.stop(settings)
    return pd.DataFrame(rows)


def with_truth(decisions: pd.DataFrame, data: Path) -> pd.DataFrame:
    setup = json.loads((data / "bench_ready.json").read_text())
    _, truth = generate(
        setup["accounts"] + setup["new"], seed=setup["seed"], config=SynthConfig(face=FaceParams(dim=512))
    )
    t = truth.set_index("application_id")
    ids = decisions["application_id"]
    return decisions.assign(label=t.loc[ids, "label"].to_numpy(), scenario=t.loc[ids, "scenario"].to_numpy())


def summary(df: pd.DataFrame) -> dict:
    honest, fraud = df[df["label"] == 0], df[df["label"] == 1]
    by = df.groupby("scenario")["decision"].agg(declined=lambda d: int((d == "decline").sum()), n="size")
    return {
        "applications": len(df),
        "fraud": len(fraud),
        "honest_declined": int((honest["decision"] == "decline").sum()),
        "honest_declined_rate": round(float((honest["decision"] == "decline").mean()), 4),
        "fraud_declined": int((fraud["decision"] == "decline").sum()),
        "auprc": round(float(average_precision_score(df["label"], df["risk"])), 3) if len(fraud) else None,
        "by_scenario": {s: {"declined": int(r.declined), "n": int(r.n)} for s, r in by.iterrows()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--keep", type=Path, required=True, help="a bench_api.py --keep set-up (copied, not changed)"
    )
    ap.add_argument("--n", type=int, default=3000, help="applications to replay, in arrival order")
    ap.add_argument(
        "--rebuild-every", type=int, default=0, help="rebuild the scorer's cache every N decisions"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args()
    if not (args.keep / "bench_ready.json").exists():
        raise SystemExit(f"{args.keep} is not a bench_api.py set-up (no bench_ready.json)")
    work = Path(tempfile.mkdtemp(prefix="rw-replay-")) / "setup"
    shutil.copytree(args.keep, work, ignore=shutil.ignore_patterns("bench_ports.json", "*.log"))
    try:
        print(f"replaying {args.n} applications on a copy in {work}")
        df = with_truth(replay(work, args.n, args.rebuild_every), work)
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)
    result = summary(df)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
