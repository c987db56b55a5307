"""`bench search`: index a folder of documents with a chosen encoder and answer questions from the command line."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.data import leaflets
from bench.data.convert import nfc, read_text
from bench.data.chunking import Chunk, chunk_text
from bench.errors import BenchError
from bench.paths import cache_dir

SUFFIXES = (".txt", ".md", ".pdf", ".json")
FALLBACK = ("multilingual-e5-small (Q4-dequantized)", "onnx-int8")
PREFERRED_TASKS = ("drug_leaflets", "tr_mini_wiki", "xquad_tr")
BUDGET_MS = 50


def default_index() -> Path:
    return cache_dir() / "search" / "default"


def recommended_model(results_path: Path) -> tuple[str, str, str]:
    """(model, variant, why): the leaderboard's best bi-encoder within 50 ms per query, else a stated fallback."""
    from bench.reports import results

    if results_path.exists():
        recs = [r for r in results.read(results_path) if r.status == "ok" and r.kind == "bi-encoder"
                and r.latency_p50_ms is not None and r.latency_p50_ms <= BUDGET_MS]
        for task in PREFERRED_TASKS:
            mine = [r for r in recs if r.task == task]
            if mine:
                best = max(mine, key=lambda r: (r.ndcg_at_10, -r.latency_p50_ms))
                return best.model, best.variant, f"best bi-encoder under {BUDGET_MS} ms on {task} in {results_path}"
    return FALLBACK[0], FALLBACK[1], f"fallback (no leaderboard at {results_path})"


def file_chunks(path: Path, root: Path) -> list[Chunk]:
    rel = str(path.relative_to(root))
    if path.suffix.lower() == ".pdf":
        return _pdf_chunks(path, rel)
    if path.suffix.lower() == ".json":
        if not leaflets.is_leaflet_file(path):
            return []
        out = leaflets.chunks(path)
        for c in out:
            # Two leaflet files may hold one medicine: ids must stay unique across the index.
            c.id, c.source = f"{rel}#{c.id}", rel
        return out
    text = nfc(read_text(path))
    return chunk_text(rel, path.stem, text, rel, meta={}) if text.strip() else []


def _pdf_chunks(path: Path, rel: str) -> list[Chunk]:
    from pypdf import PdfReader

    try:
        pages = [p.extract_text() or "" for p in PdfReader(str(path)).pages]
    except Exception as e:  # a damaged PDF can fail anywhere inside the parser
        # Only the exception's type: its text may quote bytes of the file.
        raise BenchError(f"{path}: unreadable PDF ({type(e).__name__}); re-export it or remove it from the folder") from None
    out = []
    for n, text in enumerate(pages, 1):
        if text.strip():
            out += chunk_text(f"{rel}-p{n}", path.stem, nfc(text), rel, f"page {n}")
    return out


