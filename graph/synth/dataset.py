"""Plan the whole population with integer arrays, then materialise it chunk by chunk.

Determinism: every random draw comes from generators seeded by ``(seed, stream)`` or
``(seed, stream, chunk)``, and the chunk size is a constant, so the same seed gives the same rows whether
they are written to Parquet or returned as DataFrames.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graph.schema import OPTIONAL_STR, REQUIRED
from graph.synth.config import RING_STYLES, SCENARIOS, SynthConfig
from graph.synth.faces import FaceModel
from graph.synth.plan import Keys, Plan
from graph.synth.population import Networks, Templates, honest_plan
from graph.synth.render import Renderer, cat, digits, null_where
from graph.synth.report import REPORT_FILES, ReportSampler, write_report
from graph.synth.rings import ring_plan, ring_sizes

CHUNK = 25_000
APPLICATIONS = "applications.parquet"
TRUTH = "truth.parquet"

# the contract's text columns, minus the ones a generator has no business filling
STRING_COLUMNS = tuple(c for c in REQUIRED + OPTIONAL_STR if c not in ("selfie_path", "ring_id"))


def applications_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [pa.field(c, pa.string(), nullable=c not in ("application_id", "created_at")) for c in STRING_COLUMNS]
        + [
            pa.field("face_embedding", pa.list_(pa.float32())),
            pa.field("liveness_score", pa.float64()),
            pa.field("document_authenticity_score", pa.float64()),
        ],
        metadata={"face_dim": str(dim)},
    )


TRUTH_SCHEMA = pa.schema(
    [
        pa.field("application_id", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("ring_id", pa.string()),
        pa.field("scenario", pa.string(), nullable=False),
        pa.field("ring_style", pa.string()),
        pa.field("person_id", pa.int64(), nullable=False),
        pa.field("face_identity", pa.int64()),
    ]
)


def build_plan(n: int, seed: int, cfg: SynthConfig) -> Plan:
    """All ``n`` applications as integer keys, in time order."""
    if n < 1:
        raise ValueError("need at least one application")
    rng = np.random.default_rng([seed, 1])
    keys = Keys()
    templates = Templates.create(rng, n, cfg)
    nets = Networks.create(keys, n, cfg)
    start_s = int(np.datetime64(cfg.start, "s").astype(np.int64))
    sizes = ring_sizes(rng, n, cfg.rings)
    parts = [honest_plan(n - int(sizes.sum()), cfg, rng, keys, templates, nets, start_s)]
    if len(sizes):
        parts.append(ring_plan(sizes, cfg, rng, keys, templates, nets, start_s))
    plan = Plan.concat(parts)
    plan = plan.take(np.lexsort((rng.random(n), plan.created)))
    # a shared mailbox shows its owner's name, whoever uses it
    _, owner, inverse = np.unique(plan.email, return_index=True, return_inverse=True)
    plan.email_first = plan.first[owner][inverse]
    plan.email_last = plan.last[owner][inverse]
    return plan


class FaceSource:
    """Face vectors for plan rows. Identities seen in several rows (re-applicants, reused faces, twins)
    are drawn once up front; the rest are drawn per chunk, so memory stays at one chunk."""

    def __init__(self, plan: Plan, seed: int, cfg: SynthConfig) -> None:
        rng = np.random.default_rng([seed, 2])
        self.model = FaceModel.create(cfg.face, rng)
        present = plan.face[plan.face >= 0]
        uniq, counts = np.unique(present, return_counts=True)
        self.shared = np.unique(np.concatenate([uniq[counts > 1], plan.twin_keys, plan.twin_bases]))
        self.vectors = self.model.identities(rng, len(self.shared))
        if len(plan.twin_keys):
            t = np.searchsorted(self.shared, plan.twin_keys)
            b = np.searchsorted(self.shared, plan.twin_bases)
            self.vectors[t] = self.model.twins(rng, self.vectors[b])

    def embed(self, face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One capture per row with ``face >= 0``: float32 [count, dim]."""
        keys = face[face >= 0]
        pos = np.minimum(np.searchsorted(self.shared, keys), max(len(self.shared) - 1, 0))
        is_shared = (self.shared[pos] == keys) if len(self.shared) else np.zeros(len(keys), bool)
        ident = np.empty((len(keys), self.model.params.dim), dtype=np.float32)
        ident[is_shared] = self.vectors[pos[is_shared]]
        ident[~is_shared] = self.model.identities(rng, int((~is_shared).sum()))
        return self.model.captures(rng, ident)


def face_column(emb: np.ndarray, present: np.ndarray) -> pa.Array:
    dim = emb.shape[1]
    offsets = np.zeros(len(present) + 1, dtype=np.int32)
    np.cumsum(present * dim, out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(emb.reshape(-1)), type=pa.list_(pa.float32()), mask=pa.array(~present)
    )


def _names(vocab: tuple[str, ...], index: np.ndarray) -> pa.Array:
    arr = pa.array([*vocab, None], pa.string())
    return arr.take(pa.array(np.where(index >= 0, index, len(vocab)).astype(np.int64)))


@dataclass
class Chunk:
    applications: pa.Table
    truth: pa.Table
    rows: np.ndarray
    embeddings: np.ndarray  # float32 [m, dim] for rows[present]
    present: np.ndarray


