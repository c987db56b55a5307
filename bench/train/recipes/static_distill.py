"""static-distill: a model2vec static model distilled from the base (the teacher), on paragraph text alone."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError
from bench.train.corpus import Job, paragraph_corpus

# No optimizer: one teacher forward pass per kept token (bench.train.distill).
DEFAULTS = {"pca_dims": 256, "trim": True, "vocabulary_size": 0, "min_count": 3, "sif_coefficient": 1e-4,
            "weighting": "zipf"}

LEAKAGE_NOTE = ("static-distill reads paragraph text only (which teacher tokens to keep, added words, token "
                "counts); no questions or labels")


def prepare(job: Job):
    """Paragraph text only: the vocabulary, and token counts for the weights."""
    corpus = paragraph_corpus(job)
    if not corpus:
        raise BenchError(f"train.data of '{job.entry.name}': empty vocabulary corpus (no paragraph or leaflet "
                         "text in the data files)")
    job.params["leakage_note"] = LEAKAGE_NOTE
    return (corpus,), [], corpus


def train(base: str, texts: list[str], out: Path, params: dict, seed: int) -> dict:
    """A model2vec static model distilled from the base (the teacher); see bench.train.distill."""
    from bench.train.distill import static_distill as distil

    return distil(base, texts, out, params, seed)
