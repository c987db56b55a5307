"""Vector indexes and precisions for searching passage vectors at corpus scale: a floor above bench.models (which
makes the vectors), below bench.measure and bench.scale (which score and time the searches).

One table maps each index name to its backend; every backend takes unit fp32 vectors and a precision and answers
`search(queries, k) -> (scores, ids)`:

    >>> from bench.index import build
    >>> idx = build("hnsw", vectors, "binary+rescore")
    >>> scores, ids = idx.search(query_vectors, 10)
"""

from __future__ import annotations

from bench.errors import BenchError
from bench.index.exact import Exact
from bench.index.hnsw import HNSW
from bench.index.precision import PRECISIONS, parse_precision

INDEXES = {"exact": Exact, "hnsw": HNSW}


def check_index(name: str, flag: str = "--index") -> str:
    if name not in INDEXES:
        raise BenchError(f"{flag}: unknown index '{name}' (known: {', '.join(INDEXES)})")
    return name


def check_precision(name: str, flag: str = "--precision") -> str:
    if name not in PRECISIONS:
        raise BenchError(f"{flag}: unknown precision '{name}' (known: {', '.join(PRECISIONS)})")
    return name


def build(index: str, vectors, precision: str = "fp32", **options):
    """An index of `vectors` (unit fp32 rows) at `precision`, by name from INDEXES."""
    return INDEXES[check_index(index)](vectors, check_precision(precision), **options)


__all__ = ["INDEXES", "PRECISIONS", "build", "check_index", "check_precision", "parse_precision"]
