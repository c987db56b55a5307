"""Which models the training report's ablation shows, in which order, under which short label, and which training
steps it judges: all read from models.yaml, so a new trained entry needs no change here.

- A rung of the ladder is an entry with a `short:` label.
- Order: the lexical baseline, the untrained model the trained rungs start from, the trained rungs, the pipelines.
  Trained rungs come in series (rungs linked by `train.base` or by a control, below), a series where its first
  entry stands in the registry; within one, by distance from the base along `train.base`, then in the order a model
  goes through the recipes (recipe_table.RECIPES: MLM before contrastive, a merge last).
- Steps: each trained rung against the model its `train.base` chain starts from; and a rung built on another trained
  rung against its control, the rung trained the same way (recipe, data, params, seed) straight from that rung's
  base (MLM+contrastive against contrastive: what the MLM stage added).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.measure.results import ResultRecord
from bench.models import recipe_table, registry

REFERENCE_VARIANT = "torch-fp32"


@dataclass
class Ladder:
    models: list[str] = field(default_factory=list)  # rungs, in table order
    short: dict[str, str] = field(default_factory=dict)  # rung -> its short label
    lexical: str | None = None  # the lexical baseline: "Δ vs BM25"
    base: str | None = None  # the untrained model the trained rungs start from: "Δ vs base"
    trained: list[str] = field(default_factory=list)  # trained bi-encoder rungs
    steps: list[tuple[str, str]] = field(default_factory=list)  # (before, after) pairs the verdicts judge


def _chain(entry, by_name: dict) -> list:
    """The entry, then its train.base, and so on up to the untrained model it starts from."""
    chain, seen = [], set()
    while entry is not None and entry.name not in seen:
        seen.add(entry.name)
        chain.append(entry)
        entry = by_name.get(entry.train.get("base")) if entry.train else None
    return chain


def _control(entry, by_name: dict, trained: list):
    """The rung trained as `entry` was, straight from the base of the trained rung `entry` is built on."""
    base = by_name.get(entry.train.get("base"))
    if base is None or base not in trained:
        return None
    same = {k: v for k, v in entry.train.items() if k != "base"}
    return next((c for c in trained if c is not entry and c.train.get("base") == base.train.get("base")
                 and {k: v for k, v in c.train.items() if k != "base"} == same), None)


def ladder(entries: list) -> Ladder:
    by_name = {e.name: e for e in entries}
    index = {e.name: i for i, e in enumerate(entries)}
    rungs = [e for e in entries if e.short]
    trained = [e for e in rungs if e.train and e.kind == "bi-encoder"]
    controls = {e.name: _control(e, by_name, trained) for e in trained}
    series = {e.name: e.name for e in trained}  # union-find over the base and control links

    def find(name: str) -> str:
        while series[name] != name:
            name = series[name]
        return name

    for e in trained:
        for other in (by_name.get(e.train.get("base")), controls[e.name]):
            if other is not None and other.name in series:
                a, b = sorted((find(e.name), find(other.name)), key=index.get)
                series[b] = a
    recipes = list(recipe_table.RECIPES)

    def rank(e) -> tuple:
        recipe = e.train.get("recipe")
        return (index[find(e.name)], len(_chain(e, by_name)), recipes.index(recipe) if recipe in recipes else
                len(recipes), index[e.name])

    trained.sort(key=rank)
    roots = [e for e in rungs if not e.train and e.kind not in ("lexical", "pipeline")]
    ordered = ([e for e in rungs if e.kind == "lexical"] + roots + trained
               + [e for e in rungs if e.kind == "pipeline"])
    ordered += [e for e in rungs if e not in ordered]
    bases = [_chain(e, by_name)[-1].name for e in trained]
    steps = []
    for e in trained:
        steps.append((_chain(e, by_name)[-1].name, e.name))
        if controls[e.name] is not None:
            steps.append((controls[e.name].name, e.name))
    return Ladder(models=[e.name for e in ordered], short={e.name: e.short for e in rungs},
                  lexical=next((e.name for e in ordered if e.kind == "lexical"), None),
                  base=bases[0] if bases else next((e.name for e in roots), None),
                  trained=[e.name for e in trained], steps=steps)


@dataclass
class Rows:
    """The models a training report shows, and which training run stands behind each."""
    ladder: Ladder
    models: list[str]  # table order
    cross_encoders: set[str]
    pipelines: dict[str, tuple[str, str]] = field(default_factory=dict)  # pipeline -> (first stage, cross-encoder)

    @property
    def trained(self) -> set[str]:
        """Rows that exist only because of training."""
        return set(self.ladder.trained) | self.cross_encoders | set(self.pipelines)

    @property
    def listed_when_missing(self) -> set[str]:
        """Skipped and failed rows listed under each table."""
        return set(self.models) | self.cross_encoders


def rows_for(records: list[ResultRecord], runs: dict, entries: list) -> Rows:
    """The ladder, then every pipeline whose last stage is a trained cross-encoder: from the registry in its order,
    then any only the records name (a new re-ranking pipeline needs no change here)."""
    cross_encoders = ({n for n, r in runs.items() if r.get("recipe") == "cross-encoder"}
                      | {e.name for e in entries if e.train and e.kind == "cross-encoder"})
    stages = [(e.name, list(e.stages)) for e in entries if e.kind == "pipeline" and e.stages]
    stages += sorted({(r.model, tuple(r.stages)) for r in records if r.stages})
    steps = ladder(entries)
    rows = Rows(ladder=steps, models=list(steps.models), cross_encoders=cross_encoders)
    for name, parts in stages:
        first, last = registry.stage_name(parts[0]), registry.stage_name(parts[-1])
        if name in rows.pipelines or last not in cross_encoders:
            continue
        rows.models.append(name)
        rows.pipelines[name] = (first, last)
    return rows


def reference(rows: list[ResultRecord], variant: str) -> ResultRecord | None:
    """The row a model is compared with: the same variant where it has one, else its torch-fp32 row."""
    by_variant = {r.variant: r for r in rows}
    return by_variant.get(variant) or by_variant.get(REFERENCE_VARIANT)
