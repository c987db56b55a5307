"""`bench search` with any retrieving registry entry (lexical, hybrid, re-ranking pipelines) and a default picked
from the leaderboard of the task closest to the indexed folder."""

import json
import re

import numpy as np
import pytest

from bench import cli, search
from bench.models import encoders, registry
from bench.measure import results
from bench.errors import BenchError
from bench.measure.results import ResultRecord
from conftest import write_beir

HEALTH = {"s1": ("Diyabet", "Şeker hastalığında pankreas yeterli insülin üretemez ve kan şekeri yükselir."),
          "s2": ("Aşı", "Aşılar bağışıklık sistemine mikropları tanıtır ve hastalığa karşı koruma sağlar."),
          "s3": ("Tansiyon", "Yüksek tansiyon kalp ve böbrek hastalığı riskini artırır; tuz azaltılmalıdır.")}
SPORT = {"f1": ("Futbol", "Futbol on birer kişilik iki takım arasında oynanır ve maç doksan dakika sürer."),
         "f2": ("Basketbol", "Basketbolda potaya atılan şut uzaklığa göre iki ya da üç sayı kazandırır."),
         "f3": ("Voleybol", "Voleybolda file üzerinden topu karşı sahaya düşüren takım sayı kazanır.")}


@pytest.fixture
def registry_path(tiny_registry, tiny_cross_encoder_dir, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(tiny_registry.read_text(encoding="utf-8") + f"""
  - name: tiny-ce
    kind: cross-encoder
    loader: sentence-transformers
    source: {tiny_cross_encoder_dir}
  - name: bm25 then tiny-ce
    kind: pipeline
    loader: rerank
    stages: [bm25, tiny-ce]
    options: {{top_k: 3}}
  - name: hybrid
    kind: pipeline
    loader: hybrid
    stages: [bm25, tiny]
    options: {{fusion: rrf}}
""", encoding="utf-8")
    return path


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notlar.txt").write_text("Van Gölü Türkiye'nin en büyük gölüdür. Suyu sodalıdır.", encoding="utf-8")
    (folder / "spor.md").write_text("# Futbol\n\nBir futbol maçı doksan dakika sürer.", encoding="utf-8")
    return folder


def run(*args):
    return cli.main(["search", *[str(a) for a in args]])


def header(out: str) -> str:
    return out.strip().splitlines()[0]


def no_corpus_encoding(monkeypatch):
    def refuse(self, texts, role, progress=True):
        raise AssertionError("the corpus was encoded again at query time")

    monkeypatch.setattr(encoders.Dense, "encode", refuse)


def test_lexical_entry_indexes_without_vectors_and_prints_latency(docs, registry_path, tmp_path, monkeypatch, capsys):
    idx = tmp_path / "idx"
    no_corpus_encoding(monkeypatch)  # BM25 has nothing dense to encode, at index or at query time
    assert run("index", docs, "--models", registry_path, "--model", "bm25", "--index", idx) == 0
    manifest, chunks, vectors = search.load(idx)
    assert (manifest["model"], manifest["variant"]) == ("bm25", "bm25s") and vectors.shape == (len(chunks), 0)
    capsys.readouterr()
    assert run("query", "Van Gölü", "--index", idx, "--models", registry_path, "-k", "2") == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"bm25 \[bm25s\] · \d+\.\d ms: Van Gölü", header(out))
    assert "notlar.txt" in out.splitlines()[1]


def test_hybrid_stores_its_dense_part_and_queries_without_reencoding(docs, registry_path, tmp_path, monkeypatch, capsys):
    idx = tmp_path / "idx"
    assert run("index", docs, "--models", registry_path, "--model", "hybrid", "--index", idx) == 0
    manifest, chunks, vectors = search.load(idx)
    assert manifest["dense"] == [{"stage": "tiny [torch-fp32]", "dim": 32}] and vectors.shape == (len(chunks), 32)
    # The stored vectors are exactly what the candidate would index afresh: the query scores agree with a new index.
    entry = {e.name: e for e in registry.load_registry(registry_path)}["hybrid"]
    fresh = encoders.load(entry)
    texts = [f"{c.title}\n{c.text}" for c in chunks]
    want = fresh.search(fresh.index(texts), "Van Gölü")
    no_corpus_encoding(monkeypatch)
    cand = encoders.load(entry)
    got = cand.search(search.state(cand, manifest, chunks, vectors, idx), "Van Gölü")
    assert np.allclose(got, want)
    capsys.readouterr()
    assert run("query", "Van Gölü", "--index", idx, "--models", registry_path) == 0
    assert re.fullmatch(r"hybrid \[bm25s\+torch-fp32\] · \d+\.\d ms: Van Gölü", header(capsys.readouterr().out))


