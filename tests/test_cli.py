import json

import pytest

from bench import cli


def run(args):
    return cli.main([str(a) for a in args])


@pytest.mark.slow
def test_run_scores_available_candidates_and_reports_the_rest(tmp_path, tiny_registry, tiny_task, capsys):
    out = tmp_path / "reports"
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out]) == 0
    records = json.loads((out / "results.json").read_text(encoding="utf-8"))
    by_model = {r["model"]: r for r in records if r["variant"] in ("bm25s", "torch-fp32")}
    assert set(by_model) == {"bm25", "tiny", "hub-only", "broken"}
    tiny = {r["variant"]: r for r in records if r["model"] == "tiny"}
    assert set(tiny) == {"torch-fp32", "onnx-fp32", "onnx-int8"}
    assert all(r["status"] == "ok" for r in tiny.values())
    assert tiny["torch-fp32"]["ndcg_delta_vs_fp32"] == 0
    assert tiny["onnx-fp32"]["ndcg_delta_vs_fp32"] == pytest.approx(0, abs=0.02)
    for r in list(tiny.values()) + [by_model["bm25"]]:
        for key in ("latency_p50_ms", "latency_p95_ms", "throughput_per_s", "load_seconds", "peak_rss_mb", "threads"):
            assert r[key] is not None and r[key] > 0, (r["variant"], key)
    for key in ("task", "model", "variant", "status", "reason", "ndcg_at_10", "mrr_at_10", "recall_at_1",
                "recall_at_5", "recall_at_10", "n_queries", "n_docs", "encode_seconds", "params", "disk_bytes"):
        assert all(key in r for r in records), key
    assert by_model["bm25"]["status"] == "ok" and by_model["tiny"]["status"] == "ok"
    assert by_model["tiny"]["n_queries"] == 6 and by_model["tiny"]["n_docs"] == 6
    assert by_model["hub-only"]["status"] == "skipped" and "hf download" in by_model["hub-only"]["fix"]
    assert by_model["broken"]["status"] == "failed" and by_model["broken"]["reason"]
    md = (out / "tiny.md").read_text(encoding="utf-8")
    assert "| bm25" in md and "baseline" in md and "hub-only" in md and "broken" in md
    details = (out / by_model["tiny"]["details"]).read_text(encoding="utf-8").splitlines()
    assert len(details) == 6 and "gold" in json.loads(details[0])


@pytest.mark.slow
def test_report_rebuilds_from_results_alone(tmp_path, tiny_registry, tiny_task):
    out = tmp_path / "reports"
    run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out, "--only", "bm25"])
    (out / "tiny.md").unlink()
    assert run(["report", "--out", out]) == 0
    assert "bm25" in (out / "tiny.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_rerun_keeps_other_results(tmp_path, tiny_registry, tiny_task):
    out = tmp_path / "reports"
    run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out, "--only", "bm25"])
    run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out, "--only", "tiny", "--no-speed",
         "--variants", "torch-fp32"])
    models = {r["model"] for r in json.loads((out / "results.json").read_text(encoding="utf-8"))}
    assert models == {"bm25", "tiny"}


def test_bad_registry_exits_2_with_one_line(tmp_path, tiny_task, capsys):
    bad = tmp_path / "m.yaml"
    bad.write_text("models:\n  - {name: a, kind: magic, loader: bm25, source: x}\n", encoding="utf-8")
    assert run(["run", "--models", bad, "--tasks", tiny_task, "--out", tmp_path / "o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "field 'kind' is 'magic'" in err[0]


@pytest.mark.slow
def test_bad_task_data_is_reported_and_other_tasks_still_run(tmp_path, tiny_registry, tiny_task, capsys):
    broken = tmp_path / "broken.yaml"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "qrels").mkdir()
    (tmp_path / "b" / "corpus.jsonl").write_text('{"_id": "d", "text": "x"}\n', encoding="utf-8")
    (tmp_path / "b" / "queries.jsonl").write_text('{"_id": "q", "text": "y"}\n', encoding="utf-8")
    (tmp_path / "b" / "qrels" / "test.tsv").write_text("q\tnowhere\t1\n", encoding="utf-8")
    broken.write_text("name: broken\nformat: beir\npath: b\n", encoding="utf-8")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, broken, "--out", out, "--only", "bm25"]) == 2
    assert "column corpus-id names no document" in capsys.readouterr().err
    recs = {r["task"]: r for r in json.loads((out / "results.json").read_text(encoding="utf-8"))}
    assert recs["tiny"]["status"] == "ok" and "broken" not in recs  # bad input is not a result


def test_list_shows_offline_status(tiny_registry, capsys):
    assert run(["list", "--models", tiny_registry]) == 0
    out = capsys.readouterr().out
    assert "available" in out and "skipped" in out and "hf download someone/not-downloaded-model" in out


def test_inspect_prints_ranked_paragraphs_with_scores(tiny_registry, tiny_task, capsys):
    assert run(["inspect", "--models", tiny_registry, "--model", "bm25", "--task", tiny_task,
                "--query", "Türkiye'nin en büyük gölü hangisidir?", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "gold: cografya-1"
    assert out[2].startswith("*  1") and "cografya-1" in out[2]
    assert len(out) == 5
