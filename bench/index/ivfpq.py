"""IVF-PQ (faiss IndexIVFPQ): the passages split into `nlist` k-means cells, each passage stored as product-quantized
codes of its residual to its cell's centroid; a question scans the codes of its `nprobe` nearest cells. Its own
precision, `pq` (the codes are the quantization): searched as it is, or `pq+rescore` (4 x k candidates re-ordered
by the fp32 query against their fp32 vectors, as for int8 and binary). Unlike HNSW it trains in a minute at 10^6
passages on two cores: k-means on a sample, then one pass to encode.

Settings, chosen before any measurement from faiss' guidelines (not tuned on the sweep's questions):
- nlist = 4 sqrt(n) cells (the low end of faiss' 4-16 sqrt(n)), at most n / 39 so that k-means has the 39
  points per centroid faiss asks for; trained on a seeded sample of 39 x nlist passages (all of them when fewer).
- m = dims / 4 sub-vectors of 4 dimensions (25 bytes for a 100-dim static model, 96 for a 384-dim e5), 8 bits
  each (fewer below 39 x 256 passages, too few to train 256 centroids per sub-vector).
- nprobe = max(8, nlist / 32): about 3% of the cells scanned per question.
"""

from __future__ import annotations

import math
import time

import numpy as np

from bench.index.exact import Searcher

SUB_DIMS = 4  # dimensions per PQ sub-vector
NLIST_PER_SQRT = 4
POINTS_PER_CENTROID = 39  # faiss' minimum before it warns
PROBE_SHARE = 32  # nprobe = nlist / PROBE_SHARE
MIN_PROBES = 8


def sub_vectors(dims: int) -> int:
    """The most sub-vectors of about SUB_DIMS dimensions that divide `dims` (faiss needs m | dims)."""
    return next(m for m in range(max(1, dims // SUB_DIMS), 0, -1) if dims % m == 0)


def cells(n: int) -> int:
    return max(1, min(int(NLIST_PER_SQRT * math.sqrt(n)), n // POINTS_PER_CENTROID))


def code_bits(n: int) -> int:
    """8 bits per sub-vector, fewer when the corpus is too small to train 256 centroids per sub-vector."""
    return max(1, min(8, int(math.log2(max(2, n / POINTS_PER_CENTROID)))))


class IVFPQ(Searcher):
    name = "ivfpq"
    bases = ("pq",)

    def __init__(self, vectors: np.ndarray, precision: str = "pq", threads: int | None = None,
                 nlist: int | None = None, m: int | None = None, nbits: int | None = None,
                 nprobe: int | None = None, seed: int = 0):
        import faiss

        start = time.perf_counter()
        self._setup(vectors, precision, threads)
        n, dims = vectors.shape
        self.nlist = nlist or cells(n)
        self.m, self.nbits = m or sub_vectors(dims), nbits or code_bits(n)
        self.nprobe = nprobe or max(MIN_PROBES, self.nlist // PROBE_SHARE)
        quantizer = faiss.IndexFlatIP(dims)  # faiss' Python wrapper keeps it alive with the index
        self.faiss = faiss.IndexIVFPQ(quantizer, dims, self.nlist, self.m, self.nbits, faiss.METRIC_INNER_PRODUCT)
        sample = min(n, max(POINTS_PER_CENTROID * self.nlist, POINTS_PER_CENTROID * (1 << self.nbits)))
        rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)) if sample < n else slice(None)
        self.faiss.cp.seed = seed
        self.faiss.train(np.ascontiguousarray(vectors[rows]))
        self.faiss.add(vectors)
        self.build_seconds = time.perf_counter() - start

    def _prepare_search(self, k: int) -> None:
        self.faiss.nprobe = min(self.nprobe, self.nlist)