def _signature(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class BrokenIndex(BenchError):
    """An index whose files do not agree (an interrupted or damaged write): rebuilt, never reused."""

    def __init__(self, index: Path, problem: str):
        self.what = f"{index}: search index is damaged ({problem})"
        super().__init__(f"{self.what}; re-index with `python -m bench search index DIR --index {index}`")


def lock_path(index: Path) -> Path:
    return index.parent / f".{index.name}.lock"


@contextmanager
def _locked(index: Path):
    """One writer per index at a time; a second `search index` waits, then reuses what the first wrote."""
    index.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(index), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another `bench search index` writing {index} ...", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


INDEX_FILES = ("manifest.json", "chunks.jsonl", "embeddings.npy")


def check_index_path(index: Path) -> None:
    """Before any model is loaded: a problem here would otherwise surface only after all the encoding."""
    if index.exists() and not index.is_dir():
        raise BenchError(f"--index {index}: not a folder (it names a file); pass a folder for the index")
    # The index folder is replaced whole on each build: never take over a folder holding anything else.
    if index.is_dir() and any(p.name not in INDEX_FILES for p in index.iterdir()):
        raise BenchError(f"--index {index}: folder holds files that are not a search index; pass a new or empty folder")


def source_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BenchError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise BenchError(f"{folder}: no .txt, .md, .pdf or leaflet .json files to index")
    return files


def _has_index_files(index: Path) -> bool:
    return any((index / name).exists() for name in INDEX_FILES)


def _old_index(index: Path):
    if not _has_index_files(index):
        return None, [], None
    try:
        return load(index)
    except BrokenIndex as e:
        print(f"{e.what}; rebuilding it from scratch", flush=True)
        return None, [], None


def build(folder: Path, candidate, model: str, variant: str, index: Path) -> dict:
    """Embed what changed since the last build; unchanged files keep their passages and vectors."""
    check_index_path(index)
    files = source_files(folder)
    with _locked(index):
        old_manifest, old_chunks, old_vecs = _old_index(index)
        if old_manifest and (old_manifest["model"], old_manifest["variant"]) != (model, variant):
            raise BenchError(f"{index}: index was built with {old_manifest['model']} [{old_manifest['variant']}], not "
                             f"{model} [{variant}]; pass another --index or delete that folder")
        chunks, vectors, manifest_files, stats = _collect(folder, files, candidate, old_manifest, old_chunks, old_vecs)
        if not chunks:
            raise BenchError(f"{folder}: the files hold no text to index")
        manifest = {"model": model, "variant": variant, "folder": str(folder.resolve()), "files": manifest_files}
        _write(index, manifest, chunks, np.stack(vectors).astype(np.float32))
    return {**stats, "passages": len(chunks)}


def _collect(folder: Path, files: list[Path], candidate, old_manifest, old_chunks, old_vecs):
    old_files = old_manifest["files"] if old_manifest else {}
    old_rows = {c.id: i for i, c in enumerate(old_chunks)}
    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    manifest_files, stats = {}, {"reused": 0, "indexed": 0, "skipped": 0}
    for path in tqdm(files, desc="index files", unit="file"):
        rel = str(path.relative_to(folder))
        try:
            sig = _signature(path)
            if rel in old_files and old_files[rel]["sha256"] == sig:
                ids = old_files[rel]["chunks"]
                chunks += [old_chunks[old_rows[i]] for i in ids]
                vectors += [old_vecs[old_rows[i]] for i in ids]
                stats["reused"] += 1
                manifest_files[rel] = {"sha256": sig, "chunks": ids}
                continue
            new = file_chunks(path, folder)
        except (BenchError, OSError) as e:
            # One unreadable file must not cost the whole folder.
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            tqdm.write(f"skipped {rel}: {' '.join(why.split())}")
            stats["skipped"] += 1
            continue
        if not new:
            stats["skipped"] += 1
            continue
        vecs = candidate.encode([f"{c.title}\n{c.text}" for c in new], "passage")
        chunks += new
        vectors += list(vecs)
        stats["indexed"] += 1
        manifest_files[rel] = {"sha256": sig, "chunks": [c.id for c in new]}
    return chunks, vectors, manifest_files, stats


def _write(index: Path, manifest: dict, chunks: list[Chunk], vectors: np.ndarray) -> None:
    """The whole index goes to a sibling folder first and is renamed into place: an interruption leaves the old
    index or the new one, never vectors that no longer match their passages."""
    for stale in [*index.parent.glob(f".{index.name}.new-*"), *index.parent.glob(f".{index.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed writer; we hold the lock, so none is live
    tmp = index.parent / f".{index.name}.new-{os.getpid()}"
    aside = index.parent / f".{index.name}.old-{os.getpid()}"
    tmp.mkdir()
    try:
        np.save(tmp / "embeddings.npy", vectors)
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        # A folder cannot be renamed onto a non-empty one: the old index steps aside first. Stopped between the
        # two renames, the next build finds no index and starts afresh.
        if index.exists():
            os.replace(index, aside)
        os.replace(tmp, index)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)


def load(index: Path):
    """(manifest, chunks, vectors), checked to agree with each other; BrokenIndex when they do not."""
    if not _has_index_files(index):
        raise BenchError(f"{index}: no search index here; build one with `python -m bench search index DIR`")
    try:
        manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("manifest.json is not an index manifest")
        rows = [json.loads(line) for line in (index / "chunks.jsonl").read_text(encoding="utf-8").split("\n")
                if line.strip()]
        chunks = [Chunk(**row) for row in rows]
        vectors = np.load(index / "embeddings.npy", allow_pickle=False)
        ids = []
        for entry in manifest["files"].values():
            if not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("chunks"), list):
                raise ValueError("a file entry of manifest.json lacks sha256 or chunks")
            ids += entry["chunks"]
    except (OSError, ValueError, TypeError, KeyError, AttributeError, EOFError) as e:
        raise BrokenIndex(index, f"{type(e).__name__} reading it") from None
    if not (isinstance(manifest.get("model"), str) and isinstance(manifest.get("variant"), str)):
        raise BrokenIndex(index, "manifest.json names no model")
    if vectors.ndim != 2 or vectors.dtype.kind != "f" or vectors.shape[0] != len(chunks):
        raise BrokenIndex(index, f"{len(chunks)} passages but {vectors.shape[0] if vectors.ndim else 0} vectors")
    if ids != [c.id for c in chunks] or len(set(ids)) != len(ids):
        raise BrokenIndex(index, "manifest.json and chunks.jsonl list different passages")
    return manifest, chunks, vectors


def query(candidate, chunks: list[Chunk], vectors: np.ndarray, question: str, k: int, reranker=None,
          rerank_depth: int = 50) -> list[tuple[float, Chunk]]:
    question = nfc(question)
    q = candidate.encode([question], "query", progress=False)[0]
    scores = vectors @ q
    order = np.argsort(-scores, kind="stable")[: max(k, rerank_depth if reranker else k)]
    if reranker is not None:
        texts = [f"{chunks[i].title}\n{chunks[i].text}" for i in order]
        if reranker.kind == "cross-encoder":
            new = reranker.pair_scores(question, texts)
        else:
            new = reranker.scores([question], texts)[0]
        ranked = np.argsort(-new, kind="stable")[:k]
        return [(float(new[r]), chunks[order[r]]) for r in ranked]
    return [(float(scores[i]), chunks[i]) for i in order[:k]]


def describe(c: Chunk) -> str:
    if "ilacAdi" in c.meta:
        return f"{c.source} · {leaflets.display_name(c.meta['ilacAdi'])} (ilacAdi {c.meta['ilacAdi']}), {c.position}"
    return f"{c.source} · {c.position}"
