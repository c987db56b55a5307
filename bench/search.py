"""`bench search`: index a folder of documents with any retrieving registry entry and answer questions from the
command line.

The index holds the passages always, and the passage vectors of every bi-encoder inside the entry (the entry itself,
or a pipeline's dense stages), side by side in one matrix, so a query never re-encodes the corpus. BM25 state is not
saved: it is rebuilt from the passages when the index is opened (tokenising a few thousand passages takes well under
a second, far less than loading a model), its IDF depends on every passage so an incremental save would rewrite it
whole anyway, and a second on-disk format would be one more file that can disagree with the passages.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.data import leaflets
from bench.data.convert import nfc, read_text
from bench.data.chunking import Chunk, chunk_text
from bench.errors import BenchError, Unavailable
from bench.models.engine import dense_stages, encode_with
from bench.paths import cache_dir

SUFFIXES = (".txt", ".md", ".pdf", ".json")
FALLBACK = ("multilingual-e5-small (Q4-dequantized)", "onnx-int8")
PREFERRED_TASKS = ("drug_leaflets", "tr_mini_wiki", "xquad_tr")
BUDGET_MS = 50


def default_index() -> Path:
    return cache_dir() / "search" / "default"


def default_model(index: Path, folder: Path, results_path: Path, names: set[str], task: str | None = None,
                  budget_ms: float | None = None) -> tuple[str, str, str]:
    """(model, variant, why) when --model is not given: the model of this folder's existing index (so re-indexing
    stays incremental), unless --task or --budget-ms asks for a recommendation; else the leaderboard's pick."""
    kept = None if task or budget_ms is not None else _index_model(index, folder)
    if kept:
        return (*kept, f"kept: the index at {index} was built from this folder with it; pass --model to choose another")
    return recommended_model(results_path, folder, names, task, BUDGET_MS if budget_ms is None else budget_ms)


def _index_model(index: Path, folder: Path) -> tuple[str, str] | None:
    if not _has_index_files(index):
        return None
    try:
        manifest = load(index)[0]
    except BrokenIndex:
        return None  # rebuilt by `build`, which says so
    return (manifest["model"], manifest["variant"]) if manifest.get("folder") == str(folder.resolve()) else None


def recommended_model(results_path: Path, folder: Path, names: set[str], task: str | None = None,
                      budget_ms: float = BUDGET_MS) -> tuple[str, str, str]:
    """(model, variant, why): what the leaderboard recommends under `budget_ms` for the task closest to `folder`
    (or `task`), among the rows of registry entries `names`, by the report's rule; else a stated fallback."""
    from bench.reports import report, results

    if not results_path.exists():
        return (*FALLBACK, f"fallback (no leaderboard at {results_path})")
    by_task: dict[str, list] = {}
    for r in results.read(results_path):
        if r.status == "ok" and r.model in names and r.kind != "cross-encoder":
            by_task.setdefault(r.task, []).append(r)
    if task is not None and task not in by_task:
        raise BenchError(f"--task: {results_path} has no measured rows of task '{task}' for entries of the registry "
                         f"(tasks with rows: {', '.join(sorted(by_task)) or 'none'})")
    if not by_task:
        return (*FALLBACK, f"fallback (no measured rows in {results_path} for entries of the registry)")
    chosen, how = (task, "task chosen with --task") if task else closest_task(folder, sorted(by_task))
    st = report.standing(by_task[chosen], [budget_ms])
    pick = st.picks[budget_ms] if st else None
    if pick is None:
        return (*FALLBACK, f"fallback (nothing measured for {chosen} in {results_path} runs under {budget_ms:g} ms)")
    rule = "cheapest row not significantly worse than the best" + ("" if st.tied(pick) else " within the budget")
    return pick.model, pick.variant, f"recommended for {chosen} under {budget_ms:g} ms in {results_path}: {rule}; {how}"


SAMPLE_FILES = 100  # files read to learn a folder's vocabulary: enough to tell domains apart on a big folder


