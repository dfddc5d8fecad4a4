"""Face-match threshold calibration: FMR/FNMR for pairs, FPIR/FNIR for 1:N search at a gallery size.

A 1:N search compares the probe with every enrolled face, so its false-positive identification rate grows
with the gallery: FPIR(N) = 1 - (1 - FMR)^N when impostor scores are independent. A threshold that looks
strict for one comparison (FMR 1e-4) flags most probes against a million faces. The calibration therefore
picks the ``SAME_FACE`` threshold for a target FPIR at the deployment's gallery size. Those FMRs (about
FPIR/N) are far below what a few million impostor pairs can measure, so the upper tail of the impostor
scores is modelled with a generalised Pareto distribution (peaks over threshold) and every figure that
relies on it says so. Identity labels also allow a direct measurement of FPIR/FNIR at the data's own
gallery size, which checks the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

CALIBRATION_VERSION = 1
# the impostor tail above this quantile is modelled, below it the empirical scores are used
TAIL_QUANTILE = 0.99
# FMRs with fewer impostor scores than this above the threshold come from the tail model
MIN_EXCEEDANCES = 100
CURVE_POINTS = 200
EXACT_PAIRS_MAX = 6000


@dataclass(frozen=True)
class ImpostorTail:
    """Empirical FMR below ``u``; a generalised Pareto fit to the exceedances above it."""

    u: float
    p_u: float
    shape: float
    scale: float
    sorted_scores: np.ndarray = field(repr=False)

    @classmethod
    def fit(cls, impostor: np.ndarray) -> ImpostorTail:
        scores = np.sort(np.asarray(impostor, dtype=np.float64))
        if len(scores) < 1000:
            raise ValueError(f"need at least 1000 impostor scores to model the tail, got {len(scores)}")
        u = float(np.quantile(scores, TAIL_QUANTILE))
        excess = scores[scores > u] - u
        shape, _, scale = stats.genpareto.fit(excess, floc=0.0)
        return cls(
            u=u,
            p_u=float(len(excess) / len(scores)),
            shape=float(shape),
            scale=float(scale),
            sorted_scores=scores,
        )

    @property
    def measured_limit(self) -> float:
        """Highest threshold with at least ``MIN_EXCEEDANCES`` impostors above it: measured below, modelled above."""
        return float(self.sorted_scores[len(self.sorted_scores) - MIN_EXCEEDANCES])

    def fmr(self, t: float | np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        empirical = 1.0 - np.searchsorted(self.sorted_scores, t, side="left") / len(self.sorted_scores)
        modelled = self.p_u * stats.genpareto.sf(t - self.u, self.shape, loc=0.0, scale=self.scale)
        return np.where(t <= self.measured_limit, empirical, modelled)

    def threshold(self, fmr: float) -> tuple[float, bool]:
        """Smallest threshold with FMR <= ``fmr``, and whether it came from the fitted tail."""
        n = len(self.sorted_scores)
        if fmr * n >= MIN_EXCEEDANCES:
            k = int(math.floor(fmr * n))
            return float(np.nextafter(self.sorted_scores[n - 1 - k], np.inf)), False
        t = self.u + stats.genpareto.isf(fmr / self.p_u, self.shape, loc=0.0, scale=self.scale)
        return float(min(t, 1.0)), True


def fpir_from_fmr(fmr: float | np.ndarray, gallery_size: int) -> np.ndarray:
    """1 - (1 - FMR)^N, computed stably for tiny FMR and huge N."""
    return -np.expm1(gallery_size * np.log1p(-np.asarray(fmr, dtype=np.float64)))


def fmr_for_fpir(fpir: float, gallery_size: int) -> float:
    return float(-np.expm1(np.log1p(-fpir) / gallery_size))


def pair_scores(
    embeddings: np.ndarray, labels: np.ndarray, max_impostor: int = 2_000_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor cosine scores from identity labels.

    All pairs when the set is small (LFW: 3,241 faces, 5.2M pairs); otherwise every genuine pair and a
    uniform sample of impostor pairs.
    """
    x = _unit(embeddings)
    labels = np.asarray(labels)
    if len(x) != len(labels):
        raise ValueError(f"{len(x)} embeddings but {len(labels)} labels")
    _, lab = np.unique(labels, return_inverse=True)
    if len(x) <= EXACT_PAIRS_MAX:
        sims = x @ x.T
        iu = np.triu_indices(len(x), k=1)
        same = lab[iu[0]] == lab[iu[1]]
        s = sims[iu]
        return s[same].astype(np.float32), s[~same].astype(np.float32)
    order = np.argsort(lab, kind="stable")
    bounds = np.flatnonzero(np.diff(lab[order])) + 1
    genuine = []
    for group in np.split(order, bounds):
        if len(group) > 1:
            g = x[group] @ x[group].T
            genuine.append(g[np.triu_indices(len(group), k=1)])
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(x), size=max_impostor)
    j = rng.integers(0, len(x), size=max_impostor)
    keep = lab[i] != lab[j]
    i, j = i[keep], j[keep]
    impostor = np.concatenate([np.einsum("ij,ij->i", x[a], x[b]) for a, b in _chunks(i, j)])
    gen = np.concatenate(genuine) if genuine else np.empty(0, np.float32)
    return gen.astype(np.float32), impostor.astype(np.float32)


