"""Score a candidate on a task: rank every document for every question, then mteb's retrieval metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

from bench.data.retrieval import RetrievalData
from bench.measure import abstention

K_VALUES = (1, 5, 10)
TOP_K = 100  # documents kept per question: enough for @10 metrics and for re-ranking later


@dataclass
class Evaluation:
    metrics: dict[str, float]
    per_query: list[dict]
    encode_seconds: float
    per_query_ndcg: dict[str, float] = field(default_factory=dict)  # question id -> nDCG@10, for bench.measure.stats
    top_scores: dict[str, float] = field(default_factory=dict)  # question id -> its best passage's score
    ndcg_by_kind: dict[str, float] | None = None  # kind of question -> mean nDCG@10, where the task gives kinds
    n_by_kind: dict[str, int] | None = None
    abstention: dict | None = None  # bench.measure.abstention.summary, where the task has unanswerable questions


def top_k(scores: np.ndarray, doc_ids: list[str], k: int = TOP_K) -> list[dict[str, float]]:
    k = min(k, len(doc_ids))
    out = []
    for row in scores:
        idx = np.argpartition(-row, k - 1)[:k] if k < len(doc_ids) else np.arange(len(doc_ids))
        out.append({doc_ids[i]: float(row[i]) for i in idx})
    return out


def metrics_from_results(results: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """mteb's own retrieval scoring (pytrec_eval for nDCG/recall, mteb's MRR), named as mteb names them."""
    return scores_from_results(results, qrels)[0]


def scores_from_results(results, qrels) -> tuple[dict[str, float], dict[str, float]]:
    """The metrics above and each question's nDCG@10 from the same pytrec_eval pass, so their mean is the metric."""
    r = calculate_retrieval_scores(results, qrels, list(K_VALUES))
    per_query = {qid: round(s["ndcg_cut_10"], 5) for qid, s in r.all_scores.items()}
    return _named(r), per_query


def _named(r) -> dict[str, float]:
    return {
        "ndcg_at_10": r.ndcg["NDCG@10"],
        "mrr_at_10": round(r.mrr["MRR@10"], 5),
        "recall_at_1": r.recall["Recall@1"],
        "recall_at_5": r.recall["Recall@5"],
        "recall_at_10": r.recall["Recall@10"],
    }


def score_matrix(candidate, data: RetrievalData) -> tuple[list[str], list[str], np.ndarray, float]:
    """Rows: the answerable questions, then the unanswerable ones (scored in the same pass)."""
    doc_ids = list(data.corpus)
    texts = {**data.queries, **data.unanswerable}
    qids = list(texts)
    start = time.perf_counter()
    scores = candidate.scores([texts[q] for q in qids], [data.doc_text(d) for d in doc_ids])
    return qids, doc_ids, scores, time.perf_counter() - start


def evaluate(candidate, data: RetrievalData) -> Evaluation:
    qids, doc_ids, scores, seconds = score_matrix(candidate, data)
    answerable = scores[: len(data.queries)]
    results = dict(zip(qids[: len(data.queries)], top_k(answerable, doc_ids)))
    metrics, per_query_ndcg = scores_from_results(results, data.qrels)
    # Pipelines leave documents outside their top k at -inf or a floor: the maximum is still the top score.
    top = {q: float(np.max(row)) for q, row in zip(qids, scores)}
    by_kind = n_by_kind = None
    if data.kinds:
        groups: dict[str, list[float]] = {}
        for q, v in per_query_ndcg.items():
            groups.setdefault(data.kinds.get(q, "unlabelled"), []).append(v)
        by_kind = {k: round(float(np.mean(v)), 5) for k, v in sorted(groups.items())}
        n_by_kind = {k: len(v) for k, v in sorted(groups.items())}
    summary = abstention.summary(top, list(data.queries), list(data.unanswerable))
    return Evaluation(metrics, per_query_view(data, qids, doc_ids, scores), seconds, per_query_ndcg, top, by_kind,
                      n_by_kind, summary)


def per_query_view(data: RetrievalData, qids: list[str], doc_ids: list[str], scores: np.ndarray, show: int = 5) -> list[dict]:
    """What a person inspects: where the right paragraph landed and how close the distractors scored."""
    rows = []
    for qid, row in zip(qids, scores):
        order = np.argsort(-row, kind="stable")
        rank_of = {doc_ids[i]: r + 1 for r, i in enumerate(order)}
        gold = [d for d, rel in data.qrels.get(qid, {}).items() if rel > 0]
        rows.append({
            "query_id": qid,
            "question": data.queries.get(qid) or data.unanswerable[qid],
            **({"kind": data.kinds[qid]} if qid in data.kinds else {}),
            "gold": [{"doc_id": d, "rank": rank_of[d], "score": round(float(row[doc_ids.index(d)]), 4)} for d in gold],
            "top": [{"doc_id": doc_ids[i], "score": round(float(row[i]), 4)} for i in order[:show]],
        })
    return rows
