"""Provenance: records name their data, code and machine; caches are keyed by the code; results never mix data."""

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cli, provenance
from conftest import gate_profile
from bench.measure import results
from bench.measure.results import ResultRecord

REPO = Path(__file__).resolve().parent.parent


def run(args):
    return cli.main([str(a) for a in args])


def test_records_carry_task_fingerprint_code_version_and_machine(tmp_path, tiny_registry, tiny_task):
    out = tmp_path / "reports"
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out, "--only", "bm25", "tiny",
                "--variants", "bm25s", "torch-fp32", "--no-speed"]) == 0
    records = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len(records) == 2
    for r in records:
        assert len(r["task_fingerprint"]) == 16 and r["code_version"].startswith("0.1.0+")
        assert r["cpu"] and r["threads"] and "simd" in r
        assert set(r["task_files"]) == {"corpus.jsonl", "queries.jsonl", "test.tsv"}
    assert records[0]["task_fingerprint"] == records[1]["task_fingerprint"]
    md = (out / "tiny.md").read_text(encoding="utf-8")
    assert records[0]["task_fingerprint"] in md  # the leaderboard says which data it was computed on


def test_changed_task_data_is_refused_unless_replaced(tmp_path, tiny_registry, tiny_task, capsys):
    out = tmp_path / "reports"
    args = ["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out, "--only", "bm25", "--no-speed"]
    assert run(args) == 0
    first = json.loads((out / "results.json").read_text(encoding="utf-8"))[0]["task_fingerprint"]
    corpus = tiny_task.parent / "tiny" / "corpus.jsonl"
    corpus.write_text(corpus.read_text(encoding="utf-8").replace("Futbol on birer", "Futbol on bir"), encoding="utf-8")
    capsys.readouterr()
    assert run(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "task 'tiny'" in err[0] and "--replace" in err[0] and first in err[0]
    assert run(args + ["--replace"]) == 0
    records = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len(records) == 1 and records[0]["task_fingerprint"] != first


def _save_rows(path, worker, n):
    for i in range(n):
        rec = ResultRecord(task="t", model=f"m{worker}-{i}", variant="v", status="ok", ndcg_at_10=0.5,
                           task_fingerprint="f")
        results.save([rec], Path(path), {"t": "f"})


def test_concurrent_saves_into_one_file_keep_every_row(tmp_path):
    path = tmp_path / "results.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_save_rows, args=(str(path), w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert {r.model for r in results.read(path)} == {f"m{w}-{i}" for w in range(3) for i in range(15)}


def test_embedding_cache_key_changes_with_the_code(tmp_path, tiny_registry, monkeypatch):
    from bench.models import encoders, registry

    entry = {e.name: e for e in registry.load_registry(tiny_registry)}["tiny"]
    calls = []
    model = encoders.load(entry, "torch-fp32")
    real = model.embed
    model.embed = lambda texts, role: calls.append(len(texts)) or real(texts, role)
    model.encode(["Van Gölü tuzludur."], "passage")
    model.encode(["Van Gölü tuzludur."], "passage")
    assert calls == [1]  # the second call is served from the cache
    monkeypatch.setattr(encoders, "code_fingerprint", lambda *m: "0.1.0+changed")
    model.encode(["Van Gölü tuzludur."], "passage")
    assert calls == [1, 1]


def test_code_fingerprint_follows_the_source(tmp_path, monkeypatch):
    a = provenance.code_fingerprint("bench.models")
    assert a == provenance.code_fingerprint("bench.models")
    assert a != provenance.code_fingerprint("bench.reports")


def _check_with_package(pkg_root: Path, baseline: Path, models: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pkg_root), "BENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "bench", "check", "--baseline", str(baseline), "--models", str(models)],
                          capture_output=True, text=True, env=env, cwd=pkg_root)


@pytest.mark.slow
def test_a_broken_encoder_fails_the_gate_even_with_a_warm_cache(tmp_path, tiny_registry, tiny_task, monkeypatch):
    """The gate's embedding cache is keyed by the encoder code: a broken encoder cannot hide behind cached vectors."""
    gate_profile(tiny_registry, tiny_task, ["tiny [torch-fp32]"])
    baseline = tmp_path / "baseline.json"
    assert run(["check", "--baseline", baseline, "--models", tiny_registry, "--write"]) == 0  # warms the cache
    cache = Path(os.environ["BENCH_CACHE"])
    assert (cache / "embeddings.sqlite").stat().st_size > 0

    good, broken = tmp_path / "good", tmp_path / "broken"
    for root in (good, broken):
        shutil.copytree(REPO / "bench", root / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    enc = broken / "bench" / "models" / "encoders.py"
    src = enc.read_text(encoding="utf-8")
    needle = "return model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)"
    assert needle in src
    # Every text gets the same vector: all scores tie, as when pooling or the tokenizer breaks.
    enc.write_text(src.replace(needle, "return np.ones((len(texts), 32), np.float32)"), encoding="utf-8")

    ok = _check_with_package(good, baseline, tiny_registry, cache)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _check_with_package(broken, baseline, tiny_registry, cache)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "regression: tiny [torch-fp32]" in bad.stderr


def test_results_file_is_readable_by_others_like_any_report(tmp_path):
    old = os.umask(0o022)
    try:
        results.write([ResultRecord(task="t", model="m", variant="v", status="ok")], tmp_path / "results.json")
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644
