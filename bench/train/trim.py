"""The trim-vocab recipe: keep the tokenizer pieces Turkish text uses, rebuild the Unigram tokenizer with only those
(scores kept, ids renumbered) and slice the word-embedding matrix to the same rows.

No weight is learned: a kept piece keeps its embedding row bit for bit, so a text whose pieces all survive gets the
same token sequence and the same embedding as from the untrimmed model. A text that used a dropped piece is segmented
afresh from the kept pieces (Viterbi over a smaller lattice); training.json records, per evaluation task, how many
texts that happens to.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from bench.data import tasks
from bench.errors import BenchError, Unavailable, one_line
from bench.train import leakage
from bench.train.corpus import Job, base_prefixes
from bench.data.retrieval import passage_text, passages_of

DEFAULTS = {"min_count": 1, "keep_chars": True, "wordfreq_words": 0}
WORDFREQ = "wordfreq==3.1.1"
BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
# Token ids a model config may name; they must survive and be renumbered with the rest.
CONFIG_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "unk_token_id",
              "mask_token_id", "decoder_start_token_id")
# Files of a slow (SentencePiece) tokenizer: they would still hold the whole vocabulary, so they are not copied.
SLOW_TOKENIZER_FILES = ("sentencepiece.bpe.model", "spiece.model", "tokenizer.model")


def check_params(label: str, params: dict) -> None:
    mc = params["min_count"]
    if not isinstance(mc, int) or isinstance(mc, bool) or mc < 1:
        raise BenchError(f"{label}: field 'train.params.min_count' must be an integer of 1 or more, got {mc!r}")
    if not isinstance(params["keep_chars"], bool):
        raise BenchError(f"{label}: field 'train.params.keep_chars' must be true or false, got {params['keep_chars']!r}")
    wf = params["wordfreq_words"]
    if not isinstance(wf, int) or isinstance(wf, bool) or wf < 0:
        raise BenchError(f"{label}: field 'train.params.wordfreq_words' must be an integer of 0 or more, got {wf!r}")


def turkish_title(word: str) -> str:
    return {"i": "İ", "ı": "I"}.get(word[:1], word[:1].upper()) + word[1:]


def wordfreq_words(label: str, n: int) -> tuple[list[str], dict]:
    """The n most frequent Turkish words of the wordfreq package, each lower-case and capitalised (a sentence's or a
    name's first word); and what training.json says of the source. Words, not sentences: no question in them."""
    try:
        import wordfreq
    except ImportError:
        raise BenchError(f"{label}: field 'train.params.wordfreq_words' needs the Python package 'wordfreq' "
                         f"(pip install '{WORDFREQ}')") from None
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("wordfreq")
    except PackageNotFoundError:
        release = "(version unknown)"
    words = [w for w in wordfreq.top_n_list("tr", n, wordlist="best") if w.strip()]
    return [f"{w} {turkish_title(w)}" for w in words], {
        "source": f"wordfreq {release}, Turkish list ('best'), top {n} words", "words": len(words),
        "licence": "wordfreq data CC BY-SA 4.0 (word frequencies from Wikipedia, subtitles, news, web text), code "
                   "Apache-2.0"}


def _leaflet_chunks(files: list[Path]) -> list:
    """Leaflet sections as the benchmark cuts them: chunked, each under its medicine's name and heading."""
    from bench.data import leaflets

    return [c for f in files if leaflets.is_leaflet_file(f) for c in leaflets.chunks(f)]


def prepare(job: Job):
    """(recipe arguments, training questions, training paragraphs).

    The pieces are counted on the texts as the model sees them, prefixes included ("query: " is not Turkish, and
    its pieces must survive). Questions equal to an evaluation question are left out, as are evaluation texts."""
    entry, conv, params, evals = job.entry, job.conv, job.params, job.evals
    prefixes = base_prefixes(entry, job.by_name)
    label = f"train of '{entry.name}'"
    check_params(label, params)
    chunks = _leaflet_chunks(job.files)
    # Counted as encoded (title, newline, text); the leakage check compares the bare text, as for other recipes.
    passages, paragraphs = [passage_text(c.title, c.text) for c in chunks], [c.text for c in chunks]
    questions = []
    if conv is not None:
        qids = sorted(conv.queries)
        keep, params["excluded_eval_questions"] = leakage.exclude_questions([conv.queries[q] for q in qids], evals)
        questions = [conv.queries[q] for q, k in zip(qids, keep) if k]
        passages += passages_of(conv.corpus)[1]
        paragraphs += [d["text"] for d in conv.corpus.values()]
    questions = [q for q in questions if q.strip()]
    passages = [p for p in passages if p.strip()]
    if not questions and not passages:
        raise BenchError(f"train.data of '{entry.name}': empty vocabulary corpus (no paragraph or question text in the "
                         "data files); expected leaflet JSON or SQuAD JSON with Turkish text")
    qp, pp = prefixes
    corpus = [qp + q for q in questions] + [pp + p for p in passages]
    sources = {"questions": len(questions), "paragraphs": len(passages)}
    if params["wordfreq_words"]:
        words, sources["wordfreq"] = wordfreq_words(label, params["wordfreq_words"])
        corpus += words
    return (corpus, evaluation_texts(prefixes), sources), questions, paragraphs


def evaluation_texts(prefixes: tuple[str, str], specs=None) -> dict:
    """{task: {"questions": [...], "paragraphs": [...]}} as the benchmark encodes them (prefix, title + text), or
    {task: reason} where the task's data is not here. Used only to report what trimming changed."""
    qp, pp = prefixes
    out = {}
    for spec in leakage.eval_specs() if specs is None else specs:
        try:
            data = tasks.load(spec)
        except (Unavailable, BenchError) as e:
            out[spec.name] = one_line(e)
            continue
        out[spec.name] = {"questions": [qp + q for q in data.queries.values()],
                          "paragraphs": [pp + data.doc_text(d) for d in data.corpus]}
    return out


def unigram_spec(folder: str | Path) -> dict:
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        # The folder is a cache path: named by the field, not quoted (it may expand BENCH_CACHE or a home folder).
        raise BenchError("train.base: the model has no tokenizer.json (trim-vocab needs a fast Unigram tokenizer)")
    spec = json.loads(path.read_text(encoding="utf-8"))
    kind = (spec.get("model") or {}).get("type")
    if kind != "Unigram":
        raise BenchError(f"train.base: the model's tokenizer.json has model type {kind!r}, expected 'Unigram' "
                         "(trim-vocab rebuilds SentencePiece Unigram tokenizers only)")
    return spec


def count_pieces(tokenizer, texts: list[str]) -> Counter:
    counts = Counter()
    for enc in tokenizer.encode_batch(texts, add_special_tokens=False):
        counts.update(enc.ids)
    return counts


def _post_processor_ids(pp: dict | None) -> list[int]:
    if not pp:
        return []
    kind = pp.get("type")
    if kind == "Sequence":
        return [i for p in pp.get("processors", []) for i in _post_processor_ids(p)]
    if kind == "TemplateProcessing":
        return [i for t in pp.get("special_tokens", {}).values() for i in t.get("ids", [])]
    if kind in ("RobertaProcessing", "BertProcessing"):
        return [pp["sep"][1], pp["cls"][1]]
    if kind == "ByteLevel":
        return []
    raise BenchError(f"tokenizer.json: post_processor type {kind!r} is not supported by trim-vocab "
                     "(expected TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel or Sequence)")


def _remap_post_processor(pp: dict | None, new_id: dict) -> None:
    if not pp:
        return
    kind = pp.get("type")
    if kind == "Sequence":
        for p in pp.get("processors", []):
            _remap_post_processor(p, new_id)
    elif kind == "TemplateProcessing":
        for t in pp.get("special_tokens", {}).values():
            t["ids"] = [new_id[i] for i in t.get("ids", [])]
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            pp[key] = [pp[key][0], new_id[pp[key][1]]]


def kept_rows(spec: dict, counts: Counter, params: dict, config_ids: list[int]) -> list[int]:
    """Old ids to keep, in their old order: used pieces, the tokens anything names by id, and (keep_chars) every
    one-character piece, so any string still segments down to characters where the original could."""
    model = spec["model"]
    vocab = model["vocab"]
    keep = {i for i, n in counts.items() if n >= int(params["min_count"])}
    keep |= {t["id"] for t in spec.get("added_tokens", [])}
    keep |= set(_post_processor_ids(spec.get("post_processor")))
    keep |= set(config_ids)
    if model.get("unk_id") is not None:
        keep.add(model["unk_id"])
    if isinstance(spec.get("padding"), dict) and spec["padding"].get("pad_id") is not None:
        keep.add(spec["padding"]["pad_id"])
    if params["keep_chars"]:
        keep |= {i for i, (piece, _) in enumerate(vocab) if len(piece) == 1}
    if model.get("byte_fallback"):
        keep |= {i for i, (piece, _) in enumerate(vocab) if BYTE_PIECE.match(piece)}
    # The Unigram model scores an unknown character at (lowest piece score - 10): keeping the lowest-scored piece
    # keeps that penalty, so the trimmed lattice is a subset of the original one with the same scores.
    if vocab:
        keep.add(min(range(len(vocab)), key=lambda i: vocab[i][1]))
    return sorted(keep)


def trimmed_spec(spec: dict, rows: list[int]) -> tuple[dict, dict]:
    """tokenizer.json with only `rows` (ids renumbered in order, scores kept); and the old -> new id map."""
    new_id = {old: new for new, old in enumerate(rows)}
    out = json.loads(json.dumps(spec))
    model = out["model"]
    vocab = spec["model"]["vocab"]
    model["vocab"] = [vocab[i] for i in rows if i < len(vocab)]
    # Added tokens beyond the model's vocabulary (e.g. a <mask> appended after it) follow the kept pieces.
    if any(i >= len(vocab) for i in rows[:len(model["vocab"])]):
        raise RuntimeError("kept rows are not ordered vocabulary first")
    if model.get("unk_id") is not None:
        model["unk_id"] = new_id[model["unk_id"]]
    for t in out.get("added_tokens", []):
        t["id"] = new_id[t["id"]]
    _remap_post_processor(out.get("post_processor"), new_id)
    if isinstance(out.get("padding"), dict) and out["padding"].get("pad_id") is not None:
        out["padding"]["pad_id"] = new_id[out["padding"]["pad_id"]]
    return out, new_id


def _slice_embeddings(encoder, rows: list[int], new_id: dict) -> None:
    import torch

    if encoder.get_output_embeddings() is not None:
        raise BenchError("train.base: the model has an output (LM) head tied to its vocabulary; trim-vocab slices "
                         "a bi-encoder's input embeddings only")
    old = encoder.get_input_embeddings()
    if max(rows) >= old.num_embeddings:
        raise BenchError(f"train.base: tokenizer id {max(rows)} is beyond the embedding matrix "
                         f"({old.num_embeddings} rows); tokenizer and model do not match")
    pad = new_id.get(old.padding_idx) if old.padding_idx is not None else None
    new = torch.nn.Embedding(len(rows), old.embedding_dim, padding_idx=pad, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[torch.tensor(rows)])
    encoder.set_input_embeddings(new)
    config = encoder.config
    config.vocab_size = len(rows)
    for key in CONFIG_IDS:
        if isinstance(getattr(config, key, None), int):
            setattr(config, key, new_id[getattr(config, key)])


def _config_ids(config, rows_available: int) -> list[int]:
    return [v for k in CONFIG_IDS if isinstance(v := getattr(config, k, None), int) and 0 <= v < rows_available]


def _fix_tokenizer_config(path: Path, new_id: dict) -> None:
    """tokenizer_config.json may list added tokens by id (added_tokens_decoder); renumber them."""
    if not path.is_file():
        return
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(cfg.get("added_tokens_decoder"), dict):
        cfg["added_tokens_decoder"] = {str(new_id[int(k)]): v for k, v in cfg["added_tokens_decoder"].items()}
        path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def changed(before, after, texts: list[str]) -> int:
    """How many texts get another token sequence (compared as piece strings: the ids differ by construction)."""
    a = before.encode_batch(texts, add_special_tokens=False)
    b = after.encode_batch(texts, add_special_tokens=False)
    return sum(x.tokens != y.tokens for x, y in zip(a, b))


def _dropped_tokens(before, kept: set, texts: list[str]) -> tuple[int, int]:
    """(tokens of the untrimmed segmentation whose piece was dropped, all its tokens)."""
    encs = before.encode_batch(texts, add_special_tokens=False)
    return sum(t not in kept for e in encs for t in e.tokens), sum(len(e.tokens) for e in encs)


def _shares(before, after, evaluation: dict) -> dict:
    """Per task and role: texts whose token sequence changed; and, finer, the share of their tokens (untrimmed
    segmentation) that fell on a dropped piece (one dropped piece re-segments a 300-token paragraph)."""
    out = {}
    kept = set(after.get_vocab())
    for task, texts in evaluation.items():
        if not isinstance(texts, dict):
            out[task] = {"unavailable": texts}
            continue
        row = {}
        for role in ("questions", "paragraphs"):
            n = len(texts[role])
            c = changed(before, after, texts[role]) if n else 0
            lost, tokens = _dropped_tokens(before, kept, texts[role]) if n else (0, 0)
            row[role] = {"texts": n, "changed": c, "share_changed": round(c / n, 4) if n else None,
                         "tokens_on_dropped_pieces": round(lost / tokens, 4) if tokens else None}
        total = row["questions"]["texts"] + row["paragraphs"]["texts"]
        both = row["questions"]["changed"] + row["paragraphs"]["changed"]
        row["share_changed"] = round(both / total, 4) if total else None
        out[task] = row
    return out


def _check_saved(out: Path, trimmed_tok, rows: int, sample: list[str]) -> None:
    """The folder as transformers loads it must tokenize like the rebuilt tokenizer (a stale slow-tokenizer file or
    a config naming old ids would not)."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(out)
    if len(loaded) != rows:
        raise RuntimeError(f"trimmed tokenizer has {len(loaded)} tokens, the embedding matrix {rows} rows")
    for text in sample:
        want = trimmed_tok.encode(text).ids
        if loaded(text, truncation=False)["input_ids"] != want:
            raise RuntimeError("the saved tokenizer does not tokenize like the rebuilt one")


def _whole_texts(tokenizer):
    """For counting and comparing: a saved tokenizer.json may carry truncation (a trained model's max_seq_length),
    which would leave the pieces past it uncounted."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def trim_vocab(base: str, corpus: list[str], evaluation: dict, sources: dict, out: Path, params: dict,
               seed: int) -> dict:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    from bench.models.encoders import dir_bytes

    spec = unigram_spec(base)
    original = _whole_texts(Tokenizer.from_str(json.dumps(spec)))
    st = SentenceTransformer(base, device="cpu", local_files_only=True)
    encoder = st[0].auto_model
    params_before = sum(p.numel() for p in st.parameters())
    counts = count_pieces(original, corpus)
    rows_before = encoder.get_input_embeddings().num_embeddings
    rows = kept_rows(spec, counts, params, _config_ids(encoder.config, rows_before))
    new_spec, new_id = trimmed_spec(spec, rows)
    trimmed = _whole_texts(Tokenizer.from_str(json.dumps(new_spec)))
    _slice_embeddings(encoder, rows, new_id)
    st.save(str(out), create_model_card=False)  # a card's usage example would encode with the untrimmed tokenizer
    for name in SLOW_TOKENIZER_FILES:
        (out / name).unlink(missing_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(new_spec, ensure_ascii=False), encoding="utf-8")
    _fix_tokenizer_config(out / "tokenizer_config.json", new_id)
    _check_saved(out, trimmed, len(rows), corpus[:20])
    vocab = spec["model"]["vocab"]
    used = sum(1 for i in counts if i < len(vocab))
    return {
        "steps": 0, "losses": [], "final_loss": None,
        "pieces_original": len(vocab), "pieces_kept": len(new_spec["model"]["vocab"]),
        "pieces_used_by_corpus": used,
        "single_character_pieces_kept": sum(1 for p, _ in new_spec["model"]["vocab"] if len(p) == 1),
        "embedding_rows_before": rows_before, "embedding_rows_after": len(rows),
        "vocabulary_sources": sources, "vocabulary_texts": len(corpus),
        "vocabulary_tokens": int(sum(counts.values())),
        # Every piece of the counting corpus survives with min_count 1, so this is 0 there: a self-check.
        "vocabulary_texts_changed": changed(original, trimmed, corpus),
        "params_before": int(params_before), "params_after": int(sum(p.numel() for p in st.parameters())),
        "fp32_bytes_before": dir_bytes(base), "fp32_bytes_after": dir_bytes(out),
        "evaluation_texts_changed": _shares(original, trimmed, evaluation),
    }
