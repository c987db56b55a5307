"""HNSW (faiss): a graph over the passages, at any precision: IndexHNSWFlat (fp32), IndexHNSWSQ with 8-bit codes
(int8, sentence-transformers' ranges), IndexBinaryHNSW (binary, Hamming). efSearch is at least the candidates
asked for."""

from __future__ import annotations

import time

import numpy as np

from bench.index import precision as prec
from bench.index.exact import Searcher

M = 16  # neighbours per node, sentence-transformers' semantic_search_faiss setting
EF_CONSTRUCTION = 40  # faiss' default: the build is the cost that grows on two cores
EF_SEARCH = 256  # at least; k x 4 when rescoring


class HNSW(Searcher):
    name = "hnsw"

    def __init__(self, vectors: np.ndarray, precision: str = "fp32", threads: int | None = None, m: int = M,
                 ef_construction: int = EF_CONSTRUCTION, ef_search: int = EF_SEARCH):
        import faiss

        start = time.perf_counter()
        self._setup(vectors, precision, threads)
        self.ef_search = ef_search
        if self.base == "binary":
            self.faiss = faiss.IndexBinaryHNSW(self.q.codes.shape[1] * 8, m)
            self.faiss.hnsw.efConstruction = ef_construction
            self.faiss.add(self.q.codes)
        elif self.base == "int8":
            self.faiss = faiss.IndexHNSWSQ(self.q.dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
            self.faiss.hnsw.efConstruction = ef_construction
            storage = faiss.downcast_index(self.faiss.storage)
            prec.train_sq(storage, self.q)
            self.faiss.is_trained = True
            self.faiss.add(prec.decode(self.q.codes, self.q))
        else:
            self.faiss = faiss.IndexHNSWFlat(self.q.dim, m, faiss.METRIC_INNER_PRODUCT)
            self.faiss.hnsw.efConstruction = ef_construction
            self.faiss.add(self.q.codes)
        self.build_seconds = time.perf_counter() - start

    def _prepare_search(self, k: int) -> None:
        self.faiss.hnsw.efSearch = max(self.ef_search, k)
