from bench.reports import report
from bench.reports.results import ResultRecord


def rec(model, variant, ndcg, p50, kind="bi-encoder"):
    return ResultRecord(task="t", model=model, variant=variant, status="ok", kind=kind, ndcg_at_10=ndcg, mrr_at_10=ndcg,
                        recall_at_1=ndcg, recall_at_5=ndcg, recall_at_10=ndcg, n_queries=10, n_docs=5,
                        latency_p50_ms=p50, latency_p95_ms=p50 * 1.2, throughput_per_s=100.0, threads=2,
                        peak_gflops=100.0, cpu="test cpu")


ROWS = [rec("bm25", "bm25s", 0.80, 0.1, kind="lexical"), rec("big", "torch-fp32", 0.92, 40.0),
        rec("big", "onnx-int8", 0.915, 6.0), rec("slow-bad", "torch-fp32", 0.70, 30.0)]


def test_pareto_front_keeps_only_undominated_rows():
    front = report.pareto_front(ROWS)
    assert [(r.model, r.variant) for r in front] == [("bm25", "bm25s"), ("big", "onnx-int8"), ("big", "torch-fp32")]


def test_recommendation_per_latency_budget():
    lines = report.recommendations(ROWS)
    assert "≤ 2 ms per query:** bm25 [bm25s]" in lines[0]
    assert "≤ 10 ms per query:** big [onnx-int8]" in lines[1] and "0.005 nDCG@10 below" in lines[1]
    assert "≤ 50 ms per query:** big [torch-fp32]" in lines[2] and "best overall" in lines[2]
    assert "Best overall:** big [torch-fp32]" in lines[3] and "big [onnx-int8] answers in 6.00 ms" in lines[3]


def test_markdown_has_plot_table_and_recommendation(tmp_path):
    paths = report.write_reports(ROWS + [ResultRecord(task="t", model="hub", variant="torch-fp32", status="skipped",
                                                      reason="no network", fix="hf download hub")], tmp_path)
    md = paths[0].read_text(encoding="utf-8")
    assert "![nDCG@10 against query latency](t-pareto.png)" in md and (tmp_path / "t-pareto.png").stat().st_size > 1000
    assert "## Recommendation" in md and "Pareto front" in md and "| hub" in md and "hf download hub" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| big ") and "torch-fp32" in table[1]  # best first (row 0 is the header)


def test_pipeline_verdict_compares_with_each_part():
    hybrid = rec("hybrid", "bm25s+onnx-int8", 0.93, 7.0, kind="pipeline")
    hybrid.stages = ["bm25 [bm25s]", "big [onnx-int8]"]
    line = report.pipeline_verdicts(ROWS + [hybrid])[0]
    assert "beats each of its parts" in line and "+0.015 against the best" in line
    hybrid.ndcg_at_10 = 0.90
    assert "does not beat its best part" in report.pipeline_verdicts(ROWS + [hybrid])[0]