def chunks(plan: Plan, seed: int, cfg: SynthConfig, faces: FaceSource | None = None) -> Iterator[Chunk]:
    faces = faces or FaceSource(plan, seed, cfg)
    renderer = Renderer(salt=seed)
    dim = cfg.face.dim
    schema = applications_schema(dim)
    for c, lo in enumerate(range(0, len(plan), CHUNK)):
        rows = np.arange(lo, min(lo + CHUNK, len(plan)))
        part = plan.take(rows)
        rng = np.random.default_rng([seed, 3, c])
        cols = renderer.columns(part, rows, rng)
        present = part.face >= 0
        emb = faces.embed(part.face, rng)
        cols["face_embedding"] = face_column(emb, present)
        cols["liveness_score"] = pa.array(np.round(part.liveness.astype(np.float64), 4))
        cols["document_authenticity_score"] = pa.array(np.round(part.doc_auth.astype(np.float64), 4))
        apps = pa.Table.from_pydict(cols, schema=schema)
        truth = pa.Table.from_pydict(
            {
                "application_id": cols["application_id"],
                "label": pa.array(part.label, pa.int8()),
                "ring_id": null_where(part.ring < 0, cat("ring-", digits(np.maximum(part.ring, 0), 5))),
                "scenario": _names(SCENARIOS, part.scenario),
                "ring_style": _names(RING_STYLES, part.style),
                "person_id": pa.array(part.person),
                "face_identity": pa.array(np.where(present, part.face, 0), mask=~present),
            },
            schema=TRUTH_SCHEMA,
        )
        yield Chunk(apps, truth, rows, emb, present)


@dataclass
class Summary:
    out_dir: str
    rows: int
    ring_rows: int
    rings: int
    seconds: float
    peak_rss_mb: float
    scenarios: dict[str, int] = field(default_factory=dict)
    ring_styles: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def generate(n: int, seed: int = 0, config: SynthConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """In-memory variant of ``write`` for tests and notebooks: (applications, truth) DataFrames."""
    cfg = config or SynthConfig()
    plan = build_plan(n, seed, cfg)
    parts = list(chunks(plan, seed, cfg))
    apps = _frame(pa.concat_tables([p.applications for p in parts]))
    truth = _frame(pa.concat_tables([p.truth for p in parts]))
    return apps, truth


def _frame(table: pa.Table) -> pd.DataFrame:
    """Strings as Python objects with None for missing, as ``graph.contract.io.read_table`` returns them."""
    df = table.to_pandas()
    for name in table.column_names:
        if pa.types.is_string(table.schema.field(name).type):
            df[name] = pd.Series(table[name].to_numpy(zero_copy_only=False), dtype=object, index=df.index)
    return df


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    config: SynthConfig | None = None,
    progress: Callable[[int], None] | None = None,
    report: bool = True,
) -> Summary:
    """Writes applications.parquet, truth.parquet and (unless ``report`` is false) report.md with plots.

    ``progress`` is called with the number of rows written after each chunk.
    """
    t0 = time.perf_counter()
    cfg = config or SynthConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = build_plan(n, seed, cfg)
    faces = FaceSource(plan, seed, cfg)
    sampler = ReportSampler(plan, seed, cfg.face.dim) if report else None
    for stale in REPORT_FILES if not report else ():
        (out / stale).unlink(missing_ok=True)
    schema = applications_schema(cfg.face.dim)
    string_cols = [c for c in STRING_COLUMNS if c not in ("application_id",)]
    with (
        pq.ParquetWriter(
            out / APPLICATIONS,
            schema,
            compression={**dict.fromkeys(schema.names, "snappy"), "face_embedding": "none"},
            use_dictionary=string_cols,
        ) as app_writer,
        pq.ParquetWriter(out / TRUTH, TRUTH_SCHEMA, compression="snappy") as truth_writer,
    ):
        for chunk in chunks(plan, seed, cfg, faces):
            app_writer.write_table(chunk.applications)
            truth_writer.write_table(chunk.truth)
            if sampler is not None:
                sampler.collect(chunk.rows, chunk.embeddings, chunk.present)
            if progress is not None:
                progress(len(chunk.rows))
    files = [APPLICATIONS, TRUTH]
    ring_rows = int((plan.ring >= 0).sum())
    summary = Summary(
        out_dir=str(out),
        rows=len(plan),
        ring_rows=ring_rows,
        rings=int(len(np.unique(plan.ring[plan.ring >= 0]))),
        seconds=0.0,
        peak_rss_mb=0.0,
        scenarios={s: int((plan.scenario == i).sum()) for i, s in enumerate(SCENARIOS)},
        ring_styles={s: int(len(np.unique(plan.ring[(plan.style == i)]))) for i, s in enumerate(RING_STYLES)},
        files=files,
    )
    if sampler is not None:
        files += write_report(out, plan, cfg, sampler, summary, seed)
    summary.seconds = time.perf_counter() - t0
    summary.peak_rss_mb = peak_rss_mb()
    if sampler is not None:
        (out / "report.md").write_text(
            (out / "report.md").read_text() + _timing_line(summary), encoding="utf-8"
        )
    return summary


def _timing_line(summary: Summary) -> str:
    return (
        f"\nGenerated in {summary.seconds:.1f} s with a peak resident memory of {summary.peak_rss_mb:.0f} MB "
        "(wall clock on this machine, under whatever else was running).\n"
    )


__all__ = ["Summary", "build_plan", "chunks", "generate", "write"]
