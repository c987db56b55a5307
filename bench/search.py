"""`bench search`: index a folder of documents with a chosen encoder and answer questions from the command line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.data import leaflets
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
            c.source = rel
        return out
    from bench.data.convert import read_text

    text = read_text(path)
    return chunk_text(rel, path.stem, text, rel, meta={}) if text.strip() else []


def _pdf_chunks(path: Path, rel: str) -> list[Chunk]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [p.extract_text() or "" for p in PdfReader(str(path)).pages]
    except (PdfReadError, OSError, ValueError) as e:
        raise BenchError(f"{path}: unreadable PDF ({e}); re-export it or remove it from the folder") from None
    out = []
    for n, text in enumerate(pages, 1):
        if text.strip():
            out += chunk_text(f"{rel}-p{n}", path.stem, text, rel, f"page {n}")
    return out


def _signature(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(folder: Path, candidate, model: str, variant: str, index: Path) -> dict:
    """Embed what changed since the last build; unchanged files keep their passages and vectors."""
    if not folder.is_dir():
        raise BenchError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise BenchError(f"{folder}: no .txt, .md, .pdf or leaflet .json files to index")
    old_manifest, old_chunks, old_vecs = load(index) if (index / "manifest.json").exists() else (None, [], None)
    if old_manifest and (old_manifest["model"], old_manifest["variant"]) != (model, variant):
        raise BenchError(f"{index}: index was built with {old_manifest['model']} [{old_manifest['variant']}], not "
                         f"{model} [{variant}]; pass another --index or delete that folder")
    old_files = old_manifest["files"] if old_manifest else {}
    old_rows = {c.id: i for i, c in enumerate(old_chunks)}
    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    manifest_files, stats = {}, {"reused": 0, "indexed": 0, "skipped": 0}
    for path in tqdm(files, desc="index files", unit="file"):
        rel = str(path.relative_to(folder))
        sig = _signature(path)
        if rel in old_files and old_files[rel]["sha256"] == sig:
            ids = old_files[rel]["chunks"]
            chunks += [old_chunks[old_rows[i]] for i in ids]
            vectors += [old_vecs[old_rows[i]] for i in ids]
            stats["reused"] += 1
        else:
            new = file_chunks(path, folder)
            if not new:
                stats["skipped"] += 1
                continue
            vecs = candidate.encode([f"{c.title}\n{c.text}" for c in new], "passage")
            chunks += new
            vectors += list(vecs)
            stats["indexed"] += 1
        manifest_files[rel] = {"sha256": sig, "chunks": [c.id for c in chunks if c.source == rel]}
    if not chunks:
        raise BenchError(f"{folder}: the files hold no text to index")
    index.mkdir(parents=True, exist_ok=True)
    np.save(index / "embeddings.npy", np.stack(vectors).astype(np.float32))
    with open(index / "chunks.jsonl", "w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    manifest = {"model": model, "variant": variant, "folder": str(folder.resolve()), "files": manifest_files}
    (index / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return {**stats, "passages": len(chunks)}


def load(index: Path):
    if not (index / "manifest.json").exists():
        raise BenchError(f"{index}: no search index here; build one with `python -m bench search index DIR`")
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    chunks = [Chunk(**json.loads(line)) for line in (index / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    return manifest, chunks, np.load(index / "embeddings.npy")


def query(candidate, chunks: list[Chunk], vectors: np.ndarray, question: str, k: int, reranker=None,
          rerank_depth: int = 50) -> list[tuple[float, Chunk]]:
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
