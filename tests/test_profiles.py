"""Profiles: named shortlists of candidates declared in models.yaml (`make bench` runs 'default', the CI gate 'gate')."""

import json

import pytest

from bench import cli, runner
from bench.errors import BenchError
from bench.models import registry
from conftest import REPO


def _with_profiles(path, text: str):
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return path


PROFILES = """profiles:
  default:
    description: the shortlist
    entries: ["bm25", "tiny [onnx-int8]"]
    trained: built
  gate:
    task: {task}
    entries: ["bm25 [bm25s]", "tiny [torch-fp32]"]
"""


def test_a_profile_names_entries_and_variants(tiny_registry, tiny_task):
    _with_profiles(tiny_registry, PROFILES.format(task=tiny_task))
    profiles = registry.load_profiles(tiny_registry)
    assert profiles["default"].entries == [("bm25", None), ("tiny", "onnx-int8")]
    assert profiles["gate"].task == str(tiny_task)
    pairs = runner.select(tiny_registry, profile="default")
    assert [(e.name, v) for e, v in pairs] == [("bm25", "bm25s"), ("tiny", "onnx-int8")]


def test_a_profile_takes_trained_entries_only_once_built(tiny_registry, tiny_task, capsys):
    text = tiny_registry.read_text(encoding="utf-8") + """  - name: tiny trained
    kind: bi-encoder
    loader: sentence-transformers
    train: {recipe: contrastive, base: tiny, data: [thquad_train]}
"""
    tiny_registry.write_text(text, encoding="utf-8")
    _with_profiles(tiny_registry, PROFILES.format(task=tiny_task))
    pairs = runner.select(tiny_registry, profile="default")
    assert "tiny trained" not in {e.name for e, _ in pairs}
    assert "tiny trained" in capsys.readouterr().out  # said, not silently dropped


@pytest.mark.parametrize("profile, expected", [
    ('  default:\n    entries: ["nowhere"]\n', "profiles.default.entries[0]: no registry entry named 'nowhere'"),
    ('  default:\n    entries: ["bm25 [onnx-int8]"]\n', "profiles.default.entries[0]: 'bm25' has no variant 'onnx-int8'"),
    ('  default:\n    entries: []\n', "profiles.default: field 'entries'"),
    ('  default:\n    entries: ["bm25"]\n    trained: sometimes\n', "profiles.default: field 'trained'"),
    ('  default:\n    entries: ["bm25"]\n    colour: blue\n', "profiles.default: unknown field 'colour'"),
])
def test_a_bad_profile_is_a_one_line_error(tiny_registry, tiny_task, capsys, profile, expected):
    _with_profiles(tiny_registry, "profiles:\n" + profile)
    with pytest.raises(BenchError, match=str(tiny_registry)):
        registry.load_profiles(tiny_registry)
    assert cli.main(["run", "--models", str(tiny_registry), "--tasks", str(tiny_task), "--profile", "default",
                     "--out", str(tiny_task.parent / "o"), "--no-speed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_an_unknown_profile_is_named(tiny_registry, tiny_task, capsys):
    _with_profiles(tiny_registry, PROFILES.format(task=tiny_task))
    assert cli.main(["run", "--models", str(tiny_registry), "--tasks", str(tiny_task), "--profile", "quick",
                     "--out", str(tiny_task.parent / "o"), "--no-speed"]) == 2
    err = capsys.readouterr().err
    assert "--profile: no profile 'quick'" in err and "default, gate" in err


def test_run_with_a_profile_runs_only_its_candidates(tiny_registry, tiny_task):
    _with_profiles(tiny_registry, PROFILES.format(task=tiny_task))
    out = tiny_task.parent / "o"
    assert cli.main(["run", "--models", str(tiny_registry), "--tasks", str(tiny_task), "--profile", "default",
                     "--out", str(out), "--no-speed"]) == 0
    recs = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {(r["model"], r["variant"]) for r in recs} == {("bm25", "bm25s"), ("tiny", "onnx-int8")}


def test_the_gate_scores_the_gate_profile(tiny_registry, tiny_task, tmp_path):
    from bench.measure import check

    _with_profiles(tiny_registry, PROFILES.format(task=tiny_task))
    baseline = tmp_path / "baseline.json"
    check.write_baseline(baseline, tiny_registry)
    data = json.loads(baseline.read_text(encoding="utf-8"))
    assert data["task"] == str(tiny_task)
    assert [(r["model"], r["variant"]) for r in data["records"]] == [("bm25", "bm25s"), ("tiny", "torch-fp32")]


def test_the_repo_registry_declares_the_default_and_gate_profiles():
    profiles = registry.load_profiles(REPO / "models.yaml")
    assert profiles["default"].trained == "built"
    base = json.loads((REPO / "reports" / "baseline.json").read_text(encoding="utf-8"))
    assert {(r["model"], r["variant"]) for r in base["records"]} == set(profiles["gate"].entries)
    assert base["task"] == profiles["gate"].task
