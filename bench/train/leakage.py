"""Leakage check: training text that equals an evaluation question or paragraph (after Turkish-aware folding).

A training question equal to an evaluation question fails the build; equal paragraphs are counted and reported
(MLM may read the leaflet text the drug task searches: unsupervised domain adaptation, said so in training.json).
"""

from __future__ import annotations

import unicodedata

from bench.data import tasks
from bench.errors import BenchError, Unavailable, one_line
from bench.models.lexical import turkish_lower

EVAL_TASKS = ("tr_mini_wiki", "xquad_tr", "drug_leaflets", "thquad_dev")


def fold(text: str) -> str:
    return " ".join(turkish_lower(unicodedata.normalize("NFC", text)).split())


def _eval_texts(spec) -> tuple[set[str], set[str]]:
    data = tasks.load(spec)
    # Leaflet passages carry "name / heading" as a title; comparing the bare text finds a copied section too.
    return {fold(q) for q in data.queries.values()}, {fold(d["text"]) for d in data.corpus.values()}


def eval_specs() -> list:
    """The evaluation tasks present in the tasks folder (BENCH_TASKS_DIR in tests)."""
    return [s for s in tasks.all_specs() if s.name in EVAL_TASKS]


def load_eval(specs=None) -> dict:
    """{task: (folded questions, folded paragraphs)}, or {task: reason} for a task whose data is not here."""
    out = {}
    for spec in eval_specs() if specs is None else specs:
        try:
            out[spec.name] = _eval_texts(spec)
        except (Unavailable, BenchError) as e:
            out[spec.name] = one_line(e)
    return out


def exclude_questions(questions: list[str], evals: dict) -> tuple[list[bool], dict]:
    """Which training questions to keep, and per task how many were dropped for equalling one of its questions."""
    sets = {name: v[0] for name, v in evals.items() if isinstance(v, tuple)}
    keep, dropped = [], {}
    for q in questions:
        hits = [name for name, qs in sets.items() if fold(q) in qs]
        for name in hits:
            dropped[name] = dropped.get(name, 0) + 1
        keep.append(not hits)
    return keep, dropped


def check(questions: list[str], paragraphs: list[str], specs=None, evals: dict | None = None) -> dict:
    """{task: {questions: n, paragraphs: n}} of training texts equal to that task's; raises on any question."""
    evals = load_eval(specs) if evals is None else evals
    train_q = {fold(q) for q in questions}
    train_p = {fold(p) for p in paragraphs}
    counts = {}
    for name, texts in evals.items():
        if not isinstance(texts, tuple):
            counts[name] = {"unavailable": texts}
            continue
        eq, ep = texts
        counts[name] = {"questions": len(train_q & eq), "paragraphs": len(train_p & ep)}
    leaked = {name: c["questions"] for name, c in counts.items() if c.get("questions")}
    if leaked:
        name, n = next(iter(leaked.items()))
        raise BenchError(f"leakage: {n} training question(s) equal a question of evaluation task '{name}' "
                         "(after case and whitespace folding); remove them from the training data, or set "
                         "train.params.exclude_eval_questions: true to drop them")
    return counts
