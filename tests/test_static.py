"""The static tier: sadedegel word vectors read out of a (fake, tiny) wheel, and model2vec distilled from the tiny
teacher. Both load offline through the registry and encode; bad input stops with one line and exit status 2."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.errors import BenchError, Unavailable
from bench.measure import timing
from bench.models import encoders, registry, static
from tests.conftest import TINY_DOCS, bm25_and_tiny, eval_tasks

VERSION = "0.0.1"
PASSAGES = [f"{title}. {text}" for title, text in TINY_DOCS.values()]


def _words() -> list[str]:
    from bench.data.convert import turkish_lower

    words = {w for p in PASSAGES for w in static._WORD.findall(turkish_lower(p))}
    return sorted(words | {"ilaç", "ankara", "!"})


def vocabulary_hdf5(words: list[str], dims: int = 16, seed: int = 0) -> bytes:
    """sadedegel's layout (see bench/models/static.py): group lower_ with word, vector, df, tf, has_vector."""
    import h5py

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(words), dims)).astype(np.float32)
    vectors[[i for i, w in enumerate(words) if not w.isalnum()]] = 0  # punctuation rows are zero in the real file
    df = rng.integers(1, 50, len(words))
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        g = f.create_group("lower_")
        g.attrs.update({"document_count": 100, "min_df": 1, "min_tf": 1, "size": len(words), "tokenizer": "icu",
                        "vector_size": dims})
        g["word"] = np.array([w.encode("utf-8") for w in words], dtype=object)
        g.create_dataset("word_", data=np.zeros(1))  # an extra dataset the loader must not mind
        g["vector"], g["df"], g["tf"] = vectors, df, df * 3
        g["has_vector"] = np.zeros(len(words), dtype=bool)
    return buf.getvalue()