def _words(texts) -> set[str]:
    """Distinct words as BM25 sees them (Turkish lower case, stemmed, no stop words): inflections count once."""
    from bench.models.lexical import BM25

    tokenize = BM25().tokenize
    return {w for t in texts for w in tokenize(t)}


def folder_words(folder: Path) -> set[str]:
    files = source_files(folder)
    texts = []
    for path in files[::max(1, len(files) // SAMPLE_FILES)]:
        try:
            texts += [passage(c) for c in file_chunks(path, folder)]
        except (BenchError, OSError):
            continue  # named when the folder is indexed
    return _words(texts)


def closest_task(folder: Path, task_names: list[str]) -> tuple[str, str]:
    """(task, why): the task whose corpus holds the largest share of the folder's distinct words."""
    from bench.data import tasks

    try:
        specs = {s.name: s for s in tasks.all_specs()}
    except BenchError:
        specs = {}
    words = folder_words(folder)
    shares = {}
    for name in task_names:
        if name in specs and words:
            try:
                data = tasks.load(specs[name])
            except (BenchError, Unavailable, OSError):
                continue
            shares[name] = len(words & _words(data.doc_text(d) for d in data.corpus)) / len(words)
    rank = {t: i for i, t in enumerate(PREFERRED_TASKS)}
    if not shares:
        pick = min(task_names, key=lambda t: (rank.get(t, len(rank)), t))
        return pick, (f"no task corpus could be read to compare with this folder, so the first of "
                      f"{', '.join(PREFERRED_TASKS)} with rows")
    pick = max(shares, key=lambda t: (shares[t], -rank.get(t, len(rank))))
    return pick, f"closest task: {shares[pick]:.0%} of this folder's distinct words occur in its corpus"


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


def passage(c: Chunk) -> str:
    """The text every stage indexes and re-scores."""
    return f"{c.title}\n{c.text}"


def stage_label(stage) -> str:
    return f"{stage.entry.name} [{stage.variant}]"


def dense_spec(manifest: dict, vectors: np.ndarray) -> list[dict]:
    """Which stage owns which columns of the vectors; an index from before pipelines held one bi-encoder's, unnamed."""
    if "dense" in manifest:
        return manifest["dense"]
    return [{"stage": f"{manifest['model']} [{manifest['variant']}]", "dim": int(vectors.shape[1])}]


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
    stages = [stage_label(d) for d in dense_stages(candidate)]
    with _locked(index):
        old_manifest, old_chunks, old_vecs = _old_index(index)
        if old_manifest:
            _refuse_other_model(index, old_manifest, [d["stage"] for d in dense_spec(old_manifest, old_vecs)],
                                model, variant, stages)
        chunks, vectors, manifest_files, dims, stats = _collect(folder, files, candidate, old_manifest, old_chunks,
                                                                old_vecs)
        if not chunks:
            raise BenchError(f"{folder}: the files hold no text to index")
        if dims is None:  # every file reused: the old index says how wide each stage's vectors are
            dims = [d["dim"] for d in dense_spec(old_manifest, old_vecs)]
        manifest = {"model": model, "variant": variant, "folder": str(folder.resolve()),
                    "dense": [{"stage": st, "dim": int(n)} for st, n in zip(stages, dims)], "files": manifest_files}
        _write(index, manifest, chunks, np.stack(vectors).astype(np.float32))
    return {**stats, "passages": len(chunks)}


def _refuse_other_model(index: Path, old: dict, old_stages: list[str], model: str, variant: str,
                        stages: list[str]) -> None:
    """Vectors of one model never sit beside another's; a pipeline whose stages changed counts as another model."""
    same_entry = (old["model"], old["variant"]) == (model, variant)
    if same_entry and old_stages == stages:
        return
    held = f" (vectors of {', '.join(old_stages) or 'no stage'})" if same_entry else ""
    raise BenchError(f"{index}: index was built with {old['model']} [{old['variant']}]{held}, not {model} "
                     f"[{variant}]; pass another --index or delete that folder")


def _encode(candidate, chunks: list[Chunk]) -> tuple[np.ndarray, list[int]]:
    """The passages' vectors from every dense stage, side by side, and each stage's width."""
    return encode_with(candidate, [passage(c) for c in chunks])


def _collect(folder: Path, files: list[Path], candidate, old_manifest, old_chunks, old_vecs):
    old_files = old_manifest["files"] if old_manifest else {}
    old_rows = {c.id: i for i, c in enumerate(old_chunks)}
    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    dims = None
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
        vecs, dims = _encode(candidate, new)
        chunks += new
        vectors += list(vecs)
        stats["indexed"] += 1
        manifest_files[rel] = {"sha256": sig, "chunks": [c.id for c in new]}
    return chunks, vectors, manifest_files, dims, stats


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
    spec = dense_spec(manifest, vectors)
    if not (isinstance(spec, list) and all(isinstance(d, dict) and isinstance(d.get("stage"), str)
                                           and type(d.get("dim")) is int and d["dim"] > 0 for d in spec)):
        raise BrokenIndex(index, "manifest.json field 'dense' is not a list of stages with their widths")
    if sum(d["dim"] for d in spec) != vectors.shape[1]:
        raise BrokenIndex(index, f"manifest.json names {sum(d['dim'] for d in spec)} vector columns, "
                                 f"embeddings.npy holds {vectors.shape[1]}")
    if ids != [c.id for c in chunks] or len(set(ids)) != len(ids):
        raise BrokenIndex(index, "manifest.json and chunks.jsonl list different passages")
    return manifest, chunks, vectors


def state(candidate, manifest: dict, chunks: list[Chunk], vectors: np.ndarray, index: Path):
    """The candidate's search state over the indexed passages, with every dense stage on its stored vectors."""
    dense = dense_stages(candidate)
    spec = dense_spec(manifest, vectors)
    if [stage_label(d) for d in dense] != [d["stage"] for d in spec]:
        raise BenchError(f"{index}: the index stores vectors of {', '.join(d['stage'] for d in spec) or 'no stage'}, "
                         f"but {manifest['model']} in the registry now has dense stages "
                         f"{', '.join(map(stage_label, dense)) or 'none'}; re-index with `python -m bench search index "
                         f"DIR --model NAME --index {index}` into an empty folder")
    blocks = np.split(vectors, np.cumsum([d["dim"] for d in spec], dtype=int)[:-1], axis=1)
    for stage, block in zip(dense, blocks):
        # The candidate's own index() walks its stages (hybrid parts, re-rank stages); a dense stage handed its
        # stored vectors there answers at once instead of encoding the corpus again.
        stage.index = lambda docs, block=block: block
    return candidate.index([passage(c) for c in chunks])


def query(candidate, state, chunks: list[Chunk], question: str, k: int, reranker=None,
          rerank_depth: int = 50) -> tuple[list[tuple[float, Chunk]], float]:
    """(hits, milliseconds): the search as a deployed system runs it, timed from the question to the ranking."""
    question = nfc(question)
    start = time.perf_counter()
    scores = np.asarray(candidate.search(state, question))
    order = np.argsort(-scores, kind="stable")[: max(k, rerank_depth if reranker else k)]
    if reranker is not None:
        texts = [passage(chunks[i]) for i in order]
        if reranker.kind == "cross-encoder":
            new = reranker.pair_scores(question, texts)
        else:
            new = reranker.scores([question], texts)[0]
        ranked = np.argsort(-new, kind="stable")[:k]
        hits = [(float(new[r]), chunks[order[r]]) for r in ranked]
    else:
        hits = [(float(scores[i]), chunks[i]) for i in order[:k]]
    return hits, (time.perf_counter() - start) * 1000


def describe(c: Chunk) -> str:
    if "ilacAdi" in c.meta:
        return f"{c.source} · {leaflets.display_name(c.meta['ilacAdi'])} (ilacAdi {c.meta['ilacAdi']}), {c.position}"
    return f"{c.source} · {c.position}"