def _chunks(i: np.ndarray, j: np.ndarray):
    for s in range(0, len(i), 65536):
        yield i[s : s + 65536], j[s : s + 65536]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError("embeddings must be a finite 2-D array")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms < 1e-12).any():
        raise ValueError("embeddings must not contain all-zero vectors")
    return x / norms


@dataclass(frozen=True)
class IdentificationResult:
    """Measured 1:N figures with one enrolment per identity (leave-one-identity-out non-mated searches)."""

    gallery_size: int
    mated_searches: int
    nonmated_searches: int
    rank1: float
    fnir_at_fpir: dict[str, dict[str, float]]
    mated_scores: np.ndarray = field(repr=False)
    mated_rank1: np.ndarray = field(repr=False)
    nonmated_max: np.ndarray = field(repr=False)

    def fpir(self, t: float) -> float:
        return float(np.mean(self.nonmated_max >= t))

    def fnir(self, t: float) -> float:
        return float(np.mean(~(self.mated_rank1 & (self.mated_scores >= t))))


def identification(
    embeddings: np.ndarray,
    labels: np.ndarray,
    fpir_targets: tuple[float, ...] = (0.01, 0.003),
    seed: int = 0,
) -> IdentificationResult:
    """Enrol one random image per identity; every other image is a probe.

    A probe is a mated search against the full gallery (hit = its mate at rank 1 and above threshold) and
    a non-mated search against the gallery without its own identity, so FPIR is measured at (almost) the
    full gallery size without setting identities aside.
    """
    x = _unit(embeddings)
    _, lab = np.unique(np.asarray(labels), return_inverse=True)
    rng = np.random.default_rng(seed)
    n_ids = int(lab.max()) + 1
    enrol = np.array([rng.choice(np.flatnonzero(lab == c)) for c in range(n_ids)])
    probes = np.setdiff1d(np.arange(len(x)), enrol)
    if len(probes) == 0:
        raise ValueError("identification needs identities with at least two images")
    scores = x[probes] @ x[enrol].T  # [P, G]; gallery column c is identity c
    own = lab[probes]
    mated = scores[np.arange(len(probes)), own]
    rank1 = scores.argmax(axis=1) == own
    scores[np.arange(len(probes)), own] = -np.inf
    nonmated_max = scores.max(axis=1)
    result = IdentificationResult(
        gallery_size=n_ids,
        mated_searches=len(probes),
        nonmated_searches=len(probes),
        rank1=float(rank1.mean()),
        fnir_at_fpir={},
        mated_scores=mated,
        mated_rank1=rank1,
        nonmated_max=nonmated_max,
    )
    for target in fpir_targets:
        t = _threshold_for_rate(nonmated_max, target)
        result.fnir_at_fpir[str(target)] = {
            "threshold": t,
            "fpir": result.fpir(t),
            "fnir": result.fnir(t),
        }
    return result


