"""The corpus-size sweep (bench scale): distractors, nested corpora, the index/precision backends, the records and
the report. Tiny task, tiny random model, BM25; no real model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.data import distractors as dx
from bench.errors import BenchError
from tests.conftest import TINY_DOCS, bm25_and_tiny, write_beir

TASK_TEXTS = [f"{t}\n{x}" for t, x in TINY_DOCS.values()]
OTHER = [
    "Ankara Türkiye'nin başkentidir ve İç Anadolu Bölgesi'nde yer alır. Şehirde birçok üniversite bulunur. "
    "Kışları soğuk ve karlı geçer.",
    "Kahve Osmanlı döneminde İstanbul'a gelmiş ve kısa sürede yayılmıştır. Kahvehaneler sohbet yerleri olmuştur. "
    "Türk kahvesi cezvede pişirilir.",
    "Karadeniz kıyısında yağış yıl boyunca boldur. Bölgede çay ve fındık yetiştirilir. Yaylalar yazın serindir.",
]


def test_a_distractor_holding_a_task_sentence_is_dropped_and_counted():
    leaked = "Haber metni burada başlıyor ve devam ediyor. " + TINY_DOCS["spor-1"][1] + " Son cümle de burada yer alır."
    stream = dx.build(TASK_TEXTS, [dx.Source("news", OTHER + [leaked])])
    assert stream.contaminated == 1
    assert leaked not in stream.real and len(stream.real) == len(OTHER)
    keys = dx.task_sentence_keys(TASK_TEXTS)
    assert not any(dx.contains_task_sentence(t, keys) for t in stream.take(200))


def test_the_sentence_check_ignores_case_and_spacing():
    keys = dx.task_sentence_keys(TASK_TEXTS)
    shouted = "Bir giriş cümlesi yazdık buraya. " + TINY_DOCS["cografya-1"][1].upper().replace(" ", "  ")
    assert dx.contains_task_sentence(shouted, keys)


def test_the_memoised_sentence_check_answers_as_the_plain_one():
    """contains_task_sentence keeps each piece's key (the stream repeats a few thousand sentences a million times);
    it must answer as the definition does, on texts that do and do not hold a task sentence, seen once or again."""
    import random

    keys = dx.task_sentence_keys(TASK_TEXTS)
    pieces = [s for t in TASK_TEXTS + OTHER for s in dx.sentences(t)] + ["", "...", "Dikkat!", "a\nb"]
    rng = random.Random(0)
    texts = [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) for _ in range(400)]
    texts += [t.upper() for t in texts[:50]] + ["", "   ", "\n\n"]
    for text in texts + texts:
        plain = any(dx.sentence_key(s) in keys for s in dx.sentences(text))
        assert dx.contains_task_sentence(text, keys) == plain
    assert any(dx.contains_task_sentence(t, keys) for t in texts)
    assert not all(dx.contains_task_sentence(t, keys) for t in texts)


def test_distractor_sets_are_nested_seeded_and_counted_as_synthetic():
    a = dx.build(TASK_TEXTS, [dx.Source("news", OTHER)])
    b = dx.build(TASK_TEXTS, [dx.Source("news", OTHER)])
    small, large = a.take(20), b.take(60)
    assert small == large[:20]
    assert len(set(large)) == 60  # no passage twice
    assert a.n_synthetic(20) == 20 - len(OTHER)
    assert dx.build(TASK_TEXTS, [dx.Source("news", OTHER)], seed=1).take(20)[len(OTHER):] != small[len(OTHER):]


def test_a_distractor_folder_without_text_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(BenchError, match="no usable text"):
        dx.folder_source(tmp_path / "empty")
    with pytest.raises(BenchError, match="no such file"):
        dx.folder_source(tmp_path / "missing")


# --- index and precision backends -------------------------------------------------------------------------------------


def _unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_fp32_is_the_numpy_ranking():
    from bench.index import build

    v, q = _unit_rows(5000, 24), _unit_rows(7, 24, seed=1)
    scores, ids = build("exact", v, "fp32").search(q, 10)
    want = np.argsort(-(q @ v.T), axis=1, kind="stable")[:, :10]
    assert (ids == want).all()
    assert np.allclose(scores, np.take_along_axis(q @ v.T, want, 1), atol=1e-5)


def test_int8_codes_are_sentence_transformers_codes():
    import faiss
    from sentence_transformers.util.quantization import quantize_embeddings

    from bench.index import build

    v = _unit_rows(600, 32)
    idx = build("exact", v, "int8")
    stored = faiss.vector_to_array(idx.faiss.codes).reshape(len(v), -1)
    assert (stored == quantize_embeddings(v, "uint8", ranges=idx.q.ranges)).all()
    assert idx.nbytes / len(v) < 40  # one byte per dimension, plus the ranges


@pytest.mark.parametrize("index", ["exact", "hnsw"])
def test_every_precision_finds_the_near_duplicates(index):
    from bench.index import PRECISIONS, build, supports
    from bench.scale_rows import ann_recall

    v = _unit_rows(2000, 32)
    q = v[:20] + 0.05 * _unit_rows(20, 32, seed=3)
    exact = build("exact", v, "fp32").search(q, 10)[1]
    recalls = {p: ann_recall(build(index, v, p).search(q, 10)[1], exact, 1) for p in PRECISIONS if supports(index, p)}
    assert recalls["fp32"] >= 0.95 and recalls["int8"] >= 0.9 and recalls["int8+rescore"] >= 0.95
    assert recalls["binary+rescore"] >= recalls["binary"]
    assert all(r > 0.5 for r in recalls.values()), recalls


def test_ivfpq_recall_against_exact_and_its_bytes_per_vector():
    """IVF-PQ on a tiny corpus: near-duplicate questions find their passage, rescoring recovers what the codes lose,
    and a vector costs its PQ code (m sub-vectors x nbits) plus its id, far below fp32's 4 bytes per dimension."""
    from bench.index import build
    from bench.index import ivfpq
    from bench.scale_rows import ann_recall

    v = _unit_rows(4000, 32)
    q = v[:40] + 0.05 * _unit_rows(40, 32, seed=3)
    exact = build("exact", v, "fp32").search(q, 10)[1]
    idx = build("ivfpq", v, "pq")
    assert (idx.nlist, idx.m, idx.nbits, idx.nprobe) == (ivfpq.cells(4000), 8, 6, 8)
    plain = ann_recall(idx.search(q, 10)[1], exact, 1)
    idx.rescoring = True  # as the sweep reuses one index for its +rescore row
    rescored = ann_recall(idx.search(q, 10)[1], exact, 1)
    assert rescored >= 0.95 and rescored >= plain > 0.5
    scores, ids = build("ivfpq", v, "pq+rescore").search(q, 10)
    assert ann_recall(ids, exact, 10) > 0.5 and (np.diff(scores, axis=1) <= 0).all()
    code = idx.m * idx.nbits / 8
    tables = 4 * 32 * (idx.nlist + 2 ** idx.nbits)  # the cells' centroids and the sub-vectors' codebooks, fp32
    assert code + 8 <= idx.nbytes / len(v) < code + 8 + (tables + 4096) / len(v)  # codes, ids, tables, headers
    assert idx.nbytes / len(v) < 4 * 32 / 4


