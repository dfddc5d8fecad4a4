"""Synthetic onboarding data: a causal model of honest people, benign look-alikes and fraud rings.

``generate(n, seed, config)`` returns (applications, truth) DataFrames; ``write(out_dir, n, seed, config)``
streams the same rows to Parquet with a report and returns a ``Summary``.
"""

from graph.synth.config import RING_STYLES, SCENARIOS, RingConfig, SynthConfig
from graph.synth.dataset import Summary, generate, write
from graph.synth.faces import FaceParams, sample_embeddings

__all__ = [
    "RING_STYLES",
    "SCENARIOS",
    "FaceParams",
    "RingConfig",
    "Summary",
    "SynthConfig",
    "generate",
    "sample_embeddings",
    "write",
]
