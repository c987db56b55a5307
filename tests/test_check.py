import json

from bench.measure import check
from bench import cli


def test_gate_passes_then_catches_a_drop_and_a_schema_change(tmp_path, tiny_registry, tiny_task, monkeypatch, capsys):
    monkeypatch.setattr(check, "FAST", [("bm25", "bm25s"), ("tiny", "onnx-int8")])
    monkeypatch.setattr(check, "TASK", str(tiny_task))
    baseline = tmp_path / "baseline.json"
    assert cli.main(["check", "--baseline", str(baseline), "--models", str(tiny_registry), "--write"]) == 0
    assert cli.main(["check", "--baseline", str(baseline), "--models", str(tiny_registry)]) == 0

    data = json.loads(baseline.read_text(encoding="utf-8"))
    data["records"][0]["ndcg_at_10"] += 0.05  # as if the code had got worse since the baseline
    data["schema"].append("a_field_other_tools_read")
    baseline.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["check", "--baseline", str(baseline), "--models", str(tiny_registry)]) == 1
    err = capsys.readouterr().err
    assert "bm25 [bm25s] ndcg_at_10 fell by 0.0500" in err
    assert "results schema changed: removed ['a_field_other_tools_read']" in err


def test_repo_baseline_matches_the_current_schema():
    data = json.loads((check.Path(__file__).parent.parent / "reports" / "baseline.json").read_text(encoding="utf-8"))
    assert data["schema"] == check.schema() and data["task"] == "tr_mini_wiki"
    assert {(r["model"], r["variant"]) for r in data["records"]} == set(check.FAST)
