"""The stages inside a candidate, and their passage vectors side by side: what an index stores per passage."""

from __future__ import annotations

import numpy as np


def stages(candidate) -> list:
    """A candidate's direct stages: a pipeline's declared `stages`; none for a single model."""
    return candidate.stages if candidate.kind == "pipeline" else []


def dense_stages(candidate) -> list:
    """The bi-encoders inside a candidate, in a fixed order: the parts whose passage vectors an index stores."""
    if candidate.kind == "bi-encoder":
        return [candidate]
    if candidate.kind == "pipeline":
        return [d for s in stages(candidate) for d in dense_stages(s)]
    return []  # BM25 (rebuilt from the passages) and a cross-encoder (reads the passages at query time)


def encode_with(candidate, texts: list[str], progress: bool = True) -> tuple[np.ndarray, list[int]]:
    """(vectors, widths): every dense stage's passage vectors side by side, and each stage's width."""
    blocks = [d.encode(list(texts), "passage", progress=progress) for d in dense_stages(candidate)]
    if not blocks:
        return np.zeros((len(texts), 0), np.float32), []
    return np.hstack(blocks).astype(np.float32, copy=False), [b.shape[1] for b in blocks]