def test_ivfpq_on_a_corpus_smaller_than_its_cells_and_codebooks():
    from bench.index import build

    v = _unit_rows(30, 16)
    scores, ids = build("ivfpq", v, "pq+rescore").search(v[:3], 5)
    assert ids.shape == (3, 5) and (ids[:, 0] == [0, 1, 2]).all()


def test_unknown_index_or_precision_is_bad_input():
    from bench.index import build

    with pytest.raises(BenchError, match="unknown index 'ivf'"):
        build("ivf", _unit_rows(10, 4))
    with pytest.raises(BenchError, match="unknown precision 'fp8'"):
        build("exact", _unit_rows(10, 4), "fp8")
    with pytest.raises(BenchError, match="index 'ivfpq' does not store 'fp32'"):
        build("ivfpq", _unit_rows(10, 4), "fp32")
    with pytest.raises(BenchError, match="index 'exact' does not store 'pq'"):
        build("exact", _unit_rows(10, 4), "pq")


@pytest.mark.parametrize("argv,expect", [
    (["--index", "ivf"], "--index: unknown index 'ivf' (known: exact, hnsw, ivfpq)"),
    (["--index", "ivfpq", "--precision", "fp32", "int8"], "--precision: index 'ivfpq' takes pq, pq+rescore"),
    (["--index", "exact", "--precision", "pq"], "--precision: index 'exact' takes fp32, int8"),
    (["--precision", "fp8"], "--precision: unknown precision 'fp8'"),
])
def test_bad_index_or_precision_on_the_command_line_is_one_line_exit_2(sweep, capsys, argv, expect):
    from bench.cli import main

    rc = main(["scale", "--task", sweep["task"], "--models", sweep["models"], "--sizes", "40", "--out",
               sweep["out"], "--distractors", *sweep["distractor_dirs"]] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err
    assert not Path(sweep["out"], "scale.json").exists()


# --- the sweep -------------------------------------------------------------------------------------------------------


@pytest.fixture
def sweep(tmp_path, monkeypatch, tiny_model_dir):
    """A tiny task alone in its task folder (no other task to draw from), a folder of other Turkish text, and a
    registry of BM25 and the tiny model."""
    tasks = tmp_path / "tasks"
    write_beir(tasks / "tiny")
    (tasks / "tiny.yaml").write_text("name: tiny\nformat: beir\npath: tiny\n", encoding="utf-8")
    monkeypatch.setenv("BENCH_TASKS_DIR", str(tasks))
    news = tmp_path / "news"
    news.mkdir()
    for i, text in enumerate(OTHER):
        (news / f"{i}.txt").write_text(text, encoding="utf-8")
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + bm25_and_tiny(tiny_model_dir, "    variants: [torch-fp32]\n"), encoding="utf-8")
    return {"task": "tiny", "models": str(models), "distractor_dirs": [str(news)], "out": str(tmp_path / "out")}


