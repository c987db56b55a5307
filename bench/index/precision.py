"""Vector precision: fp32, int8 (per-dimension ranges) and binary (sign bits), the codes computed by
sentence-transformers' `quantize_embeddings`, optionally with rescoring of the top candidates at higher precision.

- int8 is searched asymmetrically: the fp32 query against the passages' 8-bit codes decoded on the fly (faiss'
  ScalarQuantizer given sentence-transformers' ranges, which reproduces its codes exactly). Quantizing the query too,
  as semantic_search_faiss does with uint8, ranks by the codes' dot product, which the per-dimension offsets skew.
- binary is searched by Hamming distance between the query's and the passages' sign bits.
- For binary, passages are centred on their mean (from the calibration sample) before taking sign bits, and the
  query on the same mean: the models' vectors share one dominant direction (every static-model passage has a
  positive cosine with every other), so uncentred sign bits are nearly the same for every passage. fp32 and int8
  stay uncentred: HNSW's inner-product graph needs vectors of one norm (centred, its recall@10 fell from 0.91 to
  0.75 at 10^4 static-model passages), and an exact scan does not care.
- pq: product-quantized codes, which only an index that trains them (IVF-PQ) holds; the vectors stay fp32 here.
- `+rescore`: `RESCORE_MULTIPLIER` x k candidates found that way are re-ordered by the fp32 query against the
  passages' fp32 vectors, which a deployment keeps on disk (memory-mapped) and reads only for those candidates; they
  are not counted in an index's bytes in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASES = ("fp32", "int8", "binary", "pq")
PRECISIONS = ("fp32", "int8", "int8+rescore", "binary", "binary+rescore", "pq", "pq+rescore")
RESCORE_MULTIPLIER = 4  # sentence-transformers defaults to 2; 4 is the embedding-quantization guide's setting
CALIBRATION = 10_000  # passages the int8 ranges are read from (a seeded sample)


def parse_precision(name: str) -> tuple[str, bool]:
    base, _, rescore = name.partition("+")
    return base, rescore == "rescore"


@dataclass
class Quantized:
    base: str
    codes: np.ndarray  # fp32 rows, uint8 rows (int8 shifted by 128) or packed sign bits
    ranges: np.ndarray | None = None  # int8: (2, dim) min and max per dimension
    dim: int = 0

    @property
    def bytes_per_vector(self) -> int:
        return int(self.codes.shape[1] * self.codes.itemsize)


def calibration_sample(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    if len(vectors) <= CALIBRATION:
        return vectors
    return vectors[np.sort(np.random.default_rng(seed).choice(len(vectors), CALIBRATION, replace=False))]


def centre(vectors: np.ndarray) -> np.ndarray:
    """The passages' mean direction, from the calibration sample."""
    return calibration_sample(vectors).mean(axis=0).astype(np.float32)


def quantize(vectors: np.ndarray, base: str, seed: int = 0) -> Quantized:
    from sentence_transformers.util.quantization import quantize_embeddings

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if base in ("fp32", "pq"):  # pq: the index trains and stores its own codes
        return Quantized(base, vectors, None, dim)
    if base == "int8":
        sample = calibration_sample(vectors, seed)
        ranges = np.vstack((sample.min(axis=0), sample.max(axis=0)))
        codes = quantize_embeddings(vectors, "uint8", ranges=ranges)
        return Quantized(base, np.ascontiguousarray(codes), ranges, dim)
    if base == "binary":
        return Quantized(base, np.ascontiguousarray(quantize_embeddings(vectors, "ubinary")), None, dim)
    raise ValueError(f"unknown precision base {base!r}")


def ranges_of(quantized: Quantized) -> tuple[np.ndarray, np.ndarray]:
    """(start, width) per dimension, as faiss' ScalarQuantizer stores its trained ranges."""
    return quantized.ranges[0].astype(np.float32), (quantized.ranges[1] - quantized.ranges[0]).astype(np.float32)


def decode(codes: np.ndarray, quantized: Quantized) -> np.ndarray:
    """8-bit codes back to fp32 at the middle of their bucket: faiss re-encodes these to exactly the same codes."""
    start, width = ranges_of(quantized)
    step = np.where(width == 0, 1, width / 255)
    return (codes.astype(np.float32) + 0.5) * step + start


def train_sq(sq_index, quantized: Quantized) -> None:
    """Give a faiss ScalarQuantizer (QT_8bit) sentence-transformers' ranges instead of training its own."""
    import faiss

    start, width = ranges_of(quantized)
    sq = faiss.downcast_index(sq_index).sq if not hasattr(sq_index, "sq") else sq_index.sq
    sq.trained.resize(0)
    faiss.copy_array_to_vector(np.concatenate([start, np.where(width == 0, 1e-6, width)]).astype(np.float32), sq.trained)
    sq_index.is_trained = True


def binary_queries(q: np.ndarray) -> np.ndarray:
    from sentence_transformers.util.quantization import quantize_embeddings

    return quantize_embeddings(np.ascontiguousarray(q, dtype=np.float32), "ubinary")


def rescore(q: np.ndarray, ids: np.ndarray, full: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-order each query's candidates by fp32 query x fp32 passage; the top k are kept. Padding ids (-1) last."""
    safe = np.where(ids < 0, 0, ids)
    scores = np.einsum("ij,ikj->ik", q.astype(np.float32), np.asarray(full[safe.ravel()]).reshape(*ids.shape, -1))
    scores[ids < 0] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(q))[:, None]
    return scores[rows, order], ids[rows, order]
