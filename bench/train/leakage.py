"""Leakage check: training text that equals an evaluation question or paragraph (after Turkish-aware folding).

A training question equal to an evaluation question fails the build; equal paragraphs are counted and reported
(MLM may read the leaflet text the drug task searches: unsupervised domain adaptation, said so in training.json).

The held-out era's task (a squad task with `paragraphs: era`) is stricter for the entries built to be judged on it
(`train.hold_out: era`): one equal question or paragraph fails the build. Every other trained entry reads that era
on purpose; its counts there are recorded under `trained_on`, never fail the build, and none of its training
questions is dropped for equalling one of that task's.
"""

from __future__ import annotations

import unicodedata

from bench.data import tasks
from bench.errors import BenchError, Unavailable, one_line
from bench.data.convert import turkish_lower

EVAL_TASKS = ("tr_mini_wiki", "xquad_tr", "drug_leaflets", "thquad_dev", "thquad_1792_1922")


def fold(text: str) -> str:
    return " ".join(turkish_lower(unicodedata.normalize("NFC", text)).split())


def _eval_texts(spec) -> tuple[set[str], set[str]]:
    data = tasks.load(spec)
    # A pooled task's distractors are training paragraphs by design: only the paragraphs its questions are about count.
    docs = {d for rel in data.qrels.values() for d in rel} if spec.pool else data.corpus
    # Leaflet passages carry "name / heading" as a title; comparing the bare text finds a copied section too.
    return {fold(q) for q in data.queries.values()}, {fold(data.corpus[d]["text"]) for d in docs}


def eval_specs() -> list:
    """The evaluation tasks present in the tasks folder (BENCH_TASKS_DIR in tests)."""
    return [s for s in tasks.all_specs() if s.name in EVAL_TASKS]


def held_out_tasks(specs=None) -> set[str]:
    """The evaluation tasks of the held-out era (`paragraphs: era`): only `train.hold_out: era` builds stay off them."""
    return {s.name for s in (eval_specs() if specs is None else specs) if s.paragraphs == "era"}


def for_build(evals: dict, hold_out: str | None, held_out: set[str]) -> tuple[dict, set[str], set[str]]:
    """(the evaluation texts training questions are dropped for, tasks trained on by design, tasks checked strictly)
    for a build that holds out `hold_out` (None: it reads every era)."""
    if hold_out:
        return evals, set(), set(held_out)
    return {k: v for k, v in evals.items() if k not in held_out}, set(held_out), set()


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


def check(questions: list[str], paragraphs: list[str], specs=None, evals: dict | None = None,
          trained_on: set[str] = frozenset(), strict: set[str] = frozenset()) -> dict:
    """{task: {questions: n, paragraphs: n}} of training texts equal to that task's; raises on any question, and on
    any paragraph of a `strict` task. `trained_on` tasks are counted, marked, and never raise."""
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
        if name in trained_on:
            counts[name]["trained_on"] = True
    for name in sorted(strict):
        n = (counts.get(name) or {}).get("paragraphs")
        if n:
            raise BenchError(f"leakage: {n} training paragraph(s) equal a paragraph of held-out task '{name}' "
                             "(train.hold_out: the build must never read the held-out era); remove that era's file "
                             "from train.data")
    leaked = {name: c["questions"] for name, c in counts.items() if c.get("questions") and name not in trained_on}
    if leaked:
        name, n = next(iter(leaked.items()))
        raise BenchError(f"leakage: {n} training question(s) equal a question of evaluation task '{name}' "
                         "(after case and whitespace folding); remove them from the training data, or set "
                         "train.params.exclude_eval_questions: true to drop them")
    return counts
