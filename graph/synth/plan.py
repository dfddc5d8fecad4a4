"""The structure of a synthetic dataset as integer arrays, before any string or vector exists.

Every signal value is an integer key in its own namespace; the renderer turns a key into the same string
wherever it appears (up to innocent formatting differences that the normaliser undoes). Keeping 1M rows
as a few dozen int arrays is what lets the generator plan globally and materialise in small chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

NONE = -1
# IPv6 prefixes live in their own key range, so the renderer can tell them apart from the key alone
V6_BASE = 1 << 40


class Keys:
    """Hands out fresh keys per namespace, so honest people and rings never collide by accident."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, kind: str, count: int, base: int = 0) -> np.ndarray:
        start = self._next.get(kind, base)
        self._next[kind] = start + int(count)
        return np.arange(start, start + int(count), dtype=np.int64)


@dataclass
class Plan:
    """One row per application (all arrays have the same length)."""

    person: np.ndarray
    first: np.ndarray
    last: np.ndarray
    dob: np.ndarray  # days since 1970-01-01
    national_id: np.ndarray
    email: np.ndarray
    email_first: np.ndarray  # the mailbox owner's name, which a shared mailbox keeps
    email_last: np.ndarray
    phone: np.ndarray
    address: np.ndarray
    device: np.ndarray
    document: np.ndarray
    template: np.ndarray
    doc_type: np.ndarray  # index into vocab.DOC_TYPES
    doc_country: np.ndarray  # index into vocab.DOC_COUNTRIES
    ip_prefix: np.ndarray
    ip_host: np.ndarray
    face: np.ndarray  # face identity key
    created: np.ndarray  # epoch seconds
    liveness: np.ndarray
    doc_auth: np.ndarray
    label: np.ndarray
    ring: np.ndarray
    scenario: np.ndarray  # index into config.SCENARIOS
    style: np.ndarray  # index into config.RING_STYLES, NONE for honest rows
    # face identity key -> the key it is an identical twin of (both arrays aligned)
    twin_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    twin_bases: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.person)

    @staticmethod
    def row_fields() -> list[str]:
        return [f.name for f in fields(Plan) if not f.name.startswith("twin_")]

    def take(self, index: np.ndarray) -> Plan:
        kept = {name: getattr(self, name)[index] for name in self.row_fields()}
        return Plan(**kept, twin_keys=self.twin_keys, twin_bases=self.twin_bases)

    @staticmethod
    def concat(parts: list[Plan]) -> Plan:
        rows = {name: np.concatenate([getattr(p, name) for p in parts]) for name in Plan.row_fields()}
        return Plan(
            **rows,
            twin_keys=np.concatenate([p.twin_keys for p in parts]),
            twin_bases=np.concatenate([p.twin_bases for p in parts]),
        )


def zipf_choice(rng: np.random.Generator, n_items: int, alpha: float, size: int) -> np.ndarray:
    """Indices in [0, n_items) with P(i) proportional to (i + 1)^-alpha: heavy-tailed reuse."""
    w = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_items - 1).astype(np.int64)


def power_law_sizes(rng: np.random.Generator, lo: int, hi: int, alpha: float, size: int) -> np.ndarray:
    """Integer sizes on [lo, hi] with P(s) proportional to s^-alpha."""
    s = np.arange(lo, hi + 1, dtype=np.float64)
    cdf = np.cumsum(s**-alpha)
    cdf /= cdf[-1]
    return lo + np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), hi - lo).astype(np.int64)


def diurnal_seconds(rng: np.random.Generator, size: int) -> np.ndarray:
    """Seconds into a day, busier in the day and evening than at night (UTC-agnostic shape)."""
    hourly = np.array(
        [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3.5, 4.5, 5, 5, 5, 5, 5, 5, 5, 5, 5.5, 6, 6, 5, 3.5, 2],
        dtype=np.float64,
    )
    hour = rng.choice(24, size=size, p=hourly / hourly.sum())
    return hour * 3600 + rng.integers(0, 3600, size=size)


def first_in_group(group: np.ndarray) -> np.ndarray:
    """For a sorted group-id array, the row index where each row's group starts."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return starts[np.cumsum(np.r_[True, group[1:] != group[:-1]]) - 1]


def beta(rng: np.random.Generator, a: float, b: float, size: int) -> np.ndarray:
    return rng.beta(a, b, size=size).astype(np.float32)
