"""One corpus size's rows of the sweep: BM25, a dense candidate per index x precision, a hybrid; each row's
nDCG@10 and recall@100, ANN recall against exact search, p50 (question encoded afresh plus searched), build time,
bytes per passage and peak memory. bench.scale grows the corpora and calls these."""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np

from bench.index import supports


K = 100  # results kept per question: recall@100, nDCG@10, and the pool a hybrid fuses
TIMED_QUESTIONS = 40  # questions timed at batch 1 per row (encode + search), seeded


@dataclass
class Corpus:
    """The task's passages first, then the first N - |task| distractors."""

    ids: list[str]
    texts: list[str]
    n_task: int
    n_synthetic: int

    @property
    def synthetic_share(self) -> float:
        return round(self.n_synthetic / len(self.texts), 5)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def metrics(data, qids: list[str], ids: list[list[int]], scores: list[list[float]], doc_ids: list[str]) -> dict:
    """nDCG@10 (with its bootstrap CI and per-question values) and recall@100 by mteb's scorer, as bench run scores."""
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    from bench.measure import stats

    results = {q: {doc_ids[i]: float(s) for i, s in zip(row_i, row_s) if i >= 0}
               for q, row_i, row_s in zip(qids, ids, scores)}
    r = calculate_retrieval_scores(results, {q: data.qrels[q] for q in qids}, [10, K])
    per_query = {q: round(s["ndcg_cut_10"], 5) for q, s in r.all_scores.items()}
    low, high = stats.interval(per_query)
    return {"ndcg_at_10": round(r.ndcg["NDCG@10"], 5), "ndcg_ci_low": low, "ndcg_ci_high": high,
            "recall_at_100": round(r.recall[f"Recall@{K}"], 5), "per_query_ndcg": per_query}


def ann_recall(ids: np.ndarray, exact_ids: np.ndarray, k: int = 10) -> float:
    """Share of the exact fp32 top k that the row's top k also holds, averaged over questions."""
    hits = [len(set(a[:k]) & set(b[:k])) / min(k, len(b)) for a, b in zip(ids, exact_ids)]
    return round(float(np.mean(hits)), 5)


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so the next read is this row's own peak.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed_questions(qids: list[str]) -> list[str]:
    import random

    return sorted(random.Random(0).sample(sorted(qids), min(TIMED_QUESTIONS, len(qids))))


def _p50(ms: list[float]) -> float:
    return round(float(np.median(ms)), 3)


def encode_ms(candidate, questions: list[str]) -> tuple[list[np.ndarray], list[float]]:
    """Each timed question encoded afresh at batch 1 (no cache), as a deployed search does."""
    vecs, ms = [], []
    for text in questions:
        start = time.perf_counter()
        v = candidate.embed(candidate.prepare([text], "query"), "query")
        ms.append(1000 * (time.perf_counter() - start))
        vecs.append(unit(np.asarray(v, np.float32))[0])
    return vecs, ms


def _bm25_rows(bm25, retriever, queries: list[str], k: int) -> tuple[list, list]:
    ids, scores = [], []
    for q in queries:
        row = bm25.scores([q], [], index=retriever)[0]
        kk = min(k, len(row))
        top = np.argpartition(-row, kk - 1)[:kk]
        top = top[np.argsort(-row[top], kind="stable")]
        ids.append(top)
        scores.append(row[top])
    return ids, scores


def _bm25_bytes(retriever) -> int:
    arrays = [v for v in retriever.scores.values() if isinstance(v, np.ndarray)]
    vocab = sum(len(t.encode("utf-8")) + 8 for t in retriever.vocab_dict)
    return int(sum(a.nbytes for a in arrays) + vocab)


def lexical_rows(lexical, data, corpus: Corpus, qids: list[str]) -> dict:
    bm25 = lexical.bm25
    _reset_peak()
    start = time.perf_counter()
    retriever = lexical.index(corpus.texts)
    build = time.perf_counter() - start
    ids, scores = _bm25_rows(bm25, retriever, [data.queries[q] for q in qids], K)
    ms = []
    for q in timed_questions(qids):
        start = time.perf_counter()
        _bm25_rows(bm25, retriever, [data.queries[q]], K)
        ms.append(1000 * (time.perf_counter() - start))
    return {"index": "bm25s", "precision": None, **metrics(data, qids, ids, scores, corpus.ids),
            "ann_recall_at_10": None, "latency_p50_ms": _p50(ms), "build_seconds": round(build, 3),
            "bytes_per_passage": round(_bm25_bytes(retriever) / len(corpus.texts), 1), "peak_mb": _peak_mb()}


