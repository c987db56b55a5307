"""Vector indexes and precisions for searching passage vectors at corpus scale: a floor above bench.models (which
makes the vectors), below bench.measure and bench.scale (which score and time the searches).

One table maps each index name to its backend; every backend takes unit fp32 vectors and a precision and answers
`search(queries, k) -> (scores, ids)`:

    >>> from bench.index import build
    >>> idx = build("hnsw", vectors, "binary+rescore")  # or build("ivfpq", vectors, "pq+rescore")
    >>> scores, ids = idx.search(query_vectors, 10)
"""

from __future__ import annotations

from bench.errors import BenchError
from bench.index.exact import Exact
from bench.index.hnsw import HNSW
from bench.index.ivfpq import IVFPQ
from bench.index.precision import PRECISIONS, parse_precision

INDEXES = {"exact": Exact, "hnsw": HNSW, "ivfpq": IVFPQ}


def check_index(name: str, flag: str = "--index") -> str:
    if name not in INDEXES:
        raise BenchError(f"{flag}: unknown index '{name}' (known: {', '.join(INDEXES)})")
    return name


def check_precision(name: str, flag: str = "--precision") -> str:
    if name not in PRECISIONS:
        raise BenchError(f"{flag}: unknown precision '{name}' (known: {', '.join(PRECISIONS)})")
    return name


def supports(index: str, precision: str) -> bool:
    """Whether an index stores vectors at this precision (IVF-PQ holds its own pq codes; exact and HNSW the rest)."""
    return parse_precision(precision)[0] in INDEXES[index].bases


def check_pairs(indexes, precisions, flag: str = "--precision") -> None:
    """Every precision asked for must be known, and every index asked for must store one of them."""
    for p in precisions:
        check_precision(p, flag)
    for name in indexes:
        if not any(supports(check_index(name), check_precision(p, flag)) for p in precisions):
            takes = [p for p in PRECISIONS if supports(name, p)]
            raise BenchError(f"{flag}: index '{name}' takes {', '.join(takes)}; none of {', '.join(precisions)} "
                             "was given")


def build(index: str, vectors, precision: str = "fp32", **options):
    """An index of `vectors` (unit fp32 rows) at `precision`, by name from INDEXES."""
    check_index(index)
    if not supports(index, check_precision(precision)):
        raise BenchError(f"index '{index}' does not store '{precision}' vectors (it takes "
                         f"{', '.join(p for p in PRECISIONS if supports(index, p))})")
    return INDEXES[index](vectors, precision, **options)


__all__ = ["INDEXES", "PRECISIONS", "build", "check_index", "check_pairs", "check_precision", "parse_precision",
           "supports"]
