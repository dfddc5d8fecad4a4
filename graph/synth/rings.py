"""Fraud rings: groups of synthetic identities run by one operator.

Every member starts as a plausible fresh identity drawn from the same distributions as honest people
(names, ages, official templates, home or carrier-NAT IPs, a fresh device, email and phone). The ring's
style then makes members reuse what the operator has only a little of, each member with probability
``share_prob`` (two members always do; "weak" rings use ``weak_share_prob``):

- face_reuse: one or a few real faces behind many names (a new capture each time); low-ish liveness.
  Secondary: a shared device.
- forged_template: documents from one forged template (its own template hash, shared by nobody
  honest); low-ish document authenticity. Secondary: a shared address.
- device_farm: a pool of emulator devices, and IPs inside one hosting /24; low-ish liveness.
  Secondary: a shared phone.
- drop_address: a few drop addresses. Secondary: recycled phones, each used by about three members.
- burst: everybody applies within minutes, from one residential /24 (random hosts, so no shared IP),
  with one official template that many honest people also hold. Only weak signals link them.

Sizes are power-law on [min_size, max_size]. Campaigns run over a log-normal number of days, so apart
from bursts, timing does not give rings away either.
"""

from __future__ import annotations

import numpy as np

from graph.synth import vocab
from graph.synth.config import RING_STYLES, SCENARIOS, RingConfig, SynthConfig
from graph.synth.plan import (
    NONE,
    Keys,
    Plan,
    beta,
    diurnal_seconds,
    first_in_group,
    power_law_sizes,
    zipf_choice,
)
from graph.synth.population import DAY, Networks, Templates, ages_to_dob, doc_authenticity, liveness

_ST = {name: i for i, name in enumerate(RING_STYLES)}


