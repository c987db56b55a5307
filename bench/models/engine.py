"""Encode passages with a candidate's dense stages, in this process ("local") or on a Ray cluster ("ray").

Both paths give the same matrix: each dense stage's `encode(texts, "passage")` (prefix, NFC, L2 norm), the stages
side by side in `dense_stages` order, one row per text in input order. `bench search index` and `bench scale` call
`encode_passages`; neither needs to know where the work ran.
"""

from __future__ import annotations

import numpy as np

from bench.errors import BenchError
from bench.models.stages import dense_stages, encode_with

ENGINES = ("local", "ray")


def encode_passages(entry, variant: str | None, texts: list[str], engine: str = "local", address: str | None = None,
                    actors: int | None = None, batch_size: int | None = None) -> np.ndarray:
    """Passage vectors (n × sum of dense widths, float32, rows in the order of `texts`) of registry entry `entry` in
    `variant`. engine="ray" spreads them over `actors` Ray actors (default: one per CPU Ray sees), on the cluster at
    `address` or on a Ray started here."""
    if engine not in ENGINES:
        raise BenchError(f"--engine: unknown engine '{engine}' (expected one of: {', '.join(ENGINES)})")
    if engine == "ray":
        from bench.models import ray_engine

        return ray_engine.encode(entry, variant, list(texts), address=address, actors=actors, batch_size=batch_size)
    from bench.models import encoders

    candidate = encoders.load(entry, variant)
    if batch_size:
        for d in dense_stages(candidate):
            d.batch_size = batch_size
    return encode_with(candidate, list(texts))[0]