def test_rerank_pipeline_with_a_cross_encoder_and_the_rerank_flag(docs, registry_path, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert run("index", docs, "--models", registry_path, "--model", "bm25 then tiny-ce", "--index", idx) == 0
    assert search.load(idx)[2].shape[1] == 0  # a cross-encoder stores nothing: it reads passages at query time
    capsys.readouterr()
    assert run("query", "futbol maçı", "--index", idx, "--models", registry_path, "-k", "2") == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"bm25 then tiny-ce \[bm25s\+torch-fp32\] · \d+\.\d ms: futbol maçı", header(out))
    assert run("query", "futbol maçı", "--index", idx, "--models", registry_path, "--rerank", "tiny-ce") == 0
    assert re.fullmatch(r".* -> tiny-ce · \d+\.\d ms: futbol maçı", header(capsys.readouterr().out))


def test_a_cross_encoder_alone_is_refused_in_one_line(docs, registry_path, tmp_path, capsys):
    assert run("index", docs, "--models", registry_path, "--model", "tiny-ce", "--index", tmp_path / "idx") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cross-encoder" in err[0] and "--rerank" in err[0] and "'bm25 then tiny-ce'" in err[0]
    assert not (tmp_path / "idx").exists()


def test_dense_pipeline_reuses_unchanged_files(docs, registry_path, tmp_path, monkeypatch, capsys):
    idx = tmp_path / "idx"
    assert run("index", docs, "--models", registry_path, "--model", "hybrid", "--index", idx) == 0
    before = dict(zip((c.id for c in search.load(idx)[1]), search.load(idx)[2]))
    (docs / "notlar.txt").write_text("Erciyes Dağı Kayseri'dedir.", encoding="utf-8")
    encoded = []
    real = encoders.Dense.encode

    def probe(self, texts, role, progress=True):
        encoded.extend(texts)
        return real(self, texts, role, progress)

    monkeypatch.setattr(encoders.Dense, "encode", probe)
    capsys.readouterr()
    assert run("index", docs, "--models", registry_path, "--model", "hybrid", "--index", idx) == 0
    assert "indexed 1 files, reused 1" in capsys.readouterr().out
    assert encoded and all("Erciyes" in t for t in encoded)
    _, chunks, vectors = search.load(idx)
    kept = [(c.id, v) for c, v in zip(chunks, vectors) if c.source == "spor.md"]
    assert kept and all(np.array_equal(v, before[i]) for i, v in kept)