def test_scale_writes_records_report_and_plots(sweep):
    from bench.scale import scale

    records = scale(sizes=[9, 40], precisions=["fp32", "binary+rescore"], **sweep)
    out = Path(sweep["out"])
    assert json.loads((out / "scale.json").read_text(encoding="utf-8")) == records
    for field in ("task", "model", "variant", "size", "index", "precision", "ndcg_at_10", "ndcg_ci_low",
                  "ndcg_ci_high", "recall_at_100", "ann_recall_at_10", "latency_p50_ms", "build_seconds",
                  "bytes_per_passage", "peak_mb", "synthetic_share", "code_version", "task_fingerprint", "cpu",
                  "threads"):
        assert all(field in r for r in records), field
    bm25 = [r for r in records if r["model"] == "bm25"]
    dense = [r for r in records if r["model"] == "tiny"]
    assert sorted(r["size"] for r in bm25) == [9, 40]
    assert len(dense) == 2 * 2 * 2  # sizes x indexes x precisions
    assert all(r["ann_recall_at_10"] is None for r in dense if (r["index"], r["precision"]) == ("exact", "fp32"))
    assert all(0 <= r["ann_recall_at_10"] <= 1 for r in dense if r["precision"] != "fp32" or r["index"] != "exact")
    share = {r["size"]: r["synthetic_share"] for r in bm25}
    assert share[9] == 0 and share[40] == round((40 - 6 - len(OTHER)) / 40, 5)
    md = (out / "scale.md").read_text(encoding="utf-8")
    assert "Index and precision per size" in md and "tiny [torch-fp32]" in md
    assert (out / "scale-tiny-ndcg.png").stat().st_size > 0 and (out / "scale-tiny-latency.png").is_file()