def ring_sizes(rng: np.random.Generator, n_rows: int, rc: RingConfig) -> np.ndarray:
    """Sizes whose total is the ring share of ``n_rows`` (a remainder too small for a ring goes honest)."""
    target = int(round(rc.fraction * n_rows))
    if target < rc.min_size:
        return np.zeros(0, dtype=np.int64)
    sizes = power_law_sizes(rng, rc.min_size, rc.max_size, rc.size_alpha, target // rc.min_size + 1)
    cs = np.cumsum(sizes)
    k = int(np.searchsorted(cs, target, side="right"))
    sizes = sizes[:k]
    rest = target - int(sizes.sum())
    if rest >= rc.min_size:
        sizes = np.r_[sizes, rest]
    return sizes.astype(np.int64)


def _pool(
    rng: np.random.Generator,
    keys: Keys,
    kind: str,
    ring_of: np.ndarray,
    pool_size: np.ndarray,
    base: int = 0,
) -> np.ndarray:
    """One key per member from its ring's private pool of ``pool_size[ring]`` fresh keys."""
    offsets = np.cumsum(pool_size) - pool_size
    pool = keys.take(kind, int(pool_size.sum()), base)
    pick = (rng.random(len(ring_of)) * pool_size[ring_of]).astype(np.int64)
    return pool[offsets[ring_of] + pick]


def ring_plan(
    sizes: np.ndarray,
    cfg: SynthConfig,
    rng: np.random.Generator,
    keys: Keys,
    templates: Templates,
    nets: Networks,
    start_s: int,
) -> Plan:
    rc = cfg.rings
    R, M = len(sizes), int(sizes.sum())
    weights = np.array([rc.mix.get(s, 0.0) for s in RING_STYLES], dtype=np.float64)
    style_r = rng.choice(len(RING_STYLES), size=R, p=weights / weights.sum()).astype(np.int8)
    ring = np.repeat(np.arange(R), sizes)
    member = np.arange(M) - first_in_group(ring)
    style = style_r[ring]
    weak_r = (style_r != _ST["burst"]) & (rng.random(R) < rc.weak_fraction)
    share_p = np.where(weak_r, rc.weak_share_prob, rc.share_prob)[ring]
    main = (rng.random(M) < share_p) | (member < 2)
    second = (rng.random(M) < rc.secondary_prob) & (rng.random(R) < 0.6)[ring]

    # a plausible fresh identity for everyone
    first = zipf_choice(rng, len(vocab.FIRST_NAMES), 1.0, M)
    last = zipf_choice(rng, len(vocab.LAST_NAMES), 0.9, M)
    dob = ages_to_dob(rng, start_s // DAY, np.minimum(21 + rng.gamma(2.0, 7.0, M), 70))
    template = templates.sample(rng, M)
    doc_type = templates.doc_type[template]
    doc_country = templates.doc_country[template]
    prefix, host = nets.home_ips(rng, M)
    mobile = rng.random(M) < cfg.mobile_fraction * 1.5
    prefix[mobile], host[mobile] = nets.nat_ips(rng, int(mobile.sum()))
    device = keys.take("device", M)
    address = keys.take("address", M)
    phone = keys.take("phone", M)
    face = keys.take("face", M)
    live = liveness(rng, M)
    auth = doc_authenticity(rng, M)

    def is_style(name: str) -> np.ndarray:
        return style == _ST[name]

    def ring_pool_sizes(name: str, per_ring: np.ndarray) -> np.ndarray:
        return np.where(style_r == _ST[name], per_ring, 0)

    m = is_style("face_reuse") & main
    face[m] = _pool(rng, keys, "face", ring[m], ring_pool_sizes("face_reuse", 1 + sizes // 12))
    live[is_style("face_reuse")] = beta(rng, 9, 1.6, int(is_style("face_reuse").sum()))
    m = is_style("face_reuse") & second
    device[m] = _pool(rng, keys, "device", ring[m], ring_pool_sizes("face_reuse", np.ones(R, np.int64)))

    forged = ring_pool_sizes("forged_template", np.ones(R, np.int64))
    m = is_style("forged_template") & main
    template[m] = _pool(rng, keys, "template", ring[m], forged, base=len(templates))
    forged_type = rng.choice(len(vocab.DOC_TYPES), size=R, p=vocab.DOC_TYPE_P).astype(np.int8)
    forged_country = rng.choice(len(vocab.DOC_COUNTRIES), size=R, p=vocab.DOC_COUNTRY_P).astype(np.int8)
    doc_type[m], doc_country[m] = forged_type[ring[m]], forged_country[ring[m]]
    auth[m] = beta(rng, 6, 2.2, int(m.sum()))
    m = is_style("forged_template") & second
    address[m] = _pool(
        rng, keys, "address", ring[m], ring_pool_sizes("forged_template", np.ones(R, np.int64))
    )

    m = is_style("device_farm") & main
    device[m] = _pool(rng, keys, "device", ring[m], ring_pool_sizes("device_farm", np.maximum(1, sizes // 6)))
    live[m] = beta(rng, 7, 1.8, int(m.sum()))
    hosted = m & (rng.random(M) < 0.8)
    prefix[hosted] = _pool(
        rng, keys, "prefix", ring[hosted], ring_pool_sizes("device_farm", np.ones(R, np.int64))
    )
    host[hosted] = rng.integers(1, 255, int(hosted.sum()))
    m = is_style("device_farm") & second
    phone[m] = _pool(rng, keys, "phone", ring[m], ring_pool_sizes("device_farm", np.ones(R, np.int64)))

    m = is_style("drop_address") & main
    address[m] = _pool(rng, keys, "address", ring[m], ring_pool_sizes("drop_address", 1 + sizes // 15))
    m = is_style("drop_address") & (second | (rng.random(M) < 0.3))
    phone[m] = _pool(rng, keys, "phone", ring[m], ring_pool_sizes("drop_address", np.maximum(1, sizes // 3)))

    m = is_style("burst") & main
    ring_prefix = nets.residential[rng.integers(0, len(nets.residential), R)]
    prefix[m], host[m] = ring_prefix[ring[m]], rng.integers(1, 255, int(m.sum()))
    ring_template = templates.sample(rng, R)
    template[m] = ring_template[ring[m]]
    doc_type[m], doc_country[m] = templates.doc_type[template[m]], templates.doc_country[template[m]]

    # timing: campaigns over days, bursts over minutes
    span = cfg.days * DAY
    ring_start = rng.integers(0, cfg.days, R) * DAY + diurnal_seconds(rng, R)
    duration = rng.lognormal(np.log(rc.campaign_days_median * DAY), 1.0, R)
    burst_r = style_r == _ST["burst"]
    lo, hi = rc.burst_minutes
    duration[burst_r] = rng.uniform(lo * 60, hi * 60, int(burst_r.sum()))
    offset = rng.random(M) * np.minimum(duration, span - 1)[ring]
    created = start_s + ((ring_start[ring] + offset).astype(np.int64) % span)
    face[rng.random(M) < cfg.face_missing] = NONE

    return Plan(
        person=keys.take("person", M),
        first=first,
        last=last,
        dob=dob,
        national_id=keys.take("national_id", M),
        email=keys.take("email", M),
        email_first=first,
        email_last=last,
        phone=phone,
        address=address,
        device=device,
        document=keys.take("document", M),
        template=template,
        doc_type=doc_type,
        doc_country=doc_country,
        ip_prefix=prefix,
        ip_host=host,
        face=face,
        created=created,
        liveness=live,
        doc_auth=auth,
        label=np.ones(M, dtype=np.int8),
        ring=ring.astype(np.int64),
        scenario=np.full(M, SCENARIOS.index("ring"), dtype=np.int8),
        style=style,
    )