def test_an_index_from_before_pipelines_still_answers(docs, registry_path, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert run("index", docs, "--models", registry_path, "--model", "tiny", "--index", idx) == 0
    manifest = json.loads((idx / "manifest.json").read_text(encoding="utf-8"))
    del manifest["dense"]  # older indexes held one bi-encoder's vectors and did not say so
    (idx / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    capsys.readouterr()
    assert run("query", "göl", "--index", idx, "--models", registry_path) == 0
    assert header(capsys.readouterr().out).startswith("tiny [torch-fp32] · ")


# --- the default: the leaderboard's recommendation for the closest task ------------------------------------

N = 40


def ones(k):
    return {f"q{i:02d}": 1.0 if i < k else 0.0 for i in range(N)}


def row(task, model, variant, kind, k, p50):
    q = ones(k)
    return ResultRecord(task=task, model=model, variant=variant, status="ok", kind=kind, ndcg_at_10=sum(q.values()) / N,
                        latency_p50_ms=p50, per_query_ndcg=q)


@pytest.fixture
def leaderboard(tmp_path, monkeypatch):
    """Two tasks with different vocabularies and different recommendations under 50 ms."""
    tasks_dir = tmp_path / "tasks"
    for name, corpus in (("saglik", HEALTH), ("spor", SPORT)):
        first = next(iter(corpus))
        write_beir(tasks_dir / name, docs=corpus, queries={"q": ("soru", first)})
        (tasks_dir / f"{name}.yaml").write_text(f"name: {name}\nformat: beir\npath: {name}\n", encoding="utf-8")
    monkeypatch.setenv("BENCH_TASKS_DIR", str(tasks_dir))
    path = tmp_path / "results.json"
    results.write([
        # saglik: tiny is best but over 50 ms and significantly better than bm25; under 50 ms bm25 is the pick
        row("saglik", "bm25", "bm25s", "lexical", 30, 0.1), row("saglik", "tiny", "torch-fp32", "bi-encoder", 40, 80.0),
        row("saglik", "hybrid", "bm25s+torch-fp32", "pipeline", 10, 9.0),
        # spor: the hybrid pipeline is best, and significantly better than the cheaper rows
        row("spor", "bm25", "bm25s", "lexical", 10, 0.1), row("spor", "tiny", "torch-fp32", "bi-encoder", 12, 5.0),
        row("spor", "hybrid", "bm25s+torch-fp32", "pipeline", 38, 9.0),
        ResultRecord(task="spor", model="tiny-ce", variant="torch-fp32", status="skipped", kind="cross-encoder"),
    ], path)
    return path


def health_folder(tmp_path):
    folder = tmp_path / "saglik_docs"
    folder.mkdir()
    (folder / "not.txt").write_text("Diyabet hastalarında insülin ve kan şekeri ölçümü; tansiyon ve böbrek riski.",
                                    encoding="utf-8")
    return folder


def sport_folder(tmp_path):
    folder = tmp_path / "spor_docs"
    folder.mkdir()
    (folder / "mac.md").write_text("Basketbol maçı dört periyot sürer; takım şut atarak sayı kazanır.", encoding="utf-8")
    return folder


def model_line(out):
    return next(line for line in out.splitlines() if line.startswith("model: "))


def test_default_is_the_recommendation_for_the_closest_task(leaderboard, registry_path, tmp_path, capsys):
    args = ("--models", registry_path, "--results", leaderboard)
    assert run("index", health_folder(tmp_path), *args, "--index", tmp_path / "i1") == 0
    line = model_line(capsys.readouterr().out)
    assert line.startswith("model: bm25 [bm25s] (recommended for saglik under 50 ms in ")
    assert "cheapest row not significantly worse than the best" in line and "closest task" in line
    assert search.load(tmp_path / "i1")[0]["model"] == "bm25"
    assert run("index", sport_folder(tmp_path), *args, "--index", tmp_path / "i2") == 0
    assert model_line(capsys.readouterr().out).startswith("model: hybrid [bm25s+torch-fp32] (recommended for spor ")
    assert run("query", "basketbol", "--index", tmp_path / "i2", "--models", registry_path) == 0
    assert header(capsys.readouterr().out).startswith("hybrid [bm25s+torch-fp32] · ")


def test_task_and_budget_flags_choose_the_leaderboard_row(leaderboard, registry_path, tmp_path, capsys):
    args = ("--models", registry_path, "--results", leaderboard)
    health = health_folder(tmp_path)
    assert run("index", health, *args, "--task", "spor", "--index", tmp_path / "i1") == 0
    assert model_line(capsys.readouterr().out).startswith("model: hybrid [bm25s+torch-fp32] (recommended for spor ")
    assert run("index", health, *args, "--budget-ms", "100", "--index", tmp_path / "i2") == 0
    line = model_line(capsys.readouterr().out)
    assert line.startswith("model: tiny [torch-fp32] (recommended for saglik under 100 ms")
    assert run("index", health, *args, "--task", "nope", "--index", tmp_path / "i3") == 2
    err = capsys.readouterr().err.strip()
    assert "--task" in err and "nope" in err and "saglik" in err and "\n" not in err


def test_re_indexing_without_model_keeps_the_index_model(leaderboard, registry_path, tmp_path, capsys):
    health, idx = health_folder(tmp_path), tmp_path / "idx"
    assert run("index", health, "--models", registry_path, "--model", "hybrid", "--index", idx) == 0
    capsys.readouterr()
    assert run("index", health, "--models", registry_path, "--results", leaderboard, "--index", idx) == 0
    out = capsys.readouterr().out
    assert model_line(out).startswith("model: hybrid [bm25s+torch-fp32] (kept: the index") and "reused 1" in out


def test_fallbacks_are_stated(tmp_path, monkeypatch, leaderboard):
    folder = health_folder(tmp_path)
    names = {"bm25", "tiny", "hybrid"}
    fallback = ("tiny", "torch-fp32")
    model, variant, why = search.recommended_model(tmp_path / "none.json", folder, names, fallback=fallback)
    assert (model, variant) == fallback and "no leaderboard" in why
    with pytest.raises(BenchError, match="profile 'search'"):  # a registry without one: said, not a traceback
        search.recommended_model(tmp_path / "none.json", folder, names)
    # No task corpus can be read: the preferred order decides, and says so.
    monkeypatch.setenv("BENCH_TASKS_DIR", str(tmp_path / "empty"))
    rows = [row(t, "bm25", "bm25s", "lexical", 30, 0.1) for t in ("zeta", "xquad_tr", "drug_leaflets")]
    results.write(rows, tmp_path / "r.json")
    model, variant, why = search.recommended_model(tmp_path / "r.json", folder, names)
    assert (model, variant) == ("bm25", "bm25s") and "for drug_leaflets" in why and "no task corpus" in why
    # Nothing measured within the budget: stated, and the fallback.
    model, variant, why = search.recommended_model(leaderboard, folder, names, task="saglik", budget_ms=0.01,
                                                   fallback=fallback)
    assert (model, variant) == fallback and "under 0.01 ms" in why
