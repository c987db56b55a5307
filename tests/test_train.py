"""Training recipes on the tiny fixture model: loss falls, the built folder loads through the registry, bad input
stops with one line and leaves no folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.errors import BenchError, Unavailable
from bench.models import encoders, registry
from tests.conftest import TINY_DOCS, bm25_and_tiny, eval_tasks, write_beir

pytestmark = pytest.mark.slow  # real-model conversion, exports or training: `pytest -m 'not slow'` skips them

PARAGRAPHS = [f"{title}: {text}" for title, text in TINY_DOCS.values()] + [
    "Ankara Türkiye'nin başkentidir ve ülkenin ikinci büyük şehridir.",
    "İstanbul Boğazı Karadeniz'i Marmara Denizi'ne bağlar.",
    "Çay Türkiye'de en çok Rize ilinde yetiştirilir.",
    "Kapadokya peri bacaları ve balonlarıyla ünlüdür.",
    "Ege kıyılarında zeytin ağaçları yaygındır ve zeytinyağı üretilir.",
    "Erzurum kışları çok soğuk geçen bir Doğu Anadolu şehridir.",
]
QUESTIONS = [["Bu paragraf hangi konudan söz ediyor?", "Paragrafta anlatılan bilgi nedir?"],
             ["Aşılar ne sağlar?", "Bağışıklık nasıl kazanılır?"]]


def squad(path: Path, with_questions: bool = True) -> Path:
    paras = []
    for i, ctx in enumerate(PARAGRAPHS):
        words = ctx.split()
        qas = [{"id": f"p{i}q{j}", "question": f"{words[j]} {words[j + 1]} {words[-1]} hakkında ne söylenir? ({i}.{j})",
                "answers": [{"text": words[j], "answer_start": ctx.index(words[j])}]} for j in range(3)]
        paras.append({"context": ctx, "qas": qas if with_questions else []})
    path.write_text(json.dumps({"data": [{"title": "Genel", "paragraphs": paras}]}, ensure_ascii=False), encoding="utf-8")
    return path


def leaflet(path: Path) -> Path:
    items = [{"ilacAdi": f"ilac{i}", "nedir": f"İlaç {i} ağrı ve ateş için kullanılan bir tablettir.",
              "nasilKullanilir": f"Günde {i + 1} kez tok karnına bir bardak su ile alınır."} for i in range(8)]
    path.write_text(json.dumps({"prospektus": items}, ensure_ascii=False), encoding="utf-8")
    return path


FAST = "{max_seq_length: 48, batch_size: 4, lr: 0.002, max_steps: 12, epochs: 50}"


@pytest.fixture
def train_env(tmp_path, tiny_model_dir, monkeypatch):
    """models.yaml with the tiny model as base, trained entries over a tiny SQuAD file and leaflets, and an
    evaluation task folder with one planted copy of a training paragraph."""
    data = tmp_path / "data"
    data.mkdir()
    squad(data / "qa.json")
    leaflet(data / "leaflets.json")
    eval_tasks(tmp_path, monkeypatch, docs={"x1": ("", PARAGRAPHS[7]), "x2": ("", "Hiç ilgisi olmayan bir metin.")},
               queries={"e1": ("Türkiye'nin başkenti neresidir?", "x1")})
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + bm25_and_tiny(tiny_model_dir) + f"""  - name: tiny MLM
    kind: bi-encoder
    loader: sentence-transformers
    query_prefix: "soru: "
    passage_prefix: "metin: "
    variants: [torch-fp32, onnx-fp32]
    train: {{recipe: mlm, base: tiny, data: [data/*.json], seed: 1, params: {FAST[:-1]}, head_steps: 3,
             heldout_every: 3, head_lr: 0.01}}}}
  - name: tiny MLM+contrastive
    kind: bi-encoder
    loader: sentence-transformers
    variants: [torch-fp32]
    train: {{recipe: contrastive, base: tiny MLM, data: [data/qa.json], params: {FAST}}}
  - name: tiny cross-encoder
    kind: cross-encoder
    loader: sentence-transformers
    train: {{recipe: cross-encoder, base: tiny, data: [data/qa.json], params: {FAST}}}
  - name: bm25 -> tiny cross-encoder
    kind: pipeline
    loader: rerank
    stages: [bm25, tiny cross-encoder]
    options: {{top_k: 5}}
""", encoding="utf-8")
    return models


def entry(models: Path, name: str):
    return {e.name: e for e in registry.load_registry(models)}[name]


def record(models: Path, name: str) -> dict:
    return json.loads((registry.trained_dir(entry(models, name)) / "training.json").read_text(encoding="utf-8"))


def falls(losses: list[float]) -> bool:
    # Medians of the first and last thirds: with 4-example batches one hard batch near the end can spike the loss
    # (seen once in ~10 runs: 1.60, 1.50, 0.99, ..., 0.02, then a late spike), which a mean of 3 would follow.
    third = max(1, len(losses) // 3)
    return np.median(losses[-third:]) < np.median(losses[:third])


def test_unbuilt_entry_is_skipped_with_the_train_command(train_env):
    with pytest.raises(Unavailable) as u:
        registry.check_available(entry(train_env, "tiny MLM"))
    assert u.value.fix == "python -m bench train 'tiny MLM'"


def test_mlm_then_contrastive_in_dependency_order(train_env, capsys):
    assert main(["train", "tiny MLM+contrastive", "--models", str(train_env)]) == 0
    out = capsys.readouterr().out
    assert out.index("tiny MLM: training") < out.index("tiny MLM+contrastive: training")
    mlm = record(train_env, "tiny MLM")
    assert mlm["heldout_mlm_loss_after"] < mlm["heldout_mlm_loss_before"]
    assert falls(mlm["losses"]) and mlm["steps"] == 12 and len(mlm["losses"]) == 12
    assert mlm["data"] == {"data/leaflets.json": mlm["data"]["data/leaflets.json"],
                           "data/qa.json": mlm["data"]["data/qa.json"]}
    assert mlm["leakage"]["tr_mini_wiki"] == {"questions": 0, "paragraphs": 1}  # the planted paragraph
    assert "decoder tied to input embeddings: True" in mlm["mlm_head"]
    assert len(mlm["head_losses"]) == 3 and mlm["heldout_mlm_loss_before"] < mlm["heldout_mlm_loss_random_head"]
    con = record(train_env, "tiny MLM+contrastive")
    assert con["base"] == "tiny MLM" and falls(con["losses"]) and con["code"], con["losses"]
    for name in ("tiny MLM", "tiny MLM+contrastive"):
        e = entry(train_env, name)
        for variant in e.variants:
            model = encoders.load(e, variant)
            vecs = model.encode(["Van Gölü tuzlu mudur?", "Ankara başkenttir."], "query", progress=False)
            assert vecs.shape[0] == 2 and np.isfinite(vecs).all()
    # Already built: a second call trains nothing.
    assert main(["train", "tiny MLM+contrastive", "--models", str(train_env)]) == 0
    assert "training" not in capsys.readouterr().out


def test_contrastive_keeps_the_base_prefixes(train_env):
    from bench.train import build, corpus

    by_name = {e.name: e for e in registry.load_registry(train_env)}
    e = by_name["tiny MLM+contrastive"]
    params = {"negatives": 1, "max_pairs": None}
    (triples,), questions, _ = build.prepare(e, by_name, corpus.data_files(e, train_env), params, 0)
    q, pos, neg = triples[0]
    assert q.startswith("soru: ") and pos.startswith("metin: ") and neg.startswith("metin: ") and pos != neg
    assert len(triples) == len(questions) > 0


def test_cross_encoder_builds_and_reranks_in_a_pipeline(train_env):
    assert main(["train", "tiny cross-encoder", "--models", str(train_env)]) == 0
    rec = record(train_env, "tiny cross-encoder")
    assert falls(rec["losses"]) and rec["positives"] > 0 and rec["examples"] > rec["positives"]
    pipe = encoders.load(entry(train_env, "bm25 -> tiny cross-encoder"))
    scores = pipe.scores(["Van Gölü neden tuzludur?"], PARAGRAPHS)
    assert scores.shape == (1, len(PARAGRAPHS)) and np.isfinite(scores).all()


def test_cross_encoder_replaces_an_all_zero_pooler(train_env, tiny_model_dir, tmp_path):
    # The Q4-dequantized e5 carries a pooler of zeros; a classifier on it reads 0 for every pair and never learns.
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    assert main(["train", "tiny cross-encoder", "--models", str(train_env)]) == 0
    assert record(train_env, "tiny cross-encoder")["pooler"] == "the base's"

    st = SentenceTransformer(str(tiny_model_dir), device="cpu")
    for w in st[0].auto_model.pooler.parameters():
        torch.nn.init.zeros_(w)
    st.save(str(tmp_path / "zero-pooler"))
    _edit(train_env, str(tiny_model_dir), str(tmp_path / "zero-pooler"))
    assert main(["train", "tiny cross-encoder", "--models", str(train_env), "--force"]) == 0
    assert record(train_env, "tiny cross-encoder")["pooler"].startswith("re-initialised")
    head = CrossEncoder(str(registry.trained_dir(entry(train_env, "tiny cross-encoder"))), device="cpu").model
    assert all(w.any() for w in head.base_model.pooler.parameters() if w.dim() == 2)


def test_a_pooler_of_zeros_is_reinitialised_and_a_trained_one_kept(tiny_model_dir):
    import torch
    from transformers import AutoModelForSequenceClassification

    from bench.train.recipes.cross_encoder import _usable_pooler

    model = AutoModelForSequenceClassification.from_pretrained(Path(tiny_model_dir), num_labels=1)
    kept = [w.clone() for w in model.base_model.pooler.parameters()]
    assert _usable_pooler(model) == "the base's"
    assert all(torch.equal(a, b) for a, b in zip(kept, model.base_model.pooler.parameters()))
    for w in model.base_model.pooler.parameters():
        torch.nn.init.zeros_(w)
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 8, 3]])
    assert not model.base_model(input_ids=ids).pooler_output.any()  # what the classifier read before
    assert _usable_pooler(model).startswith("re-initialised")
    out = model.base_model(input_ids=ids).pooler_output
    assert out.any() and not torch.allclose(out[0], out[1])


def _no_folder(models: Path, name: str) -> bool:
    folder = registry.trained_dir(entry(models, name))
    return not folder.exists() and not list(folder.parent.glob(f".{folder.name}.tmp-*"))


def _edit(models: Path, old: str, new: str) -> None:
    models.write_text(models.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("case", ["missing file", "no questions", "empty corpus", "question leak"])
def test_bad_input_one_line_exit_2_no_folder(train_env, tmp_path, capsys, case):
    name, expect = "tiny cross-encoder", None
    if case == "missing file":
        _edit(train_env, "cross-encoder, base: tiny, data: [data/qa.json]", "cross-encoder, base: tiny, data: [data/nowhere.json]")
        expect = "train.data: no file matches 'data/nowhere.json'"
    elif case == "no questions":
        squad(tmp_path / "data" / "qa.json", with_questions=False)
        expect = "qa.json: no questions"
    elif case == "empty corpus":
        (tmp_path / "data" / "leaflets.json").write_text(json.dumps({"prospektus": [{"ilacAdi": "x"}]}), encoding="utf-8")
        (tmp_path / "data" / "qa.json").unlink()
        name, expect = "tiny MLM", "empty corpus"
    else:  # an evaluation question that only differs in case (Turkish İ) and spacing
        from bench.data.split import part_of

        para = next(p for p in json.loads((tmp_path / "data" / "qa.json").read_text(encoding="utf-8"))["data"][0]
                    ["paragraphs"] if part_of(p["context"]) == "train")
        planted = "  " + para["qas"][0]["question"].replace("i", "İ").replace(" ", "   ")
        write_beir(tmp_path / "evaltasks" / "tr_mini_wiki", docs={"x1": ("", "metin")}, queries={"e1": (planted, "x1")})
        expect = "leakage: 1 training question(s) equal a question of evaluation task 'tr_mini_wiki'"
    assert main(["train", name, "--models", str(train_env)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and expect in err
    assert _no_folder(train_env, name)
    if case == "question leak":  # asked to, the build drops the equal question instead and says how many
        from bench.train import build, corpus, leakage

        by_name = {e.name: e for e in registry.load_registry(train_env)}
        e = by_name[name]
        params = {"negatives": 1, "max_pairs": None, "exclude_eval_questions": True}
        _, questions, paragraphs = build.prepare(e, by_name, corpus.data_files(e, train_env), params, 0)
        assert params["excluded_eval_questions"] == {"tr_mini_wiki": 1}
        assert leakage.check(questions, paragraphs)["tr_mini_wiki"]["questions"] == 0


@pytest.mark.parametrize("block, expect", [
    ("{recipe: distill, base: tiny, data: [x]}", "field 'train.recipe' is 'distill'"),
    ("{recipe: mlm, base: nobody, data: [x]}", "names 'nobody', which is not a registry entry"),
    ("{recipe: mlm, base: bm25, data: [x]}", "expected a transformer bi-encoder"),
    ("{recipe: mlm, base: tiny, data: []}", "field 'train.data' must be a non-empty list"),
])
def test_bad_train_block(tmp_path, tiny_model_dir, block, expect, capsys):
    models = tmp_path / "m.yaml"
    models.write_text(f"""models:
  - {{name: bm25, kind: lexical, loader: bm25, source: bm25s}}
  - {{name: tiny, kind: bi-encoder, loader: sentence-transformers, source: {tiny_model_dir}}}
  - {{name: t, kind: bi-encoder, loader: sentence-transformers, train: {block}}}
""", encoding="utf-8")
    with pytest.raises(BenchError, match=expect):
        registry.load_registry(models)
    assert main(["train", "t", "--models", str(models)]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_hybrid_pipeline_feeds_a_cross_encoder(tmp_path, tiny_model_dir, tiny_cross_encoder_dir):
    models = tmp_path / "m.yaml"
    head = f"""models:
  - {{name: bm25, kind: lexical, loader: bm25, source: bm25s}}
  - {{name: tiny, kind: bi-encoder, loader: sentence-transformers, source: {tiny_model_dir}, variants: [torch-fp32]}}
  - {{name: ce, kind: cross-encoder, loader: sentence-transformers, source: {tiny_cross_encoder_dir}}}
  - {{name: hybrid, kind: pipeline, loader: hybrid, stages: [bm25, tiny], options: {{fusion: rrf}}}}
"""
    models.write_text(head + "  - {name: h->ce, kind: pipeline, loader: rerank, stages: [hybrid, ce], options: {top_k: 3}}\n",
                      encoding="utf-8")
    pipe = entry(models, "h->ce")
    assert pipe.variants == ["bm25s+torch-fp32+torch-fp32"]
    scores = encoders.load(pipe).scores(["Van Gölü neden tuzludur?"], PARAGRAPHS)
    assert scores.shape == (1, len(PARAGRAPHS)) and np.isfinite(scores).all()
    models.write_text(head + "  - {name: x, kind: pipeline, loader: rerank, stages: [tiny, hybrid]}\n", encoding="utf-8")
    with pytest.raises(BenchError, match="only a hybrid pipeline may be the first stage"):
        registry.load_registry(models)


def test_masked_only_mlm_loss_equals_the_library_loss():
    """The MLM recipe computes logits at masked positions only (a 250k-token projection of every position is most of
    a CPU step); the loss must be the library's own."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from bench.train.recipes.mlm import _masked_only

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32)).eval()
    ids = torch.randint(5, 50, (3, 12))
    labels = torch.full_like(ids, -100)
    labels[:, ::4] = ids[:, ::4]
    mask = torch.ones_like(ids)
    full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    fast = _masked_only(model)(input_ids=ids, attention_mask=mask, labels=labels)["loss"]
    assert torch.allclose(full, fast, atol=1e-5)


def test_a_changed_train_block_makes_the_built_model_stale(train_env, capsys):
    """A model built from other hyper-parameters is not what the registry now describes: it is skipped with the
    reason, and `bench train` rebuilds it without --force."""
    assert main(["train", "tiny cross-encoder", "--models", str(train_env)]) == 0
    registry.check_available(entry(train_env, "tiny cross-encoder"))
    text = train_env.read_text(encoding="utf-8")
    train_env.write_text(text.replace("train: {recipe: cross-encoder, base: tiny, data: [data/qa.json], params: "
                                      "{max_seq_length: 48, batch_size: 4, lr: 0.002,",
                                      "train: {recipe: cross-encoder, base: tiny, data: [data/qa.json], params: "
                                      "{max_seq_length: 48, batch_size: 4, lr: 0.001,"), encoding="utf-8")
    with pytest.raises(Unavailable) as u:
        registry.check_available(entry(train_env, "tiny cross-encoder"))
    assert "params.lr" in u.value.reason and "0.002" in u.value.reason
    assert u.value.fix == "python -m bench train 'tiny cross-encoder'"
    capsys.readouterr()
    assert main(["train", "tiny cross-encoder", "--models", str(train_env)]) == 0
    assert "tiny cross-encoder: training" in capsys.readouterr().out
    assert record(train_env, "tiny cross-encoder")["params"]["lr"] == 0.001


def test_a_quick_build_is_not_taken_for_the_real_one(train_env):
    text = train_env.read_text(encoding="utf-8").replace(
        "train: {recipe: cross-encoder, base: tiny, data: [data/qa.json], params: {max_seq_length: 48, batch_size: 4, "
        "lr: 0.002, max_steps: 12, epochs: 50}}",
        "train: {recipe: cross-encoder, base: tiny, data: [data/qa.json], params: {max_seq_length: 48, batch_size: 4, "
        "lr: 0.002, epochs: 50}}")
    train_env.write_text(text, encoding="utf-8")
    assert main(["train", "tiny cross-encoder", "--models", str(train_env), "--max-steps", "2"]) == 0
    with pytest.raises(Unavailable, match="quick build"):
        registry.check_available(entry(train_env, "tiny cross-encoder"))


def test_a_rebuilt_base_makes_its_derived_model_stale(train_env, capsys):
    assert main(["train", "tiny MLM+contrastive", "--models", str(train_env)]) == 0
    derived = entry(train_env, "tiny MLM+contrastive")
    assert registry.trained_mismatch(derived) is None
    assert main(["train", "tiny MLM", "--models", str(train_env), "--force"]) == 0
    assert registry.trained_mismatch(derived) == "its base 'tiny MLM' was rebuilt after it"
    capsys.readouterr()
    assert main(["train", "tiny MLM+contrastive", "--models", str(train_env)]) == 0
    assert "tiny MLM+contrastive: training" in capsys.readouterr().out
    assert registry.trained_mismatch(entry(train_env, "tiny MLM+contrastive")) is None


def test_several_names_build_once_each_with_progress_and_an_eta_from_earlier_runs(train_env, capsys):
    # An earlier run of the cross-encoder on a CPU, as `bench train` leaves it in reports/training.json beside the
    # registry: its wall time is what the progress line expects this time.
    reports = train_env.parent / "reports"
    reports.mkdir()
    params = {"max_seq_length": 48, "batch_size": 4, "lr": 0.002, "max_steps": 12, "epochs": 50}
    earlier = {"tiny cross-encoder": {"name": "tiny cross-encoder", "recipe": "cross-encoder", "base": "tiny",
                                      "seed": 0, "params": params, "wall_seconds": 125.0, "machine": {"threads": 2}},
               # the same entry built with other settings says nothing about this build
               "tiny MLM": {"name": "tiny MLM", "recipe": "mlm", "base": "tiny", "seed": 1,
                            "params": {**params, "max_steps": 500}, "wall_seconds": 999.0}}
    (reports / "training.json").write_text(json.dumps(earlier), encoding="utf-8")
    names = ["tiny MLM", "tiny MLM+contrastive", "tiny cross-encoder"]
    assert main(["train", *names, "--models", str(train_env)]) == 0
    out = capsys.readouterr().out
    assert out.count("tiny MLM: training") == 1  # the base of the second name, built once
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"]
    assert "tiny MLM: no earlier run here to estimate from" in lines[0]
    assert "tiny cross-encoder: about 2.1 min (its last run, on 2 CPU threads)" in lines[2]
    assert all(record(train_env, n)["steps"] == 12 for n in names)
    # Nothing left to build: no progress lines.
    assert main(["train", *names, "--models", str(train_env)]) == 0
    assert "[1/" not in capsys.readouterr().out


def test_an_eta_from_a_gpu_run_is_not_used_without_a_gpu(train_env, capsys):
    from bench.train import plan

    params = entry(train_env, "tiny MLM").train["params"]
    runs = {"tiny MLM": {"recipe": "mlm", "base": "tiny", "seed": 1, "params": params, "wall_seconds": 9.6,
                         "gpu": "NVIDIA H100 80GB HBM3", "machine": {"threads": 16}}}
    assert plan.expected_seconds(entry(train_env, "tiny MLM"), runs, gpu=False) is None
    assert plan.expected_seconds(entry(train_env, "tiny MLM"), runs, gpu=True) == (9.6, "NVIDIA H100 80GB HBM3")
