"""The training report's ladder, labels and steps, and students.md's cast, follow models.yaml: a registry with other
names gives another ladder, with no change to the code."""

from __future__ import annotations

from pathlib import Path

from bench.models import recipe_table, registry
from bench.reports import ablation, students

REPO = Path(__file__).resolve().parent.parent

ROOT = """  - name: root model
    short: the root
    kind: bi-encoder
    loader: sentence-transformers
    source: some/hub-id
  - name: words
    short: lexical
    kind: lexical
    loader: bm25
    source: bm25s
"""


def trained(name, recipe, base, short="", seed=13, role="", params="{lr: 1.0e-5}", kind="bi-encoder"):
    loader = recipe_table.RECIPES[recipe].loader
    lines = [f"  - name: {name}", f"    kind: {kind}", f"    loader: {loader}"]
    lines += [f"    short: {short}"] if short else []
    lines += [f"    role: {role}"] if role else []
    lines += [f"    train: {{recipe: {recipe}, base: {base}, data: [x.json], params: {params}, seed: {seed}}}"]
    return "\n".join(lines) + "\n"


def load(tmp_path, body: str, profiles: str = "") -> list:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n" + body + profiles, encoding="utf-8")
    return registry.load_registry(path)


def test_the_ladder_its_labels_and_its_steps_come_from_the_train_base_chains(tmp_path):
    # Registry order on purpose not the ladder's: the contrastive rung first, the pipeline before the trained ones.
    entries = load(tmp_path, ROOT + trained("c", "contrastive", "root model", short="C") + """  - name: fused
    short: fusion
    kind: pipeline
    loader: hybrid
    stages: ["words", "root model"]
""" + trained("m", "mlm", "root model", short="M")
        + trained("m then c", "contrastive", "m", short="M+C")
        + trained("m then c, averaged", "merge", "m then c", short="avg", params="{with: root model}")
        + trained("c, seed 2", "contrastive", "root model", seed=2)  # no short label: not a rung
        + trained("ce", "cross-encoder", "root model", kind="cross-encoder"))
    ladder = ablation.ladder(entries)
    assert ladder.models == ["words", "root model", "m", "c", "m then c", "m then c, averaged", "fused"]
    assert (ladder.lexical, ladder.base) == ("words", "root model")
    assert ladder.trained == ["m", "c", "m then c", "m then c, averaged"]
    assert ladder.short["m then c"] == "M+C" and ladder.short["root model"] == "the root"
    # Each rung against the root; "m then c" also against its control "c" (trained the same way from the root).
    assert ladder.steps == [("root model", "m"), ("root model", "c"), ("root model", "m then c"),
                            ("c", "m then c"), ("root model", "m then c, averaged")]
    rows = ablation.rows_for([], {}, entries)
    assert rows.cross_encoders == {"ce"} and "c, seed 2" not in rows.models


def test_two_series_stay_apart_and_a_different_seed_is_no_control(tmp_path):
    entries = load(tmp_path, ROOT + trained("c1", "contrastive", "root model", short="c1")
                   + trained("m1", "mlm", "root model", short="m1")
                   + trained("m1c", "contrastive", "m1", short="m1c", seed=99)  # not trained as c1 was
                   + trained("c2", "contrastive", "root model", short="c2", params="{lr: 3.0e-5}")
                   + trained("m2", "mlm", "root model", short="m2", params="{lr: 3.0e-5}")
                   + trained("m2c", "contrastive", "m2", short="m2c", params="{lr: 3.0e-5}"))
    ladder = ablation.ladder(entries)
    # c1 and m1 are not linked (m1c has no control), so three series: {c1}, {m1, m1c}, {c2, m2, m2c}.
    assert ladder.trained == ["c1", "m1", "m1c", "m2", "c2", "m2c"]
    assert ("c1", "m1c") not in ladder.steps and ("c2", "m2c") in ladder.steps


def test_a_registry_without_short_labels_has_no_ladder(tmp_path):
    only_words = "  - name: words\n    kind: lexical\n    loader: bm25\n    source: bm25s\n"
    ladder = ablation.ladder(load(tmp_path, only_words))
    assert ladder.models == [] and ladder.steps == [] and ladder.base is None


def test_the_real_registry_gives_the_published_ladder():
    ladder = ablation.ladder(registry.load_registry(REPO / "models.yaml"))
    assert len(ladder.models) == 11 and ladder.models[0] == ladder.lexical and ladder.models[1] == ladder.base
    assert len(ladder.steps) == 10 and all(ladder.short.get(n) for step in ladder.steps for n in step)


def test_the_students_cast_comes_from_the_profile_the_roles_and_the_prune_base(tmp_path):
    body = (ROOT + trained("teacher", "contrastive", "root model", role="the teacher")
            + trained("half", "prune", "teacher", role="half the layers", params="{layers: 6}")
            + trained("half, trimmed", "trim-vocab", "half", role="half, fewer words")
            + trained("flat", "static-distill", "teacher", role="static"))
    profiles = """profiles:
  students:
    entries: ["flat", "words", "half", "teacher", "half, trimmed", "root model"]
"""
    entries = load(tmp_path, body, profiles)
    cast = students.cast(entries, registry.load_profiles(tmp_path / "models.yaml"))
    assert [n for n, _ in cast.rows] == ["flat", "words", "half", "teacher", "half, trimmed", "root model"]
    assert dict(cast.rows)["half"] == "half the layers"
    assert (cast.bm25, cast.base, cast.teacher) == ("words", "root model", "teacher")
    assert cast.students == ("half", "half, trimmed") and cast.static == ("flat",)