def test_ivfpq_rows_beside_exact_and_defaults_leave_out_an_index_without_its_precision(sweep):
    from bench.scale import scale

    records = scale(sizes=[40], indexes=["exact", "ivfpq"], precisions=["fp32", "pq", "pq+rescore"],
                    only=["tiny"], **sweep)
    rows = {(r["index"], r["precision"]): r for r in records}
    assert set(rows) == {("exact", "fp32"), ("ivfpq", "pq"), ("ivfpq", "pq+rescore")}
    assert all(0 <= rows[k]["ann_recall_at_10"] <= 1 and rows[k]["bytes_per_passage"] > 0
               for k in (("ivfpq", "pq"), ("ivfpq", "pq+rescore")))
    md = (Path(sweep["out"]) / "scale.md").read_text(encoding="utf-8")
    assert "| ivfpq " in md
    again = scale(sizes=[40], precisions=["fp32"], only=["tiny"], **sweep)  # default indexes: ivfpq has no fp32
    assert {r["index"] for r in again} == {"exact", "hnsw", "ivfpq"} and len(again) == 4


def test_an_interrupted_sweep_resumes_from_the_cache(sweep, monkeypatch):
    from bench.models import encoders
    from bench.scale import passage_vectors

    entry = next(e for e in __import__("bench.models.registry", fromlist=["x"]).load_registry(sweep["models"])
                 if e.name == "tiny")
    candidate = encoders.load(entry, "torch-fp32")
    texts = [f"metin {i} " + OTHER[i % 3] for i in range(80)]
    calls, crash = [], [True]
    real = candidate.embed

    def flaky(batch, role):
        calls.append(len(batch))
        if crash[0] and len(calls) == 2:
            raise RuntimeError("killed mid-run")
        return real(batch, role)

    candidate.embed = flaky
    with pytest.raises(RuntimeError, match="killed"):
        passage_vectors(candidate, texts, progress=False)
    done = calls[0]
    calls.clear()
    crash[0] = False
    vectors = passage_vectors(candidate, texts, progress=False)
    assert sum(calls) == len(texts) - done  # the first batch was kept, nothing else was trusted
    candidate.embed = real
    assert np.allclose(vectors, passage_vectors(candidate, texts, progress=False))


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "3"], "smaller than task 'tiny'"),
    (["--sizes", "20", "--index", "annoy"], "unknown index 'annoy'"),
    (["--sizes", "20", "--precision", "int4"], "unknown precision 'int4'"),
])
def test_bad_sweep_input_is_one_line_and_exit_2(sweep, capsys, argv, message):
    from bench.cli import main

    code = main(["scale", "--task", "tiny", "--models", sweep["models"], "--only", "bm25", "--out", sweep["out"],
                 "--distractors", *sweep["distractor_dirs"], *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and message in err and "\n" not in err


def test_an_empty_distractor_folder_is_bad_input(sweep, tmp_path, capsys):
    from bench.cli import main

    (tmp_path / "nothing").mkdir()
    code = main(["scale", "--task", "tiny", "--sizes", "20", "--models", sweep["models"], "--only", "bm25",
                 "--out", sweep["out"], "--distractors", str(tmp_path / "nothing")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no usable text" in err and "\n" not in err


def test_recommendation_is_the_cheapest_row_not_worse_than_exact():
    from bench.reports.scale_report import recommendations

    qids = [f"q{i}" for i in range(60)]
    base = {"task": "t", "model": "m", "variant": "v", "size": 1000, "ann_recall_at_10": 1.0}
    exact = {**base, "index": "exact", "precision": "fp32", "ndcg_at_10": 0.8, "bytes_per_passage": 400,
             "latency_p50_ms": 1.0, "per_query_ndcg": {q: 0.8 for q in qids}}
    tied = {**base, "index": "hnsw", "precision": "int8", "ndcg_at_10": 0.8, "bytes_per_passage": 200,
            "latency_p50_ms": 0.5, "per_query_ndcg": {q: 0.8 for q in qids}}
    worse = {**base, "index": "exact", "precision": "binary", "ndcg_at_10": 0.2, "bytes_per_passage": 13,
             "latency_p50_ms": 0.1, "per_query_ndcg": {q: 0.2 for q in qids}}
    (rec,) = recommendations([exact, tied, worse])
    assert (rec["index"], rec["precision"]) == ("hnsw", "int8")
    pq = {**base, "index": "ivfpq", "precision": "pq+rescore", "ndcg_at_10": 0.8, "bytes_per_passage": 33,
          "latency_p50_ms": 0.2, "per_query_ndcg": {q: 0.8 for q in qids}}
    (rec,) = recommendations([exact, tied, worse, pq])
    assert (rec["index"], rec["precision"]) == ("ivfpq", "pq+rescore")


def test_the_report_says_when_rows_were_measured_on_different_question_sets():
    from bench.reports.scale_report import markdown

    row = {"task": "t", "variant": "v", "size": 1000, "index": "exact", "precision": "fp32", "ndcg_at_10": 0.5,
           "ndcg_ci_low": 0.4, "ndcg_ci_high": 0.6, "recall_at_100": 0.9, "ann_recall_at_10": None,
           "latency_p50_ms": 1.0, "build_seconds": 0.0, "bytes_per_passage": 400, "peak_mb": 100,
           "synthetic_share": 0.0}
    old = {**row, "model": "a", "n_questions": 237, "task_fingerprint": "4bf14ee4db5a"}
    new = {**row, "model": "b", "n_questions": 272, "task_fingerprint": "948a794a9802"}
    assert "Question sets differ" not in markdown([old])
    md = markdown([old, new])
    assert "237 questions (task 4bf14ee4): a [v]; 272 questions (task 948a794a): b [v]" in md


def test_centring_keeps_the_ranking_and_rescues_sign_bits():
    """Vectors that share one dominant direction (as a static model's do): sign bits of the raw vectors say almost
    nothing; centred on the passages' mean they find most of exact search's top 10, and exact search is unchanged."""
    from bench.index import build
    from bench.scale_rows import ann_recall

    v = _unit_rows(3000, 48) * 0.3 + 1.0
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[:30] + 0.02 * _unit_rows(30, 48, seed=5)
    truth = np.argsort(-(q @ v.T), axis=1, kind="stable")[:, :10]
    scores, ids = build("exact", v, "fp32").search(q, 10)
    assert ann_recall(ids, truth) >= 0.99  # ties may swap in the last bits
    assert np.allclose(np.sort(scores, axis=1), np.sort(np.take_along_axis(q @ v.T, truth, 1), axis=1), atol=1e-4)
    raw_bits = np.packbits(v > 0, axis=1)
    assert len(np.unique(raw_bits, axis=0)) == 1  # uncentred, every passage has the same sign bits
    for index in ("exact", "hnsw"):  # each question's near-duplicate comes first
        assert ann_recall(build(index, v, "binary+rescore").search(q, 10)[1], truth, k=1) >= 0.9


def test_engine_ray_hands_the_missing_raw_passages_to_the_engine(sweep, monkeypatch):
    """--engine ray: bench.models.engine.encode_passages gets the uncached passages as written (it adds the prefix
    itself) with the engine and address; the sweep caches what comes back like the local path's vectors."""
    from bench.models import encoders, engine, registry
    from bench.scale import passage_vectors

    entry = next(e for e in registry.load_registry(sweep["models"]) if e.name == "tiny")
    candidate = encoders.load(entry, "torch-fp32")
    texts = [f"metin {i} " + OTHER[i % 3] for i in range(40)]
    seen = []

    def fake(entry_, variant, batch, engine="local", address=None, **_):
        seen.append((entry_.name, variant, engine, address, list(batch)))
        return candidate.embed(candidate.prepare(batch, "passage"), "passage")

    monkeypatch.setattr(engine, "encode_passages", fake)
    remote = passage_vectors(candidate, texts, engine="ray", address="10.0.0.1:6379", progress=False)
    assert {s[:4] for s in seen} == {("tiny", "torch-fp32", "ray", "10.0.0.1:6379")}
    assert sorted(t for s in seen for t in s[4]) == sorted(texts)
    seen.clear()
    assert np.allclose(passage_vectors(candidate, texts, progress=False), remote) and not seen  # cached