def dense_rows(candidate, data, corpus: Corpus, qids: list[str], vectors: np.ndarray, qvecs: np.ndarray,
                timed: tuple[list[str], list[np.ndarray], list[float]], indexes, precisions, threads) -> list[dict]:
    from bench.index import build
    from bench.index.precision import parse_precision

    timed_ids, timed_vecs, encode_ms = timed
    rows = []
    bases = {}  # one index per base precision serves its +rescore row too
    for p in precisions:
        bases.setdefault(parse_precision(p)[0], []).append(p)
    exact_ids = build("exact", vectors, "fp32").search(qvecs, K)[1]  # what ANN recall is measured against
    for index in indexes:
        for base, group in bases.items():
            if not supports(index, base):
                continue
            _reset_peak()
            idx = build(index, vectors, base, threads=threads)
            for precision in sorted(group, key=lambda p: p != "fp32"):
                idx.precision, idx.rescoring = precision, parse_precision(precision)[1]
                scores, ids = idx.search(qvecs, K)
                ms = _search_ms(idx, timed_vecs, encode_ms)
                ann = None if (index == "exact" and precision == "fp32") else ann_recall(ids, exact_ids)
                rows.append({"index": index, "precision": precision, **metrics(data, qids, ids, scores, corpus.ids),
                             "ann_recall_at_10": ann, "latency_p50_ms": _p50(ms),
                             "build_seconds": round(idx.build_seconds, 3),
                             "bytes_per_passage": round(idx.nbytes / len(corpus.texts), 1), "peak_mb": _peak_mb()})
                tqdm_write(f"{len(corpus.texts):>9} {candidate.entry.name} [{candidate.variant}] {index}/{precision}: "
                           f"nDCG@10 {rows[-1]['ndcg_at_10']:.3f} ann@10 {ann} p50 {rows[-1]['latency_p50_ms']:.2f} ms "
                           f"build {idx.build_seconds:.1f} s")
            del idx
    return rows


@contextmanager
def one_thread():
    """Timed single questions run on one thread: a query server answers one question per thread, and on a busy
    2-core machine an OpenMP or BLAS second thread waits for a core (50-100 ms outliers at batch 1)."""
    import faiss

    try:  # NumPy's BLAS, for the exact fp32 scan (threadpoolctl comes with scikit-learn; optional here)
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        with threadpool_limits(1) if threadpool_limits else nullcontext():
            yield
    finally:
        faiss.omp_set_num_threads(before)


def _search_ms(idx, vecs, encode_ms) -> list[float]:
    """Encode (measured before) + search, per timed question."""
    ms = []
    with one_thread():
        for v, enc in zip(vecs, encode_ms):
            start = time.perf_counter()
            idx.search(v[None, :], K)
            ms.append(enc + 1000 * (time.perf_counter() - start))
    return ms


def hybrid_row(pipe, data, corpus: Corpus, qids: list[str], vectors: np.ndarray, qvecs: np.ndarray,
                timed, bm25_retriever) -> dict:
    from bench.models.pipelines import fuse

    lexical = next(p for p in pipe.parts if p.kind == "lexical")
    timed_ids, timed_vecs, encode_ms = timed

    def one(qtext: str, qv: np.ndarray):
        lex = lexical.bm25.scores([qtext], [], index=bm25_retriever)[0]
        dense = vectors @ qv
        fused = fuse([lex, dense] if pipe.parts[0] is lexical else [dense, lex], pipe.fusion, pipe.weight)
        top = np.argpartition(-fused, min(K, len(fused)) - 1)[:K]
        top = top[np.argsort(-fused[top], kind="stable")]
        return top, fused[top]

    _reset_peak()
    ids, scores = zip(*(one(data.queries[q], v) for q, v in zip(qids, qvecs)))
    ms = []
    with one_thread():
        for q, v, enc in zip(timed_ids, timed_vecs, encode_ms):
            start = time.perf_counter()
            one(data.queries[q], v)
            ms.append(enc + 1000 * (time.perf_counter() - start))
    return {"index": "bm25s+exact", "precision": "fp32", **metrics(data, qids, list(ids), list(scores), corpus.ids),
            "ann_recall_at_10": None, "latency_p50_ms": _p50(ms), "build_seconds": None,
            "bytes_per_passage": round((_bm25_bytes(bm25_retriever) + vectors.nbytes) / len(corpus.texts), 1),
            "peak_mb": _peak_mb()}


def tqdm_write(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text)
