"""The Python API a notebook uses: the same run as the CLI, records back, a DataFrame of them."""

import bench


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
