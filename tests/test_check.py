import json

import pytest

from bench.measure import check
from bench.models import registry
from bench import cli
from conftest import REPO, gate_profile


@pytest.mark.slow
def test_gate_passes_then_catches_a_drop_and_a_schema_change(tmp_path, tiny_registry, tiny_task, capsys):
    gate_profile(tiny_registry, tiny_task, ["bm25 [bm25s]", "tiny [onnx-int8]"])
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
    gate = registry.load_profiles(REPO / "models.yaml")["gate"]
    assert {(r["model"], r["variant"]) for r in data["records"]} == set(gate.entries)


def _gate(tmp_path, tiny_registry, tiny_task, monkeypatch):
    gate_profile(tiny_registry, tiny_task, ["bm25 [bm25s]"])
    baseline = tmp_path / "baseline.json"
    assert cli.main(["check", "--baseline", str(baseline), "--models", str(tiny_registry), "--write"]) == 0
    return baseline, json.loads(baseline.read_text(encoding="utf-8"))



@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.update(records=[]), "field 'records' is missing or empty"),
    (lambda d: d["records"][0].update(ndcg_at_10=float("nan")), "field 'ndcg_at_10' is missing or not a finite number"),
    (lambda d: d["records"][0].pop("recall_at_5"), "field 'recall_at_5' is missing"),
    (lambda d: d["records"][0].pop("model"), "field 'model' is missing"),
    (lambda d: d.pop("task"), "field 'task' is missing"),
])
def test_a_baseline_that_checks_nothing_is_an_error(tmp_path, tiny_registry, tiny_task, monkeypatch, capsys, mutate,
                                                   expected):
    baseline, data = _gate(tmp_path, tiny_registry, tiny_task, monkeypatch)
    mutate(data)
    baseline.write_text(json.dumps(data), encoding="utf-8")  # NaN is written as the literal NaN, as json allows
    capsys.readouterr()
    assert cli.main(["check", "--baseline", str(baseline), "--models", str(tiny_registry)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and str(baseline) in err[0]


@pytest.mark.parametrize("record, expected", [
    ({"model": "no-such-model", "variant": "bm25s"}, "no-such-model [bm25s]: not in the registry"),
    ({"model": "bm25", "variant": "onnx-int9"}, "bm25 [onnx-int9]: unknown variant"),
    ({"model": "hub-only", "variant": "torch-fp32"}, "hub-only [torch-fp32]: could not be scored here"),
    ({"model": "broken", "variant": "torch-fp32"}, "broken [torch-fp32]: failed to score"),
])
def test_a_baseline_record_without_a_fresh_record_fails(tmp_path, tiny_registry, tiny_task, monkeypatch, capsys,
                                                        record, expected):
    baseline, data = _gate(tmp_path, tiny_registry, tiny_task, monkeypatch)
    data["records"].append({**data["records"][0], **record})
    baseline.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["check", "--baseline", str(baseline), "--models", str(tiny_registry)]) == 1
    assert expected in capsys.readouterr().err


def test_mteb_check_fails_when_nothing_was_compared(tiny_registry, tiny_task, capsys):
    assert cli.main(["mteb-check", "--task", str(tiny_task), "--models", str(tiny_registry), "--only", "hub-only"]) == 1
    assert "nothing was compared" in capsys.readouterr().err
