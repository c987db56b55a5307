"""The Python API a notebook uses: the same run as the CLI, records back, a DataFrame of them."""

import pytest

import bench


@pytest.mark.slow
def test_run_returns_records_and_a_dataframe(tmp_path, tiny_registry, tiny_task):
    records = bench.run(models=tiny_registry, tasks=[str(tiny_task)], only=["bm25", "hub-only"], measure_speed=False,
                        out=tmp_path / "out", write_reports=False)
    by_model = {r.model: r for r in records if r.variant in ("bm25s", "torch-fp32")}
    assert by_model["bm25"].status == "ok" and 0 < by_model["bm25"].ndcg_at_10 <= 1
    assert by_model["hub-only"].status == "skipped"
    df = bench.to_frame(records)
    assert len(df) == len(records) and {"task", "model", "variant", "ndcg_at_10", "task_fingerprint"} <= set(df.columns)
    assert df.set_index("model").loc["bm25", "ndcg_at_10"] == by_model["bm25"].ndcg_at_10
    assert not (tmp_path / "out" / "tiny.md").exists()  # write_reports=False: records only


@pytest.mark.slow
def test_max_questions_scores_a_seeded_sample_and_says_so(tiny_registry, tiny_task, tmp_path, monkeypatch):
    """An entry with options.max_questions is scored on a fixed sample of the task's questions: the record says how
    many of how many, and the same sample comes back on a second run."""
    import bench
    from bench.models import registry

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.yaml"
    path.write_text(tiny_registry.read_text(encoding="utf-8") + """
  - name: bm25 sampled
    kind: lexical
    loader: bm25
    source: bm25s
    options: {max_questions: 2}
""", encoding="utf-8")
    assert registry.load_registry(path)  # the option is accepted
    runs = [bench.run(models=path, tasks=[str(tiny_task)], only=["bm25", "bm25 sampled"], measure_speed=False,
                      out=tmp_path / f"out{i}") for i in range(2)]
    full, sampled = [next(r for r in recs if r.model == name and r.status == "ok")
                     for recs in runs[:1] for name in ("bm25", "bm25 sampled")]
    assert sampled.n_queries == 2 and sampled.sampled_from == full.n_queries > 2 and full.sampled_from is None
    assert set(sampled.per_query_ndcg) < set(full.per_query_ndcg)
    again = next(r for r in runs[1] if r.model == "bm25 sampled")
    assert set(again.per_query_ndcg) == set(sampled.per_query_ndcg)


def test_max_questions_must_be_a_positive_integer(tiny_registry, tmp_path):
    from bench.errors import BenchError
    from bench.models import registry

    path = tmp_path / "m.yaml"
    path.write_text(tiny_registry.read_text(encoding="utf-8") + """
  - name: bad
    kind: lexical
    loader: bm25
    source: bm25s
    options: {max_questions: many}
""", encoding="utf-8")
    with pytest.raises(BenchError, match=r"options.max_questions.*positive integer"):
        registry.load_registry(path)