def _threshold_for_rate(scores: np.ndarray, rate: float) -> float:
    """Smallest threshold with mean(scores >= t) <= rate."""
    s = np.sort(scores)[::-1]
    k = int(math.floor(rate * len(s)))
    return float(np.nextafter(s[k], np.float32(np.inf))) if k < len(s) else float(s[-1])


@dataclass
class Calibration:
    same_face_threshold: float
    target_fpir: float
    gallery_size: int
    fnir_at_same_face_threshold: float
    target_fmr: float
    threshold_at_fmr: float
    fnmr_at_threshold: float
    fpir_at_threshold_at_fmr: float
    extrapolated: bool
    n_genuine: int
    n_impostor: int
    tail: dict
    by_gallery_size: list[dict]
    curve: dict
    measured_1n: dict | None = None
    version: int = CALIBRATION_VERSION
    notes: str = (
        "same_face_threshold keeps 1:N FPIR <= target_fpir at gallery_size, with FPIR(N) = 1-(1-FMR)^N; "
        "FMRs below the measured impostor tail come from a generalised Pareto fit (extrapolated=true). "
        "FNIR is taken as FNMR at the threshold (one enrolled mate per identity)."
    )


def calibrate(
    genuine: np.ndarray,
    impostor: np.ndarray,
    target_fmr: float = 1e-3,
    target_fpir: float = 0.01,
    gallery_size: int = 100_000,
    gallery_sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000),
) -> Calibration:
    genuine = np.sort(np.asarray(genuine, dtype=np.float64))
    impostor = np.asarray(impostor, dtype=np.float64)
    if len(genuine) < 10:
        raise ValueError(f"need at least 10 genuine scores, got {len(genuine)}")
    if not (0 < target_fmr < 1 and 0 < target_fpir < 1 and gallery_size >= 1):
        raise ValueError("target_fmr and target_fpir must be in (0, 1) and gallery_size >= 1")
    tail = ImpostorTail.fit(impostor)

    def fnmr(t: float) -> float:
        return float(np.searchsorted(genuine, t, side="left") / len(genuine))

    t_fmr, ext_fmr = tail.threshold(target_fmr)
    t_sf, ext_sf = tail.threshold(fmr_for_fpir(target_fpir, gallery_size))
    rows = []
    for n in sorted({*gallery_sizes, gallery_size}):
        t, ext = tail.threshold(fmr_for_fpir(target_fpir, n))
        rows.append(
            {
                "gallery_size": n,
                "fmr_needed": fmr_for_fpir(target_fpir, n),
                "threshold": t,
                "fnir": fnmr(t),
                "fpir_at_threshold_at_fmr": float(fpir_from_fmr(tail.fmr(t_fmr), n)),
                "extrapolated": ext,
            }
        )
    lo = min(float(impostor.min()), float(genuine.min()))
    grid = np.linspace(lo, 1.0, CURVE_POINTS)
    return Calibration(
        same_face_threshold=t_sf,
        target_fpir=target_fpir,
        gallery_size=gallery_size,
        fnir_at_same_face_threshold=fnmr(t_sf),
        target_fmr=target_fmr,
        threshold_at_fmr=t_fmr,
        fnmr_at_threshold=fnmr(t_fmr),
        fpir_at_threshold_at_fmr=float(fpir_from_fmr(tail.fmr(t_fmr), gallery_size)),
        extrapolated=ext_sf,
        n_genuine=len(genuine),
        n_impostor=len(impostor),
        tail={"model": "genpareto", "u": tail.u, "p_u": tail.p_u, "shape": tail.shape, "scale": tail.scale},
        by_gallery_size=rows,
        curve={
            "threshold": grid.round(5).tolist(),
            "fmr": [float(f) for f in tail.fmr(grid)],
            "fnmr": [fnmr(t) for t in grid],
        },
    )


