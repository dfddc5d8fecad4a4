"""Knobs of the synthetic population. Defaults are the project benchmark; every figure is a share of rows,
persons or households unless it says otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field

from graph.synth.faces import FaceParams

RING_STYLES = ("face_reuse", "forged_template", "device_farm", "drop_address", "burst")
SCENARIOS = ("honest", "household", "twin", "reapplicant", "nat", "kiosk", "campus", "ring")


@dataclass(frozen=True)
class RingConfig:
    # share of all applications that belong to rings
    fraction: float = 0.03
    # relative weight of each style in RING_STYLES order
    mix: dict[str, float] = field(default_factory=lambda: dict.fromkeys(RING_STYLES, 1.0))
    # ring sizes: P(s) proportional to s^-alpha on [min_size, max_size]
    min_size: int = 2
    max_size: int = 50
    size_alpha: float = 1.8
    # probability that a member uses the ring's main shared resource (two members always do)
    share_prob: float = 0.85
    # share of non-burst rings that share their resource loosely: members use it only weak_share_prob often
    weak_fraction: float = 0.2
    weak_share_prob: float = 0.5
    # probability that a member also uses the ring's secondary resource
    secondary_prob: float = 0.3
    # non-burst campaigns last a log-normal number of days; bursts a uniform number of minutes
    campaign_days_median: float = 4.0
    burst_minutes: tuple[int, int] = (10, 180)

    def __post_init__(self) -> None:
        unknown = set(self.mix) - set(RING_STYLES)
        if unknown:
            raise ValueError(f"unknown ring styles {sorted(unknown)}; known: {', '.join(RING_STYLES)}")
        if not 0.0 <= self.fraction < 0.5:
            raise ValueError("ring fraction must be in [0, 0.5)")
        if sum(self.mix.get(s, 0.0) for s in RING_STYLES) <= 0 and self.fraction > 0:
            raise ValueError("ring mix needs a positive weight")
        if not 2 <= self.min_size <= self.max_size:
            raise ValueError("ring sizes need 2 <= min_size <= max_size")


@dataclass(frozen=True)
class SynthConfig:
    start: str = "2026-01-01"
    days: int = 90
    face: FaceParams = field(default_factory=FaceParams)
    face_missing: float = 0.01
    rings: RingConfig = field(default_factory=RingConfig)

    # people and households
    reapplicant_fraction: float = 0.02  # persons who apply more than once
    reapplicant_new_device: float = 0.8
    reapplicant_new_document: float = 0.15
    household_sizes: tuple[float, ...] = (0.52, 0.22, 0.12, 0.08, 0.035, 0.015, 0.01)  # P(size = 1..7)
    household_same_last_name: float = 0.75
    household_share_device: float = 0.35
    household_share_phone: float = 0.25
    household_share_email: float = 0.05
    twin_household_fraction: float = 0.02  # households of 2+ whose first two members are identical twins
    student_fraction: float = 0.03  # persons living in campus dorms, on campus networks
    phone_recycled: float = 0.005  # persons whose number the carrier gave to someone before

    # channels of one application
    kiosk_fraction: float = 0.03  # applications at a branch kiosk (shared device and IP)
    mobile_fraction: float = 0.2  # applications over a carrier NAT IP
    ipv6_fraction: float = 0.08  # households on IPv6
    households_per_prefix: int = 12  # residential /24 density: drives accidental IP and prefix sharing

    # documents
    templates_per_row: float = 1 / 500  # official templates, at least 60; popularity Zipf(template_zipf)
    template_zipf: float = 1.2
    foreign_no_national_id: float = 0.7
    template_missing: float = 0.01

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if abs(sum(self.household_sizes) - 1.0) > 1e-6:
            raise ValueError("household_sizes must sum to 1")
