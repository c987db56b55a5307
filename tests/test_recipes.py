"""The recipe table: a new recipe is one module (DEFAULTS, prepare, train) and one row in
bench.models.recipe_table, as the README's "Extending bench" shows."""

import json
import sys
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.models import recipe_table, registry
from tests.conftest import TINY_DOCS, bm25_and_tiny, eval_tasks

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(first_line: str) -> str:
    """The README code block that starts with `first_line`, without it: the test runs what the README shows."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"```python\n{first_line}\n") + len(f"```python\n{first_line}\n")
    return text[start:text.index("```", start)]


COPY = readme_block("# bench/train/recipes/copy.py")


@pytest.fixture
def copy_recipe(tmp_path, monkeypatch):
    (tmp_path / "copy_recipe.py").write_text(COPY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    row = readme_block("# bench/models/recipe_table.py, in RECIPES").strip().rstrip(",")
    assert row == '"copy": from_module("bench.train.recipes.copy")'
    monkeypatch.setitem(recipe_table.RECIPES, "copy", recipe_table.from_module("copy_recipe"))
    yield
    sys.modules.pop("copy_recipe", None)


def test_every_recipe_row_names_pieces_that_exist():
    for name, row in recipe_table.RECIPES.items():
        assert isinstance(row.function("defaults"), dict), name
        assert callable(row.function("prepare")) and callable(row.function("train")), name
        assert row.base in (recipe_table.TRANSFORMER, recipe_table.STATIC) and row.transfer in ("", "delta", "merge")


def test_the_registry_checks_recipes_against_the_table(tmp_path, tiny_model_dir):
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + bm25_and_tiny(tiny_model_dir) + """  - name: tiny copy
    kind: bi-encoder
    loader: sentence-transformers
    train: {recipe: copy, base: tiny, data: [data.json]}
""", encoding="utf-8")
    with pytest.raises(BenchError, match="field 'train.recipe' is 'copy', expected one of mlm, contrastive"):
        registry.load_registry(models)
    models.write_text(models.read_text(encoding="utf-8").replace("recipe: copy", "recipe: static-distill"),
                      encoding="utf-8")
    with pytest.raises(BenchError, match="recipe 'static-distill' builds kind 'bi-encoder' with loader 'model2vec'"):
        registry.load_registry(models)


def test_a_new_recipe_is_one_module_and_one_row(copy_recipe, tmp_path, tiny_model_dir, monkeypatch):
    from bench.train import build, corpus

    planted = next(iter(TINY_DOCS.values()))[1]  # an evaluation paragraph equal to a training text
    eval_tasks(tmp_path, monkeypatch, docs={"x1": ("", planted)}, queries={"e1": ("Ne anlatılıyor?", "x1")})
    items = [{"ilacAdi": f"ilac{i}", "nedir": text} for i, (_, text) in enumerate(TINY_DOCS.values())]
    (tmp_path / "data.json").write_text(json.dumps({"prospektus": items}, ensure_ascii=False), encoding="utf-8")
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + bm25_and_tiny(tiny_model_dir) + """  - name: tiny copy
    kind: bi-encoder
    loader: sentence-transformers
    train: {recipe: copy, base: tiny, data: [data.json], params: {note: hello}}
""", encoding="utf-8")
    (record,) = build.build("tiny copy", models)
    assert record["recipe"] == "copy" and record["texts"] == len(TINY_DOCS) and record["note"] == "hello"
    assert record["params"] == {"note": "hello", "max_steps": None}
    assert record["leakage"]["tr_mini_wiki"] == {"questions": 0, "paragraphs": 1}  # prepare's paragraphs, checked
    copy = {e.name: e for e in registry.load_registry(models)}["tiny copy"]
    registry.check_available(copy)  # built: the registry finds the folder and its training.json
    with pytest.raises(BenchError, match="train.params.notes: unknown for recipe 'copy' \\(allowed: note, max_steps\\)"):
        corpus.params_for("copy", {"notes": 1}, None)
