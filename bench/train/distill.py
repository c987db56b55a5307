"""Recipe `static-distill`: a model2vec static model (one vector per token, no transformer at query time) from a
teacher bi-encoder folder, with the teacher's token vocabulary trimmed to what Turkish text uses.

model2vec's `distill_from_model` embeds every vocabulary token on its own through the teacher (mean pooling, as
the teacher pools), reduces the vectors with PCA and scales each by a SIF weight a / (a + p(token)). Here:

- trimming: e5's XLM-R vocabulary has 250k tokens for ~100 languages. Only the tokens the teacher's tokenizer
  emits on the Turkish corpus are kept, plus every single-character token (so any word still splits into known
  pieces) and the special tokens; skeletoken (model2vec's own tokenizer surgery) removes the rest from tokenizer
  and embedding matrix together. That cuts the distillation's forward passes and the model's size by an order of
  magnitude, and PCA is fitted on the tokens that matter.
- vocabulary: optionally the `vocabulary_size` most frequent corpus words are added as whole tokens (model2vec's
  `vocabulary` argument); each is embedded by the teacher from its subword pieces.
- weighting: `zipf` is model2vec's own SIF estimate, p taken from a token's rank in the vocabulary (XLM-R's
  vocabulary is ordered by multilingual frequency); `corpus` counts p on the Turkish corpus itself; `none`.

Measured while building it, teacher multilingual-e5-small (Q4-dequantized), data = the leaflets + thquad train
paragraphs (583 texts), pca_dims 256, no added words: the vocabulary trimmed from 250,002 to 24,074 tokens (25 MB
float32); distillation took 29 min niced on a 2-core machine busy with training. nDCG@10 drug_leaflets /
thquad_dev by weighting: none 0.181 / 0.761, zipf 0.215 / 0.841, corpus 0.261 / 0.681 (so zipf is the default);
with the teacher's "query: " / "passage: " prefixes added to the texts: 0.110 / 0.676, 0.200 / 0.839, 0.200 / 0.685
(so the static entries carry no prefixes). Query p50 0.26 ms. Not measured: added words (vocabulary_size > 0).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from bench.errors import BenchError

WEIGHTINGS = ("zipf", "corpus", "none")
POOLING = {"mean": "mean", "cls": "first", "lasttoken": "last"}  # sentence-transformers mode -> model2vec's


def teacher(folder: str):
    """(transformer, fast tokenizer, model2vec pooling) of a sentence-transformers bi-encoder folder."""
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerFast

    try:
        st = SentenceTransformer(folder, device="cpu", local_files_only=True)
    except Exception as e:
        raise BenchError(f"train.base folder {folder}: not a loadable sentence-transformers bi-encoder "
                         f"({type(e).__name__})") from None
    first = st[0]
    model, tokenizer = getattr(first, "auto_model", None), getattr(st, "tokenizer", None)
    if model is None or not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise BenchError(f"train.base folder {folder}: expected a transformer bi-encoder with a fast tokenizer "
                         "(model2vec distils through tokenizer.json)")
    pooling = next((getattr(m, "pooling_mode", None) for m in st if hasattr(m, "pooling_mode")), "mean")
    if pooling not in POOLING:
        raise BenchError(f"train.base folder {folder}: pooling '{pooling}' has no model2vec counterpart "
                         f"(expected one of {', '.join(POOLING)})")
    return model, tokenizer, POOLING[pooling]


def corpus_tokens(tokenizer, texts: list[str]) -> Counter:
    counts = Counter()
    for start in range(0, len(texts), 256):
        for enc in tokenizer(texts[start:start + 256], add_special_tokens=False, verbose=False)["input_ids"]:
            counts.update(enc)
    return counts


def trim(model, tokenizer, counts: Counter):
    """The teacher with its vocabulary cut to the corpus' tokens, single characters and special tokens."""
    from skeletoken import TokenizerModel
    from skeletoken.external.transformers import reshape_embeddings

    tm = TokenizerModel.from_transformers_tokenizer(tokenizer).prune_added_tokens()
    keep = {tokenizer.convert_ids_to_tokens(i) for i in counts} | set(tokenizer.all_special_tokens)
    prefixes = ("\u2581", "##")  # SentencePiece's word-start mark, WordPiece's continuation mark
    drop = [t for t in tm.sorted_vocabulary
            if t not in keep and len(t.removeprefix(prefixes[0]).removeprefix(prefixes[1])) > 1]
    if drop:
        tm = tm.remove_tokens_from_vocabulary(drop)
        model = reshape_embeddings(model, tm)
        tokenizer = tm.to_transformers()
    return model, tokenizer, len(drop)


def frequent_words(texts: list[str], n: int, min_count: int) -> list[str]:
    counts = Counter(w.strip(".,;:!?()[]\"'«»“”‘’") for t in texts for w in t.split())
    return [w for w, c in counts.most_common() if w and c >= min_count][:n]


def corpus_sif(static, texts: list[str], a: float) -> np.ndarray:
    """a / (a + p(token)), p counted on the corpus as the static model tokenizes it (unseen tokens weigh 1)."""
    counts = np.zeros(len(static.embedding), dtype=np.float64)
    for ids in static.tokenize(texts):
        np.add.at(counts, ids, 1)
    p = counts / max(counts.sum(), 1.0)
    return (a / (a + p)).astype(np.float32)


def static_distill(base: str, texts: list[str], out: Path, params: dict, seed: int) -> dict:
    try:
        from model2vec.distill import distill_from_model
    except ImportError:
        raise BenchError("recipe static-distill needs model2vec and skeletoken: "
                         "pip install 'model2vec==0.10.0' 'skeletoken==0.6.1'") from None
    weighting = params["weighting"]
    if weighting not in WEIGHTINGS:
        raise BenchError(f"train.params.weighting is {weighting!r}, expected one of {', '.join(WEIGHTINGS)}")
    pca = params["pca_dims"]
    if pca is not None and (not isinstance(pca, int) or isinstance(pca, bool) or pca <= 0):
        raise BenchError(f"train.params.pca_dims is {pca!r}, expected a positive whole number or null (no PCA)")
    np.random.seed(seed)
    model, tokenizer, pooling = teacher(base)
    teacher_vocab = len(tokenizer)
    counts = corpus_tokens(tokenizer, texts)
    removed = 0
    if params["trim"]:
        model, tokenizer, removed = trim(model, tokenizer, counts)
    words = frequent_words(texts, int(params["vocabulary_size"]), int(params["min_count"])) \
        if params["vocabulary_size"] else None
    sif = float(params["sif_coefficient"])
    logging.getLogger("model2vec").setLevel(logging.ERROR)  # one warning per added word that splits
    static = distill_from_model(model=model, tokenizer=tokenizer, vocabulary=words, device="cpu", pca_dims=pca,
                                sif_coefficient=sif if weighting == "zipf" else None, pooling=pooling,
                                quantize_to="float32")
    if weighting == "corpus":
        static.embedding = static.embedding * corpus_sif(static, texts, sif)[:, None]
    static.save_pretrained(str(out))
    return {"steps": None, "losses": [], "final_loss": None, "teacher_vocabulary": teacher_vocab,
            "trimmed_tokens": removed, "added_words": len(words or []), "tokens": len(static.embedding),
            "dims": int(static.dim), "pooling": pooling, "weighting": weighting, "corpus_texts": len(texts)}
