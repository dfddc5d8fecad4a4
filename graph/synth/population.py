"""The honest population: a small causal model of why innocent people share signals.

Persons live in households (address always shared; device, phone, email sometimes; home IP whenever
they apply from home). Some households hold identical twins (same birth date, near-identical faces).
Students live in campus dorms (one address for hundreds) behind a few campus IPs. A person applies over
one channel per application: from home, from a phone behind a carrier NAT (one IP for hundreds, Zipf
popularity), or at a branch kiosk (one device and IP per branch). Re-applicants come back with the same
face and PII on a new device. Residential /24 prefixes are shared by neighbours and dynamic IPs collide.
Everybody's document carries one of the official templates, whose popularity is Zipf: a few templates
are held by most people, a long tail by a handful, like forged ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graph.synth import vocab
from graph.synth.config import SCENARIOS, SynthConfig
from graph.synth.plan import (
    NONE,
    V6_BASE,
    Keys,
    Plan,
    beta,
    diurnal_seconds,
    first_in_group,
    zipf_choice,
)

_SC = {name: i for i, name in enumerate(SCENARIOS)}
DAY = 86_400


@dataclass(frozen=True)
class Templates:
    """Official document templates: each belongs to one document type and country."""

    doc_type: np.ndarray
    doc_country: np.ndarray
    zipf: float

    @classmethod
    def create(cls, rng: np.random.Generator, n_rows: int, cfg: SynthConfig) -> Templates:
        count = max(60, int(n_rows * cfg.templates_per_row))
        doc_type = rng.choice(len(vocab.DOC_TYPES), size=count, p=vocab.DOC_TYPE_P)
        doc_country = rng.choice(len(vocab.DOC_COUNTRIES), size=count, p=vocab.DOC_COUNTRY_P)
        return cls(doc_type.astype(np.int8), doc_country.astype(np.int8), cfg.template_zipf)

    def __len__(self) -> int:
        return len(self.doc_type)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return zipf_choice(rng, len(self), self.zipf, size)


@dataclass(frozen=True)
class Networks:
    """Shared IP infrastructure that honest people and rings both draw from."""

    residential: np.ndarray  # /24 prefix keys
    nat_prefixes: np.ndarray  # carrier NAT prefixes, 16 public IPs each
    nat_zipf: float = 0.7

    @classmethod
    def create(cls, keys: Keys, n_rows: int, cfg: SynthConfig) -> Networks:
        households = max(1, n_rows // 2)
        residential = keys.take("prefix", max(4, households // cfg.households_per_prefix))
        nat_ips = max(16, int(n_rows * cfg.mobile_fraction) // 150)
        return cls(residential, keys.take("prefix", -(-nat_ips // 16)))

    def home_ips(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.residential[rng.integers(0, len(self.residential), size)], rng.integers(1, 255, size)

    def nat_ips(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        ip = zipf_choice(rng, len(self.nat_prefixes) * 16, self.nat_zipf, size)
        return self.nat_prefixes[ip // 16], 1 + ip % 16


def ages_to_dob(rng: np.random.Generator, start_day: int, ages: np.ndarray) -> np.ndarray:
    return (start_day - ages * 365.25 - rng.integers(0, 365, len(ages))).astype(np.int64)


def liveness(rng: np.random.Generator, size: int) -> np.ndarray:
    poor = rng.random(size) < 0.06
    return np.where(poor, beta(rng, 4, 2, size), beta(rng, 18, 1.3, size))


def doc_authenticity(rng: np.random.Generator, size: int) -> np.ndarray:
    poor = rng.random(size) < 0.05
    return np.where(poor, beta(rng, 5, 2.5, size), beta(rng, 16, 1.3, size))


def honest_plan(
    n_rows: int,
    cfg: SynthConfig,
    rng: np.random.Generator,
    keys: Keys,
    templates: Templates,
    nets: Networks,
    start_s: int,
) -> Plan:
    """``n_rows`` honest applications."""
    # persons, each with one or more applications
    extra = np.where(rng.random(n_rows) < cfg.reapplicant_fraction, rng.geometric(0.55, n_rows), 0)
    rows_pp = 1 + extra
    cs = np.cumsum(rows_pp)
    n_persons = int(np.searchsorted(cs, n_rows)) + 1
    rows_pp = rows_pp[:n_persons].copy()
    rows_pp[-1] -= cs[n_persons - 1] - n_rows
    P = n_persons

    # households (students live alone, in dorms)
    student = rng.random(P) < cfg.student_fraction
    ns = np.flatnonzero(~student)
    sizes = 1 + rng.choice(len(cfg.household_sizes), size=max(1, len(ns)), p=cfg.household_sizes)
    cs = np.cumsum(sizes)
    H = int(np.searchsorted(cs, len(ns))) + 1 if len(ns) else 0
    sizes = sizes[:H].copy()
    if H:
        sizes[-1] -= cs[H - 1] - len(ns)
    hh = np.empty(P, dtype=np.int64)
    hh[ns] = np.repeat(np.arange(H), sizes)
    hh[student] = H + np.arange(int(student.sum()))
    hh_size = np.ones(P, dtype=np.int64)
    hh_size[ns] = sizes[hh[ns]]
    head = np.arange(P)
    head[ns] = ns[first_in_group(hh[ns])]
    rank = np.zeros(P, dtype=np.int64)
    rank[ns] = np.arange(len(ns)) - first_in_group(hh[ns])
    n_hh = H + int(student.sum())

    twin_hh = (rng.random(H) < cfg.twin_household_fraction) & (sizes >= 2)
    twin = np.zeros(P, dtype=bool)
    twin[ns] = twin_hh[hh[ns]] & (rank[ns] < 2)

    # who they are
    first = zipf_choice(rng, len(vocab.FIRST_NAMES), 1.0, P)
    last = zipf_choice(rng, len(vocab.LAST_NAMES), 0.9, P)
    same_last = (rank > 0) & ((rng.random(P) < cfg.household_same_last_name) | twin)
    last[same_last] = last[head[same_last]]
    start_day = start_s // DAY
    ages = np.where(student, 18 + rng.random(P) * 6, np.minimum(18 + rng.gamma(2.2, 11.0, P), 92))
    dob = ages_to_dob(rng, start_day, ages)
    second_twin = twin & (rank == 1)
    dob[second_twin] = dob[head[second_twin]]

    national_id = keys.take("national_id", P)
    email = keys.take("email", P)
    phone = keys.take("phone", P)
    device = keys.take("device", P)
    document = keys.take("document", P)
    face = keys.take("face", P)
    for arr, p in ((email, cfg.household_share_email), (phone, cfg.household_share_phone)):
        share = (rank > 0) & (rng.random(P) < p)
        arr[share] = arr[head[share]]
    share = (rank > 0) & (rng.random(P) < cfg.household_share_device)
    device[share] = device[head[share]]
    recycled = np.flatnonzero(rng.random(P) < cfg.phone_recycled)
    phone[recycled] = phone[rng.integers(0, P, len(recycled))]

    template = templates.sample(rng, P)
    doc_type = templates.doc_type[template]
    doc_country = templates.doc_country[template]
    no_nid = (doc_country != 0) & (rng.random(P) < cfg.foreign_no_national_id)
    national_id[no_nid] = NONE

    # where they live and their home connection
    address_hh = keys.take("address", n_hh)
    n_campus = max(1, int(student.sum()) // 400)
    dorms = keys.take("address", n_campus * 8)
    campus_prefix = keys.take("prefix", n_campus)
    campus = zipf_choice(rng, n_campus, 0.8, P)
    address = address_hh[hh]
    address[student] = dorms[campus[student] * 8 + zipf_choice(rng, 8, 0.7, int(student.sum()))]
    hh_prefix, hh_host = nets.home_ips(rng, n_hh)
    v6 = rng.random(n_hh) < cfg.ipv6_fraction
    hh_prefix[v6] = keys.take("prefix6", int(v6.sum()), base=V6_BASE)
    hh_host[v6] = rng.integers(1, 1 << 62, int(v6.sum()))

    # applications
    person = np.repeat(np.arange(P), rows_pp)
    n = len(person)
    p_start = first_in_group(person)
    repeat = np.arange(n) > p_start
    u = rng.random(n)
    kiosk = u < cfg.kiosk_fraction
    mobile = (~kiosk) & (u < cfg.kiosk_fraction + cfg.mobile_fraction)
    on_campus = student[person] & ~kiosk & (rng.random(n) < 0.7)
    mobile |= student[person] & ~kiosk & ~on_campus
    home = ~(kiosk | mobile | on_campus)

    dev = device[person]
    new_dev = repeat & (rng.random(n) < cfg.reapplicant_new_device)
    dev[new_dev] = keys.take("device", int(new_dev.sum()))
    n_branch = max(3, int(kiosk.sum()) // 250)
    branch = zipf_choice(rng, n_branch, 0.8, int(kiosk.sum()))
    kiosk_devices = keys.take("device", 2 * n_branch)
    dev[kiosk] = kiosk_devices[2 * branch + rng.integers(0, 2, len(branch))]

    prefix = np.empty(n, dtype=np.int64)
    host = np.empty(n, dtype=np.int64)
    prefix[home] = hh_prefix[hh[person[home]]]
    host[home] = hh_host[hh[person[home]]]
    prefix[mobile], host[mobile] = nets.nat_ips(rng, int(mobile.sum()))
    prefix[kiosk] = keys.take("prefix", n_branch)[branch]
    host[kiosk] = 10
    prefix[on_campus] = campus_prefix[campus[person[on_campus]]]
    host[on_campus] = 1 + rng.integers(0, 8, int(on_campus.sum()))

    span = cfg.days * DAY
    created = rng.integers(0, cfg.days, n) * DAY + diurnal_seconds(rng, n)
    gaps = np.where(repeat, 3600 + rng.exponential(12 * DAY, n), 0).astype(np.int64)
    cg = np.cumsum(gaps)
    created = start_s + (created[p_start] + cg - cg[p_start]) % span

    doc = document[person]
    renewed = repeat & (rng.random(n) < cfg.reapplicant_new_document)
    doc[renewed] = keys.take("document", int(renewed.sum()))
    tpl = template[person]
    tpl[rng.random(n) < cfg.template_missing] = NONE
    face_r = face[person]
    face_r[rng.random(n) < cfg.face_missing] = NONE

    scenario = np.full(n, _SC["honest"], dtype=np.int8)
    for mask, name in (
        (mobile, "nat"),
        (on_campus | student[person], "campus"),
        (kiosk, "kiosk"),
        (hh_size[person] >= 2, "household"),
        (rows_pp[person] >= 2, "reapplicant"),
        (twin[person], "twin"),
    ):
        scenario[mask] = _SC[name]

    return Plan(
        person=keys.take("person", P)[person],
        first=first[person],
        last=last[person],
        dob=dob[person],
        national_id=national_id[person],
        email=email[person],
        email_first=first[person],
        email_last=last[person],
        phone=phone[person],
        address=address[person],
        device=dev,
        document=doc,
        template=tpl,
        doc_type=doc_type[person],
        doc_country=doc_country[person],
        ip_prefix=prefix,
        ip_host=host,
        face=face_r,
        created=created,
        liveness=liveness(rng, n),
        doc_auth=doc_authenticity(rng, n),
        label=np.zeros(n, dtype=np.int8),
        ring=np.full(n, NONE, dtype=np.int64),
        scenario=scenario,
        style=np.full(n, NONE, dtype=np.int8),
        twin_keys=face[second_twin],
        twin_bases=face[head[second_twin]],
    )