def calibrate_identities(
    embeddings: np.ndarray,
    labels: np.ndarray,
    target_fmr: float = 1e-3,
    target_fpir: float = 0.01,
    gallery_size: int = 100_000,
    seed: int = 0,
) -> Calibration:
    """Calibration from labelled embeddings, plus FPIR/FNIR measured on the data's own gallery."""
    genuine, impostor = pair_scores(embeddings, labels, seed=seed)
    cal = calibrate(genuine, impostor, target_fmr, target_fpir, gallery_size)
    ident = identification(embeddings, labels, fpir_targets=(0.01, 0.003), seed=seed)
    t = cal.same_face_threshold
    n = ident.gallery_size - 1
    cal.measured_1n = {
        "gallery_size": ident.gallery_size,
        "mated_searches": ident.mated_searches,
        "rank1": ident.rank1,
        "fnir_at_fpir": ident.fnir_at_fpir,
        "at_threshold_at_fmr": {
            "threshold": cal.threshold_at_fmr,
            "fpir_measured": ident.fpir(cal.threshold_at_fmr),
            "fpir_predicted": float(fpir_from_fmr(fmr_at(cal, cal.threshold_at_fmr), n)),
            "fnir_measured": ident.fnir(cal.threshold_at_fmr),
        },
        "at_same_face_threshold": {
            "threshold": t,
            "fpir_measured": ident.fpir(t),
            "fnir_measured": ident.fnir(t),
        },
    }
    return cal


def fmr_at(cal: Calibration, t: float) -> float:
    """FMR at ``t`` from the stored curve and tail model (for reports that only have the JSON)."""
    tail = cal.tail
    if t > tail["u"]:
        return float(
            tail["p_u"] * stats.genpareto.sf(t - tail["u"], tail["shape"], loc=0.0, scale=tail["scale"])
        )
    return float(np.interp(t, cal.curve["threshold"], cal.curve["fmr"]))


def save_calibration(cal: Calibration, path: str | Path) -> tuple[Path, Path]:
    """Write the JSON and a DET-curve PNG beside it (same stem)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(cal), indent=2))
    tmp.replace(path)
    png = path.with_suffix(".png")
    _plot(cal, png)
    return path, png


def load_calibration(path: str | Path) -> dict:
    data = json.loads(Path(path).read_text())
    if data.get("version") != CALIBRATION_VERSION or "same_face_threshold" not in data:
        raise ValueError(f"{path} is not a ringwatch face calibration (version {CALIBRATION_VERSION})")
    return data


def load_threshold(path: str | Path) -> float:
    """The calibrated SAME_FACE cosine threshold."""
    return float(load_calibration(path)["same_face_threshold"])


def _plot(cal: Calibration, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmr = np.clip(np.array(cal.curve["fmr"]), 1e-12, 1)
    fnmr = np.clip(np.array(cal.curve["fnmr"]), 1e-5, 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax1.loglog(fmr, fnmr, label="DET (FMR below the measured tail is modelled)")
    ax1.axvline(cal.target_fmr, ls=":", c="grey", label=f"target FMR {cal.target_fmr:g}")
    fmr_sf = fmr_for_fpir(cal.target_fpir, cal.gallery_size)
    ax1.scatter(
        [fmr_sf],
        [max(cal.fnir_at_same_face_threshold, 1e-5)],
        c="red",
        zorder=3,
        label=f"SAME_FACE t={cal.same_face_threshold:.3f} (FPIR {cal.target_fpir:g} @ N={cal.gallery_size:,})",
    )
    ax1.set_xlabel("FMR (false match rate)")
    ax1.set_ylabel("FNMR (false non-match rate)")
    ax1.set_title("Face verification DET")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7)
    sizes = [r["gallery_size"] for r in cal.by_gallery_size]
    ax2.semilogx(sizes, [r["threshold"] for r in cal.by_gallery_size], "o-", label="threshold")
    ax2.semilogx(sizes, [r["fnir"] for r in cal.by_gallery_size], "s--", label="FNIR at threshold")
    ax2.set_xlabel("gallery size N")
    ax2.set_title(f"1:N at FPIR {cal.target_fpir:g}")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
