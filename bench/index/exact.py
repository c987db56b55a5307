"""Exact search: every passage scored. fp32 is today's NumPy dot product over the whole matrix (blockwise, so a
million passages never make a questions x passages matrix); int8 and binary scan their codes with faiss' flat
indexes (8-bit codes decoded in SIMD against the fp32 query; Hamming distance on packed bits)."""

from __future__ import annotations

import time

import numpy as np

from bench.index import precision as prec

BLOCK = 1 << 16  # passages per block of the fp32 scan


def top_k_blockwise(q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best rows of d for each query by dot product, in order, without a full (queries x passages) matrix."""
    k = min(k, len(d))
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(d), BLOCK):
        s = q @ d[start:start + BLOCK].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        if best_s.shape[1] > k:
            keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)


class Searcher:
    """What every backend shares: a precision, the fp32 vectors kept for rescoring, search with or without it."""

    name = ""
    bases = ("fp32", "int8", "binary")  # the precisions (without +rescore) this index stores

    def _setup(self, vectors: np.ndarray, precision: str, threads: int | None) -> None:
        import faiss

        if threads:
            faiss.omp_set_num_threads(threads)
        self.precision = precision
        self.base, self.rescoring = prec.parse_precision(precision)
        # Sign bits need centred vectors (bench.index.precision); an inner-product graph or scan needs unit ones.
        self.mean = prec.centre(vectors) if self.base == "binary" else np.zeros(vectors.shape[1], np.float32)
        self.q = prec.quantize(vectors - self.mean, self.base)
        self.full = vectors  # read only for rescored candidates: on disk (memory-mapped) in a deployment
        self.n = len(vectors)
        self.faiss = None

    @property
    def nbytes(self) -> int:
        """The index's bytes in memory (faiss' serialized size; NumPy's array bytes)."""
        import faiss

        if self.faiss is None:
            return int(self.q.codes.nbytes)
        serialize = faiss.serialize_index_binary if self.base == "binary" else faiss.serialize_index
        return int(serialize(self.faiss).size)

    def _prepare_search(self, k: int) -> None:
        pass

    def _raw(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n)
        if self.base == "binary":
            self._prepare_search(k)
            dist, ids = self.faiss.search(prec.binary_queries(q - self.mean), k)
            return -dist.astype(np.float32), ids
        if self.faiss is None:
            scores, ids = top_k_blockwise(q, self.q.codes, k)
        else:
            self._prepare_search(k)
            scores, ids = self.faiss.search(q, k)
        return scores + (q @ self.mean)[:, None], ids  # q·(d − μ) + q·μ: the cosine again

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k best passages per query row, best first; ids -1 pad a short result."""
        q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.float32)
        if not self.rescoring:
            return self._raw(q, k)
        _, ids = self._raw(q, k * prec.RESCORE_MULTIPLIER)
        return prec.rescore(q, ids, self.full, k)


class Exact(Searcher):
    name = "exact"

    def __init__(self, vectors: np.ndarray, precision: str = "fp32", threads: int | None = None):
        import faiss

        start = time.perf_counter()
        self._setup(vectors, precision, threads)
        if self.base == "int8":
            self.faiss = faiss.IndexScalarQuantizer(self.q.dim, faiss.ScalarQuantizer.QT_8bit,
                                                    faiss.METRIC_INNER_PRODUCT)
            prec.train_sq(self.faiss, self.q)
            self.faiss.add(prec.decode(self.q.codes, self.q))
        elif self.base == "binary":
            self.faiss = faiss.IndexBinaryFlat(self.q.codes.shape[1] * 8)
            self.faiss.add(self.q.codes)
        self.build_seconds = time.perf_counter() - start
