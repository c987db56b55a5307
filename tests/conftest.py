"""Fixtures: tiny Turkish corpora, tiny random-init models built here, temp dirs. Nothing touches the network."""

from __future__ import annotations

from collections import Counter
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TASK_DIR = REPO / "tasks" / "tr_mini_wiki"

TINY_DOCS = {
    "saglik-1": ("Aşılar", "Aşılar bağışıklık sistemine zayıflatılmış mikropları tanıtır ve hastalığa karşı koruma sağlar."),
    "saglik-2": ("Diyabet", "Şeker hastalığında pankreas yeterli insülin üretemez ve kan şekeri yükselir."),
    "saglik-3": ("Uyku", "Yetişkinlerin sağlıklı kalmak için gecede yedi ile dokuz saat uyuması önerilir."),
    "spor-1": ("Futbol", "Futbol on birer kişilik iki takım arasında oynanır ve maç doksan dakika sürer."),
    "spor-2": ("Basketbol", "Basketbolda potaya atılan şut uzaklığa göre iki ya da üç sayı kazandırır."),
    "cografya-1": ("Van Gölü", "Van Gölü Türkiye'nin en büyük gölüdür ve suyu sodalı olduğu için tuzludur."),
}
TINY_QUERIES = {
    "q1": ("Aşı olunca vücut hastalığa karşı nasıl korunur?", "saglik-1"),
    "q2": ("İnsülin eksikliği hangi hastalığa yol açar?", "saglik-2"),
    "q3": ("Bir yetişkin kaç saat uyumalı?", "saglik-3"),
    "q4": ("Bir futbol maçı ne kadar sürer?", "spor-1"),
    "q5": ("Basketbolda üçlük kaç sayıdır?", "spor-2"),
    "q6": ("Türkiye'nin en büyük gölü hangisidir?", "cografya-1"),
}


def write_beir(folder: Path, docs=TINY_DOCS, queries=TINY_QUERIES) -> Path:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for did, (title, text) in docs.items():
            f.write(json.dumps({"_id": did, "title": title, "text": text}, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, (text, _) in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, (_, did) in queries.items():
            f.write(f"{qid}\t{did}\t1\n")
    return folder


def eval_tasks(tmp_path: Path, monkeypatch, **beir) -> Path:
    """A one-task evaluation folder (tr_mini_wiki; `beir`: write_beir's docs/queries) that BENCH_TASKS_DIR points
    at: what training's leakage check and question exclusion read, instead of the repo's tasks."""
    evals = tmp_path / "evaltasks"
    write_beir(evals / "tr_mini_wiki", **beir)
    (evals / "tr_mini_wiki.yaml").write_text("name: tr_mini_wiki\nformat: beir\npath: tr_mini_wiki\n", encoding="utf-8")
    monkeypatch.setenv("BENCH_TASKS_DIR", str(evals))
    return evals


def bm25_and_tiny(model_dir: Path, tiny_extra: str = "") -> str:
    """Registry entries (YAML list items) every training and loading test starts from: BM25 and a tiny model with
    Turkish prefixes; `tiny_extra`: more indented lines for the tiny entry."""
    return f"""  - name: bm25
    kind: lexical
    loader: bm25
    source: bm25s
  - name: tiny
    kind: bi-encoder
    loader: sentence-transformers
    source: {model_dir}
    query_prefix: "soru: "
    passage_prefix: "metin: "
{tiny_extra}"""


def gate_profile(registry_path: Path, task: Path, entries: list[str]) -> None:
    """Give a test registry the 'gate' profile `bench check` scores: `entries` ('name [variant]') on `task`."""
    text = registry_path.read_text(encoding="utf-8")
    registry_path.write_text(text + f"profiles:\n  gate:\n    task: {task}\n    entries: {json.dumps(entries)}\n",
                             encoding="utf-8")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache dir and no hub access, as on a user's offline machine."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from bench.models import registry

    registry.hub_reachable.cache_clear()


@pytest.fixture
def tiny_task(tmp_path) -> Path:
    """A task YAML over a six-paragraph Turkish corpus; returns the YAML path."""
    write_beir(tmp_path / "tiny")
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: tiny\nformat: beir\npath: tiny\n", encoding="utf-8")
    return spec


def turkish_text() -> list[str]:
    """The project's own Turkish text (the embedded task), for training tiny tokenizers."""
    lines = []
    for name in ("corpus.jsonl", "queries.jsonl"):
        path = DEFAULT_TASK_DIR / name
        if path.exists():
            lines += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines + [f"{t} {x}" for t, x in TINY_DOCS.values()] + [q for q, _ in TINY_QUERIES.values()]


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    # The vocabulary is chosen here rather than by tokenizers' WordPieceTrainer, whose tie-breaking follows a
    # randomly seeded hash map: each test process got a different vocabulary, hence different tiny-model results.
    # Lower-cased and accent-stripped, as BertTokenizerFast (do_lower_case) saves it.
    normalizer, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = Counter(w for line in turkish_text() for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)))
    chars = sorted({c for w in counts for c in w})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + chars + ["##" + c for c in chars]
    taken = set(vocab)
    vocab += [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in taken]
    vocab = vocab[:1500]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece()
    out = tmp_path_factory.mktemp("tokenizer")
    BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                      sep_token="[SEP]", mask_token="[MASK]").save_pretrained(out)
    return out


def build_tiny_bi_encoder(tokenizer_dir: Path, out: Path, seed: int = 0) -> Path:
    """Random-init 2-layer BERT + mean pooling, saved as a normal sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    hf_dir = out / "hf"
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    word = models.Transformer(str(hf_dir), max_seq_length=128)
    SentenceTransformer(modules=[word, models.Pooling(32, "mean"), models.Normalize()], device="cpu").save(str(out / "st"))
    return out / "st"


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    return build_tiny_bi_encoder(tiny_tokenizer_dir, tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def tiny_registry(tmp_path, tiny_model_dir) -> Path:
    """BM25, the tiny model, one hub model (offline: skipped) and one broken local model (fails to load)."""
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "modules.json").write_text("not json", encoding="utf-8")
    path = tmp_path / "models.yaml"
    path.write_text("models:\n" + bm25_and_tiny(tiny_model_dir, "    variants: [torch-fp32, onnx-fp32, onnx-int8]\n")
                    + f"""  - name: hub-only
    kind: bi-encoder
    loader: sentence-transformers
    source: someone/not-downloaded-model
  - name: broken
    kind: bi-encoder
    loader: sentence-transformers
    source: {broken}
""", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    """Random-init 2-layer BERT with a one-logit head: a sentence-transformers CrossEncoder folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, num_labels=1)
    out = tmp_path_factory.mktemp("tiny_cross_encoder")
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
