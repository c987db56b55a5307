import math

import numpy as np
import pytest

from bench.measure import evaluate
from bench.data.tasks import RetrievalData


class FixedScores:
    """A candidate whose score matrix is written by hand, so the right metrics are known."""

    def __init__(self, matrix):
        self.matrix = np.asarray(matrix, dtype=np.float32)

    def scores(self, queries, docs):
        return self.matrix


def test_metrics_on_hand_made_case():
    data = RetrievalData(
        "hand",
        corpus={"d1": {"title": "", "text": "a"}, "d2": {"title": "", "text": "b"}, "d3": {"title": "", "text": "c"}},
        queries={"q1": "x", "q2": "y", "q3": "z"},
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}},
    )
    # gold ranks: q1 -> 1, q2 -> 2, q3 -> 3
    ev = evaluate.evaluate(FixedScores([[0.9, 0.1, 0.2], [0.8, 0.7, 0.1], [0.5, 0.4, 0.3]]), data)
    m = ev.metrics
    assert m["ndcg_at_10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(4)) / 3, abs=1e-5)
    assert m["mrr_at_10"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3, abs=1e-5)
    assert m["recall_at_1"] == pytest.approx(1 / 3, abs=1e-5)
    assert m["recall_at_5"] == pytest.approx(1.0)
    ranks = {row["query_id"]: row["gold"][0]["rank"] for row in ev.per_query}
    assert ranks == {"q1": 1, "q2": 2, "q3": 3}
    assert ev.per_query[1]["top"][0] == {"doc_id": "d1", "score": 0.8}


def test_top_k_keeps_the_best():
    got = evaluate.top_k(np.array([[0.1, 0.5, 0.3, 0.9]]), ["a", "b", "c", "d"], k=2)
    assert got == [{"d": pytest.approx(0.9), "b": pytest.approx(0.5)}]
