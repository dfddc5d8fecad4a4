"""Markdown tables for docs/benchmarks.md from the benchmark scripts' JSON, so the page shows what was run.

.venv/bin/python scripts/bench_markdown.py stream docs/bench/stream_*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SOURCES = (
    ("realtime", "real time (API)"),
    ("prospective_batch", "prospective batch"),
    ("batch_afterwards", "batch afterwards"),
)
ROWS = (
    ("auprc", "account AUPRC"),
    ("ring_recall_decline", "ring members declined"),
    ("ring_recall_review_or_decline", "ring members reviewed or declined"),
    ("ring_members_answered_with_ring", "ring members answered with a ring"),
    ("ring_members_from_third_answered_with_ring", "... from their ring's third arrival on"),
    ("errors", "errors"),
)


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def stream(paths: list[Path]) -> str:
    out = []
    for path in paths:
        r = json.loads(path.read_text())
        rev = f" on `{r['revision']}`" if "revision" in r else ""
        out.append(f"**`{path.name}`**: `{r['command']}`{rev}; {r['machine']}; {r['history']:,} applications before T, "
                   f"{r['stream']:,} posted after T; `{r['shipped']}` shipped; prospective batch in "
                   f"{r['windows']} windows; {r['seconds']:.0f} s.")  # fmt: skip
        out.append("")
        out.append("| | " + " | ".join(label for _, label in SOURCES) + " |")
        out.append("|---|" + "---|" * len(SOURCES))
        for key, label in ROWS:
            cells = []
            for src, _ in SOURCES:
                v = r[src].get(key)
                cells.append(
                    f"{v:.3f}" if key == "auprc" and v is not None else str(v) if key == "errors" else _pct(v)
                )
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        kinds = [k for k in r["realtime"]["lookalikes"] if k != "honest"] + ["honest"]
        for kind in kinds:
            cells = []
            for src, _ in SOURCES:
                m = r[src]["lookalikes"].get(kind)
                cells.append("" if m is None else f"{_pct(m['decline'])} / {_pct(m['review'])}")
            n = r["realtime"]["lookalikes"][kind]["n"]
            out.append(f"| {kind} ({n:,}): declined / reviewed | " + " | ".join(cells) + " |")
        if "realtime_over_prospective_auprc" in r:
            out.append("")
            out.append(
                f"Real-time AUPRC / prospective-batch AUPRC: **{r['realtime_over_prospective_auprc']:.3f}**."
            )
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["stream"])
    ap.add_argument("paths", nargs="+", type=Path)
    args = ap.parse_args()
    print(stream(args.paths))


if __name__ == "__main__":
    main()
