"""Retrieval pipelines scored as one candidate: re-ranking (first stage top-k, second stage re-scores) and
hybrid fusion of a lexical and a dense ranking.

Every stage is another registry candidate, so a cross-encoder trained later is one more registry entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RRF_K = 60  # Cormack et al. (2009): damps the weight of the very top ranks
FLOOR = -1e6  # below any real score: documents a re-ranker never saw stay behind the ones it scored


def _topk_idx(row: np.ndarray, k: int) -> np.ndarray:
    k = min(k, row.shape[0])
    idx = np.argpartition(-row, k - 1)[:k]
    return idx[np.argsort(-row[idx], kind="stable")]


def _sum_or_none(values):
    values = [v for v in values if v is not None]
    return sum(values) if values else None


class CrossEncoderStage:
    """A sentence-transformers CrossEncoder: scores (question, passage) pairs."""

    kind = "cross-encoder"

    def __init__(self, entry, model, params=None, disk_bytes=None, fingerprint: str | None = None):
        self.entry, self.model, self.params, self.disk_bytes = entry, model, params, disk_bytes
        self.variant = "torch-fp32"
        self.flops_config = None
        self.fingerprint = fingerprint

    def pair_scores(self, query: str, passages: list[str]) -> np.ndarray:
        """One question's candidates, scored now: what a search does, and what the speed phase times."""
        if not passages:
            return np.zeros(0, np.float32)
        return self._predict([(query, p) for p in passages])

    def _predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        # One pair per forward pass: padded into a batch, a pair's score moves in the last bits with its batch-mates,
        # which made a row depend on which pipeline had cached its pairs first. No slower on two cores: 60 leaflet
        # pairs took 4.9 s against 7.2 s at batch 32, and a pipeline's p50 per query moved by -12% to +9%.
        return np.array([self.model.predict([pair], batch_size=1, show_progress_bar=False)[0] for pair in pairs],
                        dtype=np.float32).reshape(len(pairs))

    def score_pairs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Many questions' candidates at once, for the quality run. A 12-layer cross-encoder scores a few pairs per
        second on two cores, so scores are cached by (model files, max length, code, pair): two pipelines that
        re-rank overlapping candidates, or a re-run, score each pair once. Sorted by length to keep padding low."""
        from bench.models.embcache import EmbeddingCache
        from bench.paths import cache_dir
        from bench.provenance import code_fingerprint

        if not pairs:
            return np.zeros(0, np.float32)
        fp = f"cross-encoder|{self.fingerprint}|{self.model.max_length}|{code_fingerprint('bench.models')}"
        scores = EmbeddingCache(cache_dir() / "embeddings.sqlite").compute_missing(
            fp, pairs, lambda pair: f"{pair[0]}\x00{pair[1]}", lambda chunk: self._predict(chunk)[:, None], 256,
            "re-rank pairs", "pair")
        return np.array([s[0] for s in scores], np.float32)


def rank_fused(second: np.ndarray) -> np.ndarray:
    """RRF of the first stage's and the second stage's ranks, for a top k given in first-stage order. A re-ranker
    weaker than its first stage on some questions then moves a passage only as far as both stages agree; ties go to
    the first stage."""
    first_order = -np.arange(second.shape[0], dtype=np.float64)
    return fuse([first_order, second], "rrf", 0.5) + first_order * 1e-9


@dataclass
class Rerank:
    entry: object
    variant: str
    first: object
    second: object
    top_k: int = 100
    fusion: str | None = None  # "rrf": the top k ordered by both stages' ranks, not by the second stage alone
    kind: str = "pipeline"
    flops_config: dict | None = None

    @property
    def stages(self) -> list:
        """The declared interface of every pipeline: its direct stages, in order."""
        return [self.first, self.second]

    @property
    def params(self):
        return _sum_or_none([self.first.params, self.second.params])

    @property
    def disk_bytes(self):
        return _sum_or_none([self.first.disk_bytes, self.second.disk_bytes])

    def _combine(self, first_row: np.ndarray, rescore) -> np.ndarray:
        top = _topk_idx(first_row, self.top_k)
        out = FLOOR + first_row.astype(np.float64) / (np.abs(first_row).max() + 1.0)  # keeps first-stage order
        out[top] = rescore(top) if self.fusion is None else rank_fused(rescore(top))
        return out

    def scores(self, queries: list[str], docs: list[str]) -> np.ndarray:
        first = self.first.scores(queries, docs)
        if self.second.kind == "cross-encoder":
            tops = [_topk_idx(row, self.top_k) for row in first]
            flat = self.second.score_pairs([(q, docs[j]) for q, top in zip(queries, tops) for j in top])
            starts = np.cumsum([0] + [len(t) for t in tops])
            return np.stack([self._combine(first[i], lambda top, i=i: flat[starts[i]:starts[i + 1]])
                             for i in range(len(queries))])
        second = self.second.scores(queries, docs)  # dense: cached corpus embeddings make the full matrix cheap
        return np.stack([self._combine(first[i], lambda top, i=i: second[i, top]) for i in range(len(queries))])

    def index(self, docs: list[str]):
        second = None if self.second.kind == "cross-encoder" else self.second.index(docs)
        return self.first.index(docs), second, docs

    def search(self, state, query: str) -> np.ndarray:
        first_state, second_state, docs = state
        first = self.first.search(first_state, query)
        if self.second.kind == "cross-encoder":
            return self._combine(first, lambda top: self.second.pair_scores(query, [docs[j] for j in top]))
        second = self.second.search(second_state, query)
        return self._combine(first, lambda top: second[top])


def fuse(rows: list[np.ndarray], fusion: str, weight: float) -> np.ndarray:
    """Reciprocal rank fusion, or min-max normalised scores mixed with `weight` on the last part."""
    if fusion == "rrf":
        out = np.zeros(rows[0].shape, np.float64)
        for row in rows:
            ranks = np.empty(row.shape[-1], np.int64)
            ranks[np.argsort(-row, kind="stable")] = np.arange(1, row.shape[-1] + 1)
            out += 1.0 / (RRF_K + ranks)
        return out
    normed = []
    for row in rows:
        lo, hi = row.min(), row.max()
        normed.append((row - lo) / (hi - lo) if hi > lo else np.zeros_like(row, dtype=np.float64))
    return (1 - weight) * normed[0] + weight * normed[1]


@dataclass
class Hybrid:
    entry: object
    variant: str
    parts: list
    fusion: str = "rrf"
    weight: float = 0.5
    kind: str = "pipeline"
    flops_config: dict | None = None

    @property
    def stages(self) -> list:
        return list(self.parts)

    @property
    def params(self):
        return _sum_or_none([p.params for p in self.parts])

    @property
    def disk_bytes(self):
        return _sum_or_none([p.disk_bytes for p in self.parts])

    def scores(self, queries: list[str], docs: list[str]) -> np.ndarray:
        mats = [p.scores(queries, docs) for p in self.parts]
        return np.stack([fuse([m[i] for m in mats], self.fusion, self.weight) for i in range(len(queries))])

    def index(self, docs: list[str]):
        return [p.index(docs) for p in self.parts]

    def search(self, state, query: str) -> np.ndarray:
        return fuse([p.search(s, query) for p, s in zip(self.parts, state)], self.fusion, self.weight)