def write_wheel(path: Path, member: bytes | None = None, name: str = static.WHEEL_MEMBER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("sadedegel/__init__.py", "")
        z.writestr(name, vocabulary_hdf5(_words()) if member is None else member)
    return path


@pytest.fixture
def wheel(tmp_path) -> Path:
    return static.wheels_dir() / f"sadedegel-{VERSION}-py3-none-any.whl"


@pytest.fixture
def sade_registry(tmp_path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(f"""models:
  - name: bm25
    kind: lexical
    loader: bm25
    source: bm25s
  - name: sade
    kind: bi-encoder
    loader: sadedegel
    source: sadedegel=={VERSION}
  - name: sade plain
    kind: bi-encoder
    loader: sadedegel
    source: sadedegel=={VERSION}
    options: {{stem: false, oov: false}}
""", encoding="utf-8")
    return path


def entry(models: Path, name: str):
    return {e.name: e for e in registry.load_registry(models)}[name]


def unit_rows(x: np.ndarray) -> bool:
    return np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)


# --- sadedegel --------------------------------------------------------------------------------------------


def test_sadedegel_loads_offline_and_ranks_by_shared_words(sade_registry, wheel):
    write_wheel(wheel)
    model = encoders.load(entry(sade_registry, "sade"))
    assert model.variant == "numpy-fp32" and model.params == len(_words()) * 16 and model.disk_bytes > 0
    docs = model.encode(PASSAGES, "passage", progress=False)
    assert docs.shape == (len(PASSAGES), 16) and unit_rows(docs)
    queries = ["Van Gölü neden tuzludur?", "Futbol maçı kaç dakika sürer?", "Pankreas insülin üretemez mi?"]
    best = (model.encode(queries, "query", progress=False) @ docs.T).argmax(axis=1)
    assert [list(TINY_DOCS)[i] for i in best] == ["cografya-1", "spor-1", "saglik-2"]


def test_sadedegel_fallbacks_apostrophe_stem_and_unknown_words(sade_registry, wheel):
    write_wheel(wheel)
    model = encoders.load(entry(sade_registry, "sade"))
    v = model.encode(["ilaç", "İLAÇLARINIZI", "Ankara'nın", "ankara", "Apranax", "apranax'ı", "Parol"], "query",
                     progress=False)
    cos = v @ v.T
    assert cos[0, 1] == pytest.approx(1, abs=1e-5)  # stem fallback: "ilaçlarınızı" -> "ilaç"
    assert cos[2, 3] == pytest.approx(1, abs=1e-5)  # before the apostrophe
    assert cos[4, 5] == pytest.approx(1, abs=1e-5)  # an unknown name matches itself, inflected or not
    assert abs(cos[4, 6]) < 0.9 and abs(cos[0, 4]) < 0.9
    plain = encoders.load(entry(sade_registry, "sade plain"))
    p = plain.embed(["İLAÇLARINIZI Apranax", "ilaç"], "query")
    assert not p[0].any() and p[1].any()  # no stem, no hashed vectors: nothing known in the first text


def test_sadedegel_missing_wheel_is_skipped_with_the_download_command(sade_registry, tiny_task, tmp_path, capsys):
    fix = f"pip download sadedegel=={VERSION} --no-deps -d {static.wheels_dir()}"
    with pytest.raises(Unavailable) as u:
        registry.check_available(entry(sade_registry, "sade"))
    assert u.value.fix == fix
    assert main(["list", "--models", str(sade_registry)]) == 0
    assert fix in capsys.readouterr().out
    out = tmp_path / "reports"
    assert main(["run", "--models", str(sade_registry), "--tasks", str(tiny_task), "--out", str(out),
                 "--no-speed"]) == 0
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text(encoding="utf-8"))}
    assert rows["sade"]["status"] == "skipped" and rows["sade"]["fix"] == fix
    assert rows["bm25"]["status"] == "ok"
    capsys.readouterr()
    # Asked for by name, the same missing wheel is an error: one line, exit status 2, the fix included.
    assert main(["inspect", "--models", str(sade_registry), "--model", "sade", "--task", str(tiny_task),
                 "--query", "Van Gölü"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fix in err[0]


@pytest.mark.parametrize("case", ["not a zip", "no member", "not hdf5", "no lower_ group"])
def test_sadedegel_corrupt_wheel_one_line_exit_2(sade_registry, wheel, tiny_task, capsys, case):
    if case == "not a zip":
        wheel.parent.mkdir(parents=True)
        wheel.write_bytes(b"PK\x03\x04 truncated")
    elif case == "no member":
        write_wheel(wheel, name="sadedegel/bblock/data/other.hdf5")
    elif case == "not hdf5":
        write_wheel(wheel, member=b"\x89HDF\r\n garbage")
    else:
        import h5py

        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f["form_/word"] = np.array([b"a"], dtype=object)
        write_wheel(wheel, member=buf.getvalue())
    with pytest.raises(BenchError):
        encoders.load(entry(sade_registry, "sade"))
    rc = main(["inspect", "--models", str(sade_registry), "--model", "sade", "--task", str(tiny_task),
               "--query", "Van Gölü"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and str(wheel) in err[0]


def test_sadedegel_source_must_pin_a_version(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("models:\n  - {name: s, kind: bi-encoder, loader: sadedegel, source: sadedegel}\n", encoding="utf-8")
    with pytest.raises(BenchError, match="sadedegel==VERSION"):
        registry.load_registry(bad)


def test_static_candidates_run_through_the_speed_timer(sade_registry, wheel):
    write_wheel(wheel)
    model = encoders.load(entry(sade_registry, "sade"))
    timer = timing.TaskTimer(model, ["Van Gölü neden tuzludur?"] * 3, PASSAGES)
    figures = timer.round()
    assert timer.flops is None and figures["gflops"] is None  # no transformer: FLOPs are not counted
    assert len(figures["latency_ms"]) == 3 and figures["throughput_per_s"] > 0


# --- static-distill -> model2vec --------------------------------------------------------------------------


def squad(path: Path) -> Path:
    paras = [{"context": f"{t}: {x}", "qas": [{"id": f"q{i}", "question": f"{t} nedir?",
                                               "answers": [{"text": t, "answer_start": 0}]}]}
             for i, (t, x) in enumerate(TINY_DOCS.values())]
    paras += [{"context": f"Paragraf {i}: Ankara ve İstanbul büyük şehirlerdir, çay Rize'de yetişir.",
               "qas": [{"id": f"x{i}", "question": f"Paragraf {i} ne anlatır?",
                        "answers": [{"text": "Ankara", "answer_start": 12}]}]} for i in range(12)]
    path.write_text(json.dumps({"data": [{"title": "Genel", "paragraphs": paras}]}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def leaflet(path: Path, text: str = "İlaç ağrı ve ateş için kullanılan bir tablettir.") -> Path:
    items = [{"ilacAdi": f"ilac{i}", "nedir": text, "nasilKullanilir": text and f"Günde {i + 1} kez alınır."}
             for i in range(4)]
    path.write_text(json.dumps({"prospektus": items}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def distill_env(tmp_path, tiny_model_dir, tiny_cross_encoder_dir, monkeypatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    squad(data / "qa.json")
    leaflet(data / "leaflets.json")
    leaflet(data / "empty_leaflets.json", text="")
    eval_tasks(tmp_path, monkeypatch)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("not json", encoding="utf-8")
    models = tmp_path / "models.yaml"
    static_entry = "    kind: bi-encoder\n    loader: model2vec\n"
    models.write_text("models:\n" + bm25_and_tiny(tiny_model_dir) + f"""  - name: broken teacher
    kind: bi-encoder
    loader: sentence-transformers
    source: {broken}
  - name: tiny static
{static_entry}    train: {{recipe: static-distill, base: tiny, data: [data/qa.json, data/leaflets.json], params: {{pca_dims: 8}}}}
  - name: tiny static words
{static_entry}    train: {{recipe: static-distill, base: tiny, data: [data/*.json], seed: 3,
             params: {{pca_dims: 8, vocabulary_size: 30, min_count: 1, weighting: corpus, trim: false}}}}
  - name: static of a broken teacher
{static_entry}    train: {{recipe: static-distill, base: broken teacher, data: [data/qa.json]}}
  - name: static of nothing
{static_entry}    train: {{recipe: static-distill, base: tiny, data: [data/empty_leaflets.json]}}
""", encoding="utf-8")
    return models


def built_files(models: Path) -> list[str]:
    from bench.paths import cache_dir

    trained = cache_dir() / "trained"
    return sorted(p.name for p in trained.iterdir()) if trained.exists() else []


@pytest.mark.parametrize("name", ["tiny static", "tiny static words"])
def test_static_distill_writes_a_folder_that_loads_offline_and_encodes(distill_env, name, capsys):
    assert main(["train", name, "--models", str(distill_env)]) == 0
    assert f"{name}: built in" in capsys.readouterr().out
    e = entry(distill_env, name)
    record = json.loads((registry.trained_dir(e) / "training.json").read_text(encoding="utf-8"))
    assert record["recipe"] == "static-distill" and record["dims"] == 8 and record["steps"] is None
    assert set(record["libraries"]) >= {"model2vec", "skeletoken"}
    if name == "tiny static":
        # Trimmed: the tiny teacher's 1,500-token vocabulary cut to what the corpus uses (+ single characters).
        assert record["trimmed_tokens"] > 0 and record["tokens"] < record["teacher_vocabulary"]
    else:
        assert record["trimmed_tokens"] == 0 and record["added_words"] == 30 and record["weighting"] == "corpus"
    model = encoders.load(e)
    assert model.variant == "numpy-fp32" and model.params == record["tokens"] * 8
    vecs = model.encode(PASSAGES, "passage", progress=False)
    assert vecs.shape == (len(PASSAGES), 8) and unit_rows(vecs)
    q = model.encode(["Van Gölü neden tuzludur?"], "query", progress=False)
    assert q.shape == (1, 8) and np.isfinite(q).all()
    # The static model is the same one model2vec itself loads from the folder.
    from model2vec import StaticModel

    own = StaticModel.from_pretrained(registry.trained_dir(e), force_download=False).encode(PASSAGES[:2],
                                                                                           max_length=None)
    assert np.allclose(own, vecs[:2], atol=1e-5)
    # The training report takes a recipe without optimizer steps.
    reports = distill_env.parent / "reports"
    assert main(["report", "--training-only", "--models", str(distill_env), "--out", str(reports)]) == 0
    assert name in (reports / "training.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("base, expect", [("bm25", "expected a transformer bi-encoder"),
                                          ("tiny static", "expected a transformer bi-encoder")])
def test_static_distill_teacher_must_be_a_transformer_bi_encoder(distill_env, tmp_path, base, expect, capsys):
    models = tmp_path / "bad.yaml"
    text = distill_env.read_text(encoding="utf-8") + f"""  - name: static of {base}
    kind: bi-encoder
    loader: model2vec
    train: {{recipe: static-distill, base: {base}, data: [data/qa.json]}}
"""
    models.write_text(text, encoding="utf-8")
    assert main(["train", f"static of {base}", "--models", str(models)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0]
    assert built_files(models) == []


@pytest.mark.parametrize("name, expect", [("static of a broken teacher", "not a loadable sentence-transformers"),
                                          ("static of nothing", "empty vocabulary corpus")])
def test_static_distill_bad_input_one_line_exit_2_no_folder(distill_env, name, expect, capsys):
    assert main(["train", name, "--models", str(distill_env)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0]
    assert built_files(distill_env) == []


def test_static_distill_failure_midway_leaves_no_folder(distill_env, monkeypatch, capsys):
    import model2vec.distill

    def boom(**kwargs):
        raise BenchError("distillation interrupted")

    monkeypatch.setattr(model2vec.distill, "distill_from_model", boom)
    assert main(["train", "tiny static", "--models", str(distill_env)]) == 2
    assert "distillation interrupted" in capsys.readouterr().err
    assert built_files(distill_env) == []


@pytest.mark.parametrize("params, expect", [("{weighting: idf}", "train.params.weighting"),
                                            ("{pca_dims: 0}", "train.params.pca_dims"),
                                            ("{layers: 2}", "train.params.layers")])
def test_static_distill_bad_params(distill_env, tmp_path, params, expect, capsys):
    models = tmp_path / "bad.yaml"
    models.write_text(distill_env.read_text(encoding="utf-8") + f"""  - name: odd static
    kind: bi-encoder
    loader: model2vec
    train: {{recipe: static-distill, base: tiny, data: [data/qa.json], params: {params}}}
""", encoding="utf-8")
    assert main(["train", "odd static", "--models", str(models)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]
    assert built_files(models) == []


def test_static_distill_entry_must_use_the_model2vec_loader(tmp_path, tiny_model_dir):
    bad = tmp_path / "m.yaml"
    bad.write_text(f"""models:
  - {{name: tiny, kind: bi-encoder, loader: sentence-transformers, source: {tiny_model_dir}}}
  - name: s
    kind: bi-encoder
    loader: sentence-transformers
    train: {{recipe: static-distill, base: tiny, data: [x.json]}}
""", encoding="utf-8")
    with pytest.raises(BenchError, match="with loader 'model2vec'"):
        registry.load_registry(bad)


# --- static-tune: a model2vec model fitted to its teacher's embeddings, then trained on question-paragraph pairs ---

TUNE = "    kind: bi-encoder\n    loader: model2vec\n"


@pytest.fixture
def tune_env(distill_env, tmp_path) -> Path:
    models = tmp_path / "tune.yaml"
    models.write_text(distill_env.read_text(encoding="utf-8") + f"""  - name: tiny static tuned
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json, data/leaflets.json], seed: 5,
             params: {{teacher: tiny, fit_epochs: 4, fit_lr: 0.05, pairs_epochs: 4, pairs_lr: 0.05, batch_size: 4}}}}
  - name: tiny static pairs only
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json], params: {{fit_epochs: 0, pairs_epochs: 8, pairs_lr: 0.02, batch_size: 4, patience: 8}}}}
  - name: tuned without a teacher
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json], params: {{fit_epochs: 2}}}}
  - name: tuned with a lexical teacher
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json], params: {{teacher: bm25}}}}
  - name: tuned on leaflets only
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/leaflets.json], params: {{teacher: tiny}}}}
""", encoding="utf-8")
    return models


def falls(losses: list[float]) -> bool:
    third = max(1, len(losses) // 3)
    return np.median(losses[-third:]) < np.median(losses[:third])


def test_static_tune_fits_the_teacher_then_the_pairs_and_loads_back(tune_env, capsys):
    assert main(["train", "tiny static tuned", "--models", str(tune_env)]) == 0
    out = capsys.readouterr().out
    assert "tiny static: built in" in out  # the static base is built first
    e = entry(tune_env, "tiny static tuned")
    record = json.loads((registry.trained_dir(e) / "training.json").read_text(encoding="utf-8"))
    assert record["recipe"] == "static-tune" and record["params"]["teacher"] == "tiny"
    assert record["fit_texts"] > 0 and record["examples"] > 0 and record["steps"] == len(record["losses"])
    fit, pairs = record["losses"][:record["fit_steps"]], record["losses"][record["fit_steps"]:]
    assert len(fit) > 0 and len(pairs) > 0 and falls(fit) and falls(pairs)
    assert record["leakage"]["tr_mini_wiki"]["questions"] == 0
    model = encoders.load(e)
    base = encoders.load(entry(tune_env, "tiny static"))
    vecs = model.encode(PASSAGES, "passage", progress=False)
    assert vecs.shape == base.encode(PASSAGES, "passage", progress=False).shape and unit_rows(vecs)
    assert not np.allclose(vecs, base.encode(PASSAGES, "passage", progress=False), atol=1e-3)
    # Same seed, same data: the same model.
    assert main(["train", "tiny static tuned", "--force", "--models", str(tune_env)]) == 0
    again = encoders.load(entry(tune_env, "tiny static tuned")).encode(PASSAGES, "passage", progress=False)
    assert np.allclose(vecs, again, atol=1e-6)


def test_static_tune_pairs_only_needs_no_teacher(tune_env, capsys):
    assert main(["train", "tiny static pairs only", "--models", str(tune_env)]) == 0
    record = json.loads((registry.trained_dir(entry(tune_env, "tiny static pairs only")) / "training.json")
                        .read_text(encoding="utf-8"))
    assert record["params"]["teacher"] is None and record["fit_texts"] == 0 and record["fit_steps"] == 0
    assert falls(record["losses"])


@pytest.mark.parametrize("env, name, expect", [
    ("tune_env", "tuned without a teacher", "train.params.teacher"),
    ("tune_env", "tuned with a lexical teacher", "'train.params.teacher' names 'bm25'"),
    ("tune_env", "tuned on leaflets only", "no question-paragraph pairs"),
    ("ict_env", "corpus-tuned, leakage kept",
     "leakage: 1 training question(s) equal a question of evaluation task 'tr_mini_wiki'"),
    ("ict_env", "corpus-tuned without a corpus", "'train.params.ict_sentences' needs passages"),
    ("ict_env", "corpus-tuned, bad count", "'train.params.ict_sentences' must be a whole number"),
])
def test_static_tune_bad_input_one_line_exit_2_no_folder(env, name, expect, request, capsys):
    models = request.getfixturevalue(env)
    assert main(["train", "tiny static", "--models", str(models)]) == 0  # the base builds; its output is not the error
    capsys.readouterr()
    assert main(["train", name, "--models", str(models)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0]
    assert not registry.trained_dir(entry(models, name)).exists()


def test_static_tune_base_must_be_a_static_model(distill_env, tmp_path, capsys):
    models = tmp_path / "bad.yaml"
    models.write_text(distill_env.read_text(encoding="utf-8") + f"""  - name: tuned from a transformer
{TUNE}    train: {{recipe: static-tune, base: tiny, data: [data/qa.json], params: {{teacher: tiny}}}}
""", encoding="utf-8")
    assert main(["train", "tuned from a transformer", "--models", str(models)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected a model2vec static entry" in err[0]
    assert built_files(models) == []


def test_static_tune_failure_midway_leaves_no_folder(tune_env, monkeypatch, capsys):
    from model2vec.train import StaticModelForPairSimilarity

    def boom(self, *args, **kwargs):
        raise BenchError("pair training interrupted")

    monkeypatch.setattr(StaticModelForPairSimilarity, "fit", boom)
    assert main(["train", "tiny static tuned", "--models", str(tune_env)]) == 2
    assert "pair training interrupted" in capsys.readouterr().err
    assert not registry.trained_dir(entry(tune_env, "tiny static tuned")).exists()


def test_static_tune_builds_a_trained_teacher_first(distill_env, tmp_path):
    from bench.train.plan import order

    models = tmp_path / "order.yaml"
    models.write_text(distill_env.read_text(encoding="utf-8") + f"""  - name: tiny contrastive
    kind: bi-encoder
    loader: sentence-transformers
    train: {{recipe: contrastive, base: tiny, data: [data/qa.json]}}
  - name: tuned by a trained teacher
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json], params: {{teacher: tiny contrastive}}}}
""", encoding="utf-8")
    by_name = {e.name: e for e in registry.load_registry(models)}
    plan = [e.name for e in order(by_name["tuned by a trained teacher"], by_name)]
    assert sorted(plan[:2]) == ["tiny contrastive", "tiny static"] and plan[2] == "tuned by a trained teacher"


# --- static-tune with inverse-cloze pairs from the searched passages (train.params.ict_sentences) ---

PLANTED = "Aşı olunca vücut hastalığa karşı nasıl korunur?"  # an evaluation question (conftest TINY_QUERIES q1)


def rich_leaflet(path: Path) -> Path:
    """Leaflets with several sentences per section, one of them equal to an evaluation question."""
    body = ("İlaç{i} tableti ağrı ve ateş için kullanılır. Günde {n} kez tok karnına bir tablet alınır. "
            "Baş dönmesi ve mide bulantısı görülebilir. {extra}")
    items = [{"ilacAdi": f"ilac{i}", "nedir": body.format(i=i, n=i + 1, extra=PLANTED if i == 0 else ""),
              "saklanmasi": f"İlaç{i} tabletini 25 derecenin altındaki oda sıcaklığında saklayınız."} for i in range(4)]
    path.write_text(json.dumps({"prospektus": items}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def ict_env(distill_env, tmp_path) -> Path:
    rich_leaflet(tmp_path / "data" / "rich.json")
    pairs = "fit_epochs: 0, pairs_epochs: 8, pairs_lr: 0.02, batch_size: 4, patience: 8"
    models = tmp_path / "ict.yaml"
    models.write_text(distill_env.read_text(encoding="utf-8") + f"""  - name: pairs only
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json, data/rich.json], seed: 5, params: {{{pairs}}}}}
  - name: corpus-tuned
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json, data/rich.json], seed: 5,
             params: {{{pairs}, ict_sentences: 2}}}}
  - name: corpus-tuned, leakage kept
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json, data/rich.json],
             params: {{{pairs}, ict_sentences: 2, exclude_eval_questions: false}}}}
  - name: corpus-tuned without a corpus
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json], params: {{{pairs}, ict_sentences: 2}}}}
  - name: corpus-tuned, bad count
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json, data/rich.json], params: {{{pairs}, ict_sentences: many}}}}
""", encoding="utf-8")
    return models


def test_static_tune_adds_inverse_cloze_pairs_from_the_leaflets(ict_env, capsys):
    assert main(["train", "corpus-tuned", "--models", str(ict_env)]) == 0
    assert main(["train", "pairs only", "--models", str(ict_env)]) == 0
    record = json.loads((registry.trained_dir(entry(ict_env, "corpus-tuned")) / "training.json").read_text(encoding="utf-8"))
    plain = json.loads((registry.trained_dir(entry(ict_env, "pairs only")) / "training.json")
                       .read_text(encoding="utf-8"))
    # 4 leaflets × (2 of the 3-4 long sentences in 'nedir' + the one in 'saklanmasi'), less the planted question
    # if it was drawn.
    assert 11 <= record["ict_pairs"] <= 12
    assert record["examples"] == plain["examples"] + record["ict_pairs"]
    assert record["leakage"]["tr_mini_wiki"]["questions"] == 0
    assert "inverse-cloze" in record["leakage_note"]
    assert "inverse-cloze" not in plain["leakage_note"]
    assert falls(record["losses"])
    vecs = encoders.load(entry(ict_env, "corpus-tuned")).encode(PASSAGES, "passage", progress=False)
    assert vecs.shape[0] == len(PASSAGES) and unit_rows(vecs)


def test_static_tune_drops_a_pseudo_question_equal_to_an_evaluation_question(ict_env):
    from bench.train import build, corpus

    by_name = {e.name: e for e in registry.load_registry(ict_env)}
    e = by_name["corpus-tuned"]
    files = corpus.data_files(e, ict_env)

    def prepared(**given):
        params = corpus.params_for("static-tune", {**e.train["params"], **given}, None)
        (_, _, pairs), questions, _ = build.prepare(e, by_name, files, params, 5)
        return pairs, questions, params.get("excluded_eval_questions", {}).get("tr_mini_wiki", 0)

    _, _, before = prepared(ict_sentences=0)
    pairs, questions, dropped = prepared(ict_sentences=9)  # every sentence drawn, the planted one among them
    assert not any(q == PLANTED for q, _ in pairs) and dropped == before + 1
    pairs, questions, _ = prepared(ict_sentences=9, exclude_eval_questions=False)
    assert sum(q == PLANTED for q, _ in pairs) == 1
    assert PLANTED in questions  # what the leakage check reads, so it stops the build


def test_static_tune_leakage_check_reads_the_passages_the_pseudo_questions_come_from(ict_env):
    from bench.data import leaflets
    from bench.train import build, corpus

    by_name = {e.name: e for e in registry.load_registry(ict_env)}
    e = by_name["corpus-tuned"]
    files = corpus.data_files(e, ict_env)
    params = corpus.params_for("static-tune", dict(e.train["params"]), None)
    _, _, paragraphs = build.prepare(e, by_name, files, params, 5)
    chunks = leaflets.chunks(files[1])
    assert chunks and all(c.text in paragraphs for c in chunks)

def test_static_tune_encodes_a_shared_teacher_once(tune_env, tmp_path, monkeypatch):
    """Two entries with the same teacher and training texts (as tuned and corpus-tuned are): one teacher pass."""
    from sentence_transformers import SentenceTransformer

    models = tmp_path / "twice.yaml"
    text = tune_env.read_text(encoding="utf-8")
    models.write_text(text + f"""  - name: tuned again
{TUNE}    train: {{recipe: static-tune, base: tiny static, data: [data/qa.json, data/leaflets.json], seed: 6,
             params: {{teacher: tiny, fit_epochs: 4, fit_lr: 0.05, pairs_epochs: 2, pairs_lr: 0.05, batch_size: 4}}}}
""", encoding="utf-8")
    calls = []
    encode = SentenceTransformer.encode
    monkeypatch.setattr(SentenceTransformer, "encode", lambda self, *a, **k: calls.append(len(a[0])) or encode(self, *a, **k))
    assert main(["train", "tiny static tuned", "--models", str(models)]) == 0
    first = len(calls)
    assert first >= 1
    assert main(["train", "tuned again", "--models", str(models)]) == 0
    assert len(calls) == first  # the teacher's embeddings came from the cache
    record = json.loads((registry.trained_dir(entry(models, "tuned again")) / "training.json").read_text(encoding="utf-8"))
    assert record["fit_steps"] > 0


# --- the batch encoder gives the per-passage encoder's vectors ---------------------------------------------


def reference_vectors(enc: static.WordEncoder, texts: list[str]) -> np.ndarray:
    """The per-passage encoder as it was before the batch path (idf weights x stacked vectors per text), kept as
    the reference: the batch path must give the same bits."""
    from bench.data.convert import turkish_lower

    out = np.zeros((len(texts), enc.wv.vectors.shape[1]), dtype=np.float32)
    for i, text in enumerate(texts):
        hits = [h for h in map(enc.lookup, static._WORD.findall(turkish_lower(text))) if h is not None]
        if hits:
            out[i] = np.asarray([w for w, _ in hits], dtype=np.float32) @ np.stack([v for _, v in hits])
    return out


@pytest.mark.parametrize("stem,oov", [(True, True), (False, False), (True, False), (False, True)])
def test_word_encoder_batches_equal_the_per_passage_vectors_bit_for_bit(wheel, stem, oov, monkeypatch):
    write_wheel(wheel)
    wv = static.read_word_vectors(wheel)
    rng = np.random.default_rng(1)
    words = _words() + ["İLAÇLARINIZI", "Ankara'nın", "Apranax", "apranax'ı", "Parol", "türkiye’nin", "!!", "3"]
    texts = ["", "!!! ...", "Apranax"] + [" ".join(rng.choice(words, rng.integers(1, 40))) for _ in range(200)]
    fast = static.WordEncoder(wv, stem=stem, oov=oov)
    # Twice through one encoder (its word table grows as unknown words come) and once in small batches.
    first, again = fast(texts), fast(texts)
    small = np.vstack([static.WordEncoder(wv, stem=stem, oov=oov)(texts[i:i + 7]) for i in range(0, len(texts), 7)])
    ref = reference_vectors(static.WordEncoder(wv, stem=stem, oov=oov), texts)
    assert first.dtype == np.float32 and first.shape == ref.shape
    assert np.array_equal(first, ref) and np.array_equal(again, ref)
    assert np.array_equal(small, ref[:len(small)])
    assert not first[0].any() and not first[1].any()
    monkeypatch.setattr(static, "BATCH", 16)  # a long list is encoded in batches of BATCH texts
    assert np.array_equal(static.WordEncoder(wv, stem=stem, oov=oov)(texts), ref)
