"""Recipe `static-distill`: a model2vec static model (one vector per token, no transformer at query time) from a
teacher bi-encoder folder, with the teacher's token vocabulary trimmed to what Turkish text uses. Recipe
`static-tune` (at the end) trains such a model further on the teacher's sentence embeddings and on pairs.

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


def _recording(cls):
    """`cls` whose fit also keeps every training step's loss (model2vec's loop logs them to a progress bar only)."""
    import torch

    class Logged(torch.nn.Module):
        def __init__(self, inner, log: list):
            super().__init__()
            self.inner, self.log = inner, log

        def forward(self, head_out, y):
            loss = self.inner(head_out, y)
            if torch.is_grad_enabled():  # validation runs under no_grad
                self.log.append(round(float(loss.detach()), 6))
            return loss

    class Recording(cls):
        def _train(self, loss_function, *args, **kwargs):
            self.step_losses = []
            return super()._train(Logged(loss_function, self.step_losses), *args, **kwargs)

    return Recording


def _validation_size(n: int, what: str) -> int:
    # model2vec's pair loss needs two pairs on each side of its validation split (the other is the negative).
    if n < 4:
        raise BenchError(f"train.data: {n} {what}; recipe static-tune needs 4 or more")
    return max(2, round(0.1 * n))


def teacher_targets(teacher: str, texts: list[str], max_seq_length: int) -> np.ndarray:
    """The teacher's normalised embeddings of `texts`, the fit's targets: most of a static-tune build's time on two
    cores. Kept in the cache (teacher_embeddings/), so entries that share a teacher and training texts (tuned and
    corpus-tuned) encode them once; keyed by the teacher folder's fingerprint, which a rebuild changes."""
    import hashlib
    import os

    from bench.models.encoders import fingerprint
    from bench.paths import cache_dir

    digest = hashlib.sha256(f"{fingerprint(teacher)}\x00{max_seq_length}".encode())
    for t in texts:
        digest.update(b"\x00" + t.encode("utf-8"))
    path = cache_dir() / "teacher_embeddings" / f"{digest.hexdigest()}.npy"
    if path.is_file():
        return np.load(path)
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(teacher, device="cpu", local_files_only=True)
    st.max_seq_length = max_seq_length
    targets = st.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npy")  # renamed into place whole: never a half-written file
    np.save(tmp, targets)
    os.replace(tmp, path)
    return targets


def static_tune(base: str, teacher: str | None, fit: tuple[list[str], list[str]], pairs: list[tuple[str, str]],
                out: Path, params: dict, seed: int) -> dict:
    """Recipe `static-tune`, on model2vec's trainers (tokenlearn's idea on a small corpus, then its pair trainer):

    1. fit (fit_epochs > 0): the static model plus a linear head regress the teacher's embeddings of the training
       texts (cosine loss, StaticModelForSimilarity); the head is dropped after, the token vectors and weights keep
       what they learned. model2vec's distillation embeds each token alone; this teaches them how the teacher
       reads whole questions and paragraphs.
    2. pairs (pairs_epochs > 0): InfoNCE with in-batch negatives on (question, paragraph) pairs
       (StaticModelForPairSimilarity), as the contrastive recipe does for a transformer.

    Each stage stops early on a seeded 10% validation split (`patience` checks without improvement) and keeps its
    best state. --max-steps gives each stage one epoch. Measured on the 2-core AMD EPYC, from e5-small (full)
    static, teacher the averaged contrastive (full) model (nDCG@10 drug_leaflets / thquad_dev / xquad_tr /
    tr_mini_wiki): distilled 0.209 / 0.841 / 0.586 / 0.558; this recipe (seed 13, about 5 min, most of it the
    teacher's encoding) 0.335 / 0.927 / 0.677 / 0.588. Exploration runs (seed 42): fit only 0.333 / 0.881 / 0.686
    / 0.640; pairs only, 5 epochs, 0.255 / 0.926 / 0.590 / 0.532; 20 epochs 0.231 / 0.911 / 0.590 / 0.528 (the
    pairs overfit the history domain, so 5); fit then pairs 0.355 / 0.923 / 0.669 / 0.605. Both stages are kept:
    the pairs add 0.02-0.04 on the two target tasks and cost 0.02-0.04 on the other two.
    """
    import torch
    from model2vec import StaticModel
    from model2vec.train import StaticModelForPairSimilarity, StaticModelForSimilarity

    one = bool(params.get("max_steps"))
    fit_epochs = min(int(params["fit_epochs"]), 1) if one else int(params["fit_epochs"])
    pairs_epochs = min(int(params["pairs_epochs"]), 1) if one else int(params["pairs_epochs"])
    patience = int(params["patience"])
    torch.manual_seed(seed)
    model = StaticModel.from_pretrained(base, force_download=False)
    fit_losses, pairs_losses = [], []
    if fit_epochs > 0 and teacher is not None:
        targets = teacher_targets(teacher, fit[1], int(params["max_seq_length"]))
        tuner = _recording(StaticModelForSimilarity).from_static_model(model=model, n_layers=0)
        tuner.fit(fit[0], targets, learning_rate=float(params["fit_lr"]), max_epochs=fit_epochs,
                  early_stopping_patience=patience, test_size=_validation_size(len(fit[0]), "fit texts"),
                  device="cpu", random_seed=seed)
        fit_losses, model = tuner.step_losses, tuner.to_static_model()
    if pairs_epochs > 0:
        tuner = _recording(StaticModelForPairSimilarity).from_static_model(model=model, n_layers=0)
        tuner.fit(text_a=[a for a, _ in pairs], text_b=[b for _, b in pairs], learning_rate=float(params["pairs_lr"]),
                  batch_size=int(params["batch_size"]), max_epochs=pairs_epochs, early_stopping_patience=patience,
                  test_size=_validation_size(len(pairs), "question-paragraph pairs"),
                  temperature=float(params["temperature"]), device="cpu", random_seed=seed)
        pairs_losses, model = tuner.step_losses, tuner.to_static_model()
    model.save_pretrained(str(out))
    losses = fit_losses + pairs_losses
    return {"steps": len(losses), "losses": losses, "final_loss": losses[-1] if losses else None,
            "examples": len(pairs) if pairs_losses else 0, "fit_texts": len(fit[0]) if fit_losses else 0,
            "fit_steps": len(fit_losses),  # losses[:fit_steps] are the fit's, the rest the pair stage's
            "tokens": len(model.embedding), "dims": int(model.dim)}
