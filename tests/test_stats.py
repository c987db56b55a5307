import itertools
import json

import numpy as np
import pytest

from bench.data.tasks import RetrievalData
from bench.errors import BenchError
from bench.measure import evaluate, stats
from bench.measure import results


class FixedScores:
    def __init__(self, matrix):
        self.matrix = np.asarray(matrix, dtype=np.float32)

    def scores(self, queries, docs):
        return self.matrix


def test_per_query_ndcg_averages_to_the_reported_metric():
    rng = np.random.default_rng(1)
    n_q, n_d = 60, 40
    data = RetrievalData(
        "random",
        corpus={f"d{j}": {"title": "", "text": str(j)} for j in range(n_d)},
        queries={f"q{i}": str(i) for i in range(n_q)},
        # one or two relevant paragraphs per question, some graded, so per-question nDCG takes many values
        qrels={f"q{i}": {f"d{i % n_d}": 1, **({f"d{(i * 7) % n_d}": 2} if i % 3 == 0 else {})} for i in range(n_q)},
    )
    ev = evaluate.evaluate(FixedScores(rng.random((n_q, n_d))), data)
    assert set(ev.per_query_ndcg) == set(data.queries)
    assert len(set(ev.per_query_ndcg.values())) > 5
    assert np.mean(list(ev.per_query_ndcg.values())) == pytest.approx(ev.metrics["ndcg_at_10"], abs=1e-5)


def test_bootstrap_interval_is_deterministic_and_matches_the_normal_approximation():
    values = np.random.default_rng(2).random(400)
    low, high = stats.bootstrap_ci(values)
    assert (low, high) == stats.bootstrap_ci(values)
    assert low < values.mean() < high
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert stats.bootstrap_ci(values, seed=1) != (low, high)


def test_bootstrap_interval_of_a_constant_is_a_point():
    assert stats.bootstrap_ci([0.5] * 30) == pytest.approx((0.5, 0.5))


def test_randomization_p_value_matches_exact_enumeration():
    d = np.array([0.3, 0.1, -0.05, 0.2, 0.0, 0.15, -0.1, 0.25])
    observed = abs(d.mean())
    flips = np.array(list(itertools.product([-1, 1], repeat=d.size)))
    exact = np.mean(np.abs(flips @ d) / d.size >= observed - 1e-12)
    diff, p = stats.randomization_test(d, np.zeros_like(d), n_resamples=20000)
    assert diff == pytest.approx(d.mean())
    assert p == pytest.approx(exact, abs=0.01)


def test_small_gain_on_few_questions_is_not_significant_but_a_consistent_one_is():
    rng = np.random.default_rng(3)
    base = rng.random(10)
    noisy = base + 0.005 + rng.normal(0, 0.05, 10)
    _, p_few = stats.randomization_test(noisy, base)
    assert p_few > stats.ALPHA
    base = rng.random(200) * 0.9
    diff, p_all = stats.randomization_test(base + 0.01, base)
    assert diff == pytest.approx(0.01) and p_all < stats.ALPHA


def test_identical_rows_are_not_different_and_the_test_is_symmetric():
    a = np.random.default_rng(4).random(50)
    b = np.random.default_rng(5).random(50)
    assert stats.randomization_test(a, a) == (0.0, 1.0)
    d_ab, p_ab = stats.randomization_test(a, b)
    d_ba, p_ba = stats.randomization_test(b, a)
    assert d_ab == pytest.approx(-d_ba) and p_ab == p_ba


def test_compare_pairs_only_shared_questions_and_refuses_missing_scores():
    a = {"q1": 1.0, "q2": 0.5, "q3": 0.0, "only_a": 1.0}
    b = {"q3": 0.0, "q2": 0.5, "q1": 0.0, "only_b": 0.0}
    t = stats.compare(a, b)
    assert t.n == 3 and t.diff == pytest.approx(1 / 3) and t.tested
    untested = stats.compare(a, None, fallback_diff=0.2)
    assert not untested.tested and not untested.significant and untested.diff == 0.2
    assert not stats.compare(a, {"other": 1.0}).tested


def test_records_keep_per_query_scores_and_get_intervals(tmp_path):
    per_query = {f"q{i}": round(float(v), 5) for i, v in enumerate(np.random.default_rng(6).random(100))}
    rec = results.ResultRecord(task="t", model="m", variant="v", status="ok", ndcg_at_10=0.5,
                               per_query_ndcg=per_query)
    old = results.ResultRecord(task="t", model="old", variant="v", status="ok", ndcg_at_10=0.5)
    results.fill_intervals([rec, old])
    assert rec.ndcg_ci_low < np.mean(list(per_query.values())) < rec.ndcg_ci_high
    assert old.ndcg_ci_low is None and old.ndcg_ci_high is None
    path = tmp_path / "results.json"
    results.write([rec, old], path)
    back = results.read(path)
    assert back[0].per_query_ndcg == per_query and back[0].ndcg_ci_low == rec.ndcg_ci_low
    assert back[1].per_query_ndcg is None


def test_malformed_per_query_scores_name_the_field(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"task": "t", "model": "m", "variant": "v", "status": "ok",
                                 "per_query_ndcg": {"q1": "high"}}]), encoding="utf-8")
    with pytest.raises(BenchError, match=r"record \[0\] field 'per_query_ndcg'") as e:
        results.read(path)
    assert "high" not in str(e.value)


def test_run_stores_per_question_scores_and_the_report_rebuilds_intervals_from_them(tmp_path, tiny_registry, tiny_task):
    from bench.reports import report
    from bench.runner import run

    out = tmp_path / "reports"
    run(models=tiny_registry, tasks=[str(tiny_task)], only=["bm25"], measure_speed=False, out=out,
        write_reports=False)
    (rec,) = results.read(out / "results.json")
    assert len(rec.per_query_ndcg) == rec.n_queries == 6
    assert np.mean(list(rec.per_query_ndcg.values())) == pytest.approx(rec.ndcg_at_10, abs=1e-5)
    assert rec.ndcg_ci_low <= rec.ndcg_at_10 <= rec.ndcg_ci_high
    md = report.write_reports(results.read(out / "results.json"), out)[0].read_text(encoding="utf-8")
    assert f"| {rec.ndcg_ci_low:.3f}–{rec.ndcg_ci_high:.3f} |" in md
