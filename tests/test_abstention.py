import numpy as np
import pytest

from bench.data.tasks import RetrievalData
from bench.measure import abstention, evaluate


def test_auroc_is_the_share_of_pairs_ranked_right_with_ties_half():
    assert abstention.auroc([3, 4], [1, 2]) == 1.0
    assert abstention.auroc([1, 2], [3, 4]) == 0.0
    assert abstention.auroc([1, 3], [2, 2]) == pytest.approx(0.5)  # (1 win + 0 + 0 + 1) / 4 pairs
    assert abstention.auroc([2], [2]) == 0.5
    assert abstention.auroc([], [1]) is None


def test_threshold_answers_the_target_share_of_dev_answerable_questions():
    dev = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    t = abstention.threshold(dev, target=0.9)
    assert t == 0.1 and np.mean(np.array(dev) >= t) == 0.9
    assert abstention.threshold(dev, target=0.5) == 0.5


def test_split_is_seeded_stratified_and_disjoint():
    ans = [f"a{i}" for i in range(20)]
    una = [f"u{i}" for i in range(10)]
    dev, test = abstention.split(ans, una, seed=0)
    assert dev == abstention.split(list(reversed(ans)), una, seed=0)[0]  # order of input does not matter
    assert not set(dev) & set(test) and set(dev) | set(test) == set(ans) | set(una)
    assert sum(q.startswith("u") for q in dev) == 5 and sum(q.startswith("a") for q in dev) == 10


def test_summary_chooses_on_dev_and_reports_on_test():
    # Answerable questions score 0.6..0.99, unanswerable 0.1..0.5: perfectly separable.
    top = {f"a{i}": 0.6 + i / 100 for i in range(40)} | {f"u{i}": 0.1 + i / 100 for i in range(40)}
    s = abstention.summary(top, [f"a{i}" for i in range(40)], [f"u{i}" for i in range(40)])
    assert s["auroc"] == 1.0 and s["abstained_unanswerable"] == 1.0
    assert s["answered_answerable"] >= 0.85 and 0.6 <= s["threshold"] <= 0.99
    assert s["n_dev"] + s["n_test"] == 80 and s["seed"] == abstention.SEED and s["target_answered"] == 0.9


class FixedScores:
    def __init__(self, matrix):
        self.matrix = np.asarray(matrix, dtype=np.float32)

    def scores(self, queries, docs):
        assert len(queries) == len(self.matrix)
        return self.matrix


def test_evaluate_scores_unanswerable_questions_apart_from_the_metrics():
    data = RetrievalData("hand", corpus={"d1": {"title": "", "text": "a"}, "d2": {"title": "", "text": "b"}},
                         queries={"q1": "x", "q2": "y"}, qrels={"q1": {"d1": 1}, "q2": {"d2": 1}},
                         unanswerable={"u1": "z"}, kinds={"q1": "brand", "q2": "complaint", "u1": "unanswerable"})
    ev = evaluate.evaluate(FixedScores([[0.9, 0.1], [0.2, 0.8], [0.3, 0.1]]), data)
    assert ev.metrics["ndcg_at_10"] == 1.0 and set(ev.per_query_ndcg) == {"q1", "q2"}
    assert ev.top_scores == pytest.approx({"q1": 0.9, "q2": 0.8, "u1": 0.3})
    assert ev.ndcg_by_kind == {"brand": 1.0, "complaint": 1.0}
    assert ev.abstention["auroc"] == 1.0 and ev.abstention["n_unanswerable"] == 1
