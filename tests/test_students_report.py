"""reports/students.md from result records alone: the tables and the issue's targets, met and not met."""

from __future__ import annotations

from pathlib import Path

from bench.measure import results

from bench.reports import students
from bench.measure.results import ResultRecord

TASKS = ("drug_leaflets", "thquad_dev")
MODELS = Path(__file__).resolve().parent.parent / "models.yaml"
CAST = students.load_cast(MODELS)


def rec(model: str, variant: str, task: str, ndcg: float, **kw) -> ResultRecord:
    return ResultRecord(task=task, model=model, variant=variant, status="ok", ndcg_at_10=ndcg, n_queries=50,
                        cpu="Test CPU", simd="avx2", threads=2, created="2026-11-26T06:00:00", **kw)


def records(student_ndcg: float = 0.79, static_p50: float = 0.3) -> list[ResultRecord]:
    out = []
    for t in TASKS:
        out += [rec(CAST.bm25, "bm25s", t, 0.70, latency_p50_ms=0.2),
                rec(CAST.base, "torch-fp32", t, 0.78, throughput_per_s=10.0, latency_p50_ms=20.0),
                rec(CAST.teacher, "torch-fp32", t, 0.80, throughput_per_s=10.0, latency_p50_ms=20.0),
                rec("e5-small 6-layer student Turkish-trimmed", "onnx-int8", t, student_ndcg, disk_bytes=31_000_000,
                    throughput_per_s=45.0, latency_p50_ms=4.0, params=23_000_000),
                rec("e5-small 4-layer student", "onnx-int8", t, 0.70, disk_bytes=90_000_000, throughput_per_s=25.0),
                rec("e5-small (full) static (model2vec)", "numpy-fp32", t, 0.72, latency_p50_ms=static_p50)]
    return out


def test_targets_met_and_not_met():
    text = students.render(records(), CAST)
    assert "**e5-small 6-layer student Turkish-trimmed** [onnx-int8]: meets the student target" in text
    four = next(line for line in text.splitlines() if line.startswith("- **e5-small 4-layer student**"))
    assert "does not meet" in four and "90.0 MB (target ≤ 40) ✗" in four and "2.50×" in four
    assert "drug_leaflets −0.100" in four or "drug_leaflets +0.100" in four
    assert "**e5-small (full) static (model2vec)**: meets the static target" in text and "90% of the teacher" in text
    assert "## drug_leaflets" in text and "| e5-small 6-layer student Turkish-trimmed" in text
    assert "Test CPU (avx2, 2 threads), measured 2026-11-26" in text


def test_quality_loss_and_slow_static_are_flagged():
    text = students.render(records(student_ndcg=0.75, static_p50=0.9), CAST)
    assert "6-layer student Turkish-trimmed** [onnx-int8]: does not meet" in text
    assert "query p50 0.90 ms (target ≤ 0.5) ✗" in text


def test_no_students_no_report(tmp_path):
    only_base = [r for r in records() if r.model in (CAST.bm25, CAST.base)]
    assert students.render(only_base, CAST) is None
    results.write(only_base, tmp_path / "results.json")
    assert students.write_for(tmp_path, MODELS) == []


def test_a_corpus_adapted_static_model_says_so_beside_its_verdict():
    name = "e5-small (full) static, corpus-tuned"
    text = students.render(records() + [rec(name, "numpy-fp32", t, 0.72, latency_p50_ms=0.2) for t in TASKS],
                           CAST, {name: "drug_leaflets"})
    line = next(line for line in text.splitlines() if line.startswith(f"- **{name}**"))
    assert "meets the static target" in line and "drug_leaflets 90% of the teacher" in line
    assert "adapted to drug_leaflets' passages" in line
    plain = next(line for line in text.splitlines() if line.startswith("- **e5-small (full) static (model2vec)**"))
    assert "adapted" not in plain


def test_which_static_models_are_corpus_adapted_comes_from_training_json(tmp_path):
    import json

    (tmp_path / "training.json").write_text(json.dumps({"e5-small static, corpus-tuned": {"ict_pairs": 40},
                                                        "e5-small (full) static (model2vec)": {}}), encoding="utf-8")
    results.write(records() + [rec("e5-small static, corpus-tuned", "numpy-fp32", t, 0.72, latency_p50_ms=0.2)
                               for t in TASKS], tmp_path / "results.json")
    text = students.write_for(tmp_path, MODELS)[0].read_text(encoding="utf-8")
    line = next(l for l in text.splitlines() if l.startswith("- **e5-small static, corpus-tuned**"))
    assert "adapted to drug_leaflets' passages without its questions" in line
    plain = next(l for l in text.splitlines() if l.startswith("- **e5-small (full) static (model2vec)**"))
    assert "adapted" not in plain


def test_speedup_is_only_claimed_against_a_base_timed_on_a_machine_of_the_same_speed():
    rows = records()
    for r in rows:
        r.threads, r.cpu, r.peak_gflops = 2, "AMD EPYC", 115.0
        if r.model == CAST.base:
            r.peak_gflops = 186.7  # timed on a faster machine: no ratio against it
    md = students.render(rows, CAST)
    line = next(line for line in md.splitlines() if line.startswith("- **e5-small 6-layer student Turkish-trimmed**"))
    assert "passages/s: not timed on the same machine as the base" in line and "does not meet" in line
