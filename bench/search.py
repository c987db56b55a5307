"""`bench search`: index a folder of documents with any retrieving registry entry and answer questions from the
command line.

The index (bench.store: a LanceDB table and a manifest written last) holds the passages always, and the passage
vectors of every bi-encoder inside the entry (the entry itself, or a pipeline's dense stages), side by side in one
vector column, so a query never re-encodes the corpus. A bi-encoder's index of ANN_FROM passages or more also gets
an ANN index, and a query then reads only its hits from the table. BM25 state is not saved: it is rebuilt from the
passages when the index is opened (tokenising a few thousand passages takes well under a second, far less than
loading a model), its IDF depends on every passage so an incremental save would rewrite it whole anyway, and a
second on-disk format would be one more thing that can disagree with the passages. LanceDB's own full-text index
(tantivy) was not used for it: its tokenizer has no Turkish stemmer, so it would rank differently from the BM25 that
bench measures.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.data import leaflets
from bench.data.convert import nfc, read_text
from bench.data.chunking import Chunk, chunk_text
from bench import store
from bench.errors import BenchError, Unavailable
from bench.store import BrokenIndex
from bench.models.stages import dense_stages, encode_with
from bench.paths import cache_dir
from bench.data.retrieval import passage_text

SUFFIXES = (".txt", ".md", ".pdf", ".json")
PREFERRED_TASKS = ("drug_leaflets", "tr_mini_wiki", "xquad_tr")
BUDGET_MS = 50


def default_index() -> Path:
    return cache_dir() / "search" / "default"


def default_model(index: Path, folder: Path, results_path: Path, names: set[str], task: str | None = None,
                  budget_ms: float | None = None, fallback: tuple[str, str] | None = None) -> tuple[str, str, str]:
    """(model, variant, why) when --model is not given: the model of this folder's existing index (so re-indexing
    stays incremental), unless --task or --budget-ms asks for a recommendation; else the leaderboard's pick."""
    kept = None if task or budget_ms is not None else _index_model(index, folder)
    if kept:
        return (*kept, f"kept: the index at {index} was built from this folder with it; pass --model to choose another")
    return recommended_model(results_path, folder, names, task, BUDGET_MS if budget_ms is None else budget_ms,
                             fallback)


def _index_model(index: Path, folder: Path) -> tuple[str, str] | None:
    if not store.has_index_files(index):
        return None
    try:
        manifest = store.read_manifest(index)
    except BrokenIndex:
        return None  # rebuilt by `build`, which says so
    return (manifest["model"], manifest["variant"]) if manifest.get("folder") == str(folder.resolve()) else None


def recommended_model(results_path: Path, folder: Path, names: set[str], task: str | None = None,
                      budget_ms: float = BUDGET_MS, fallback: tuple[str, str] | None = None) -> tuple[str, str, str]:
    """(model, variant, why): what the leaderboard recommends under `budget_ms` for the task closest to `folder`
    (or `task`), among the rows of registry entries `names`, by the report's rule; else `fallback` (the registry's
    profile 'search'), stated."""

    def fall_back(why: str) -> tuple[str, str, str]:
        if fallback is None:
            raise BenchError(f"no model to index with ({why}) and no fallback: pass --model, or name one in the "
                             "registry's profile 'search'")
        return (*fallback, f"fallback ({why})")

    from bench.measure import results
    from bench.reports import standings

    if not results_path.exists():
        return fall_back(f"no leaderboard at {results_path}")
    by_task: dict[str, list] = {}
    for r in results.read(results_path):
        if r.status == "ok" and r.model in names and r.kind != "cross-encoder":
            by_task.setdefault(r.task, []).append(r)
    if task is not None and task not in by_task:
        raise BenchError(f"--task: {results_path} has no measured rows of task '{task}' for entries of the registry "
                         f"(tasks with rows: {', '.join(sorted(by_task)) or 'none'})")
    if not by_task:
        return fall_back(f"no measured rows in {results_path} for entries of the registry")
    chosen, how = (task, "task chosen with --task") if task else closest_task(folder, sorted(by_task))
    st = standings.standing(by_task[chosen], [budget_ms])
    pick = st.picks[budget_ms] if st else None
    if pick is None:
        return fall_back(f"nothing measured for {chosen} in {results_path} runs under {budget_ms:g} ms")
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
    return passage_text(c.title, c.text)


def stage_label(stage) -> str:
    return f"{stage.entry.name} [{stage.variant}]"


def _signature(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def check_index_path(index: Path) -> None:
    """Before any model is loaded: a problem here would otherwise surface only after all the encoding."""
    if index.exists() and not index.is_dir():
        raise BenchError(f"--index {index}: not a folder (it names a file); pass a folder for the index")
    # An index rebuilt from scratch replaces what is in its folder: never take over a folder holding anything else.
    own = set(store.INDEX_FILES + store.LEGACY_FILES)
    if index.is_dir() and any(p.name not in own and not p.name.startswith(f".{store.MANIFEST}.")
                              for p in index.iterdir()):
        raise BenchError(f"--index {index}: folder holds files that are not a search index; pass a new or empty folder")


def source_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BenchError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise BenchError(f"{folder}: no .txt, .md, .pdf or leaflet .json files to index")
    return files


def _old_index(index: Path) -> store.Store | None:
    if not store.has_index_files(index):
        return None
    try:
        return store.open_store(index)
    except BrokenIndex as e:
        print(f"{e.what}; rebuilding it from scratch", flush=True)
    for name in (store.MANIFEST, *store.INDEX_FILES, *store.LEGACY_FILES):
        # The manifest goes first: a build killed from here on leaves no manifest, which reads as broken.
        target = index / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    return None


def build(folder: Path, candidate, model: str, variant: str, index: Path, engine: str = "local",
          address: str | None = None) -> dict:
    """Embed what changed since the last build (with `engine`: local or ray); unchanged files keep their passages and
    vectors in the table, files that changed or went away are deleted from it by name."""
    check_index_path(index)
    files = source_files(folder)
    stages = [stage_label(d) for d in dense_stages(candidate)]
    with _locked(index):
        old = _old_index(index)
        if old:
            _refuse_other_model(index, old.manifest, [d["stage"] for d in old.manifest["dense"]], model, variant,
                                stages)
        old_files = old.manifest["files"] if old else {}
        kept, new, stats = _collect(folder, files, old_files)
        if not kept and not any(new.values()):
            raise BenchError(f"{folder}: the files hold no text to index")
        chunks = [c for cs in new.values() for c in cs]
        vectors, dims = _encode(candidate, chunks, engine, address)
        dense = old.manifest["dense"] if old and not chunks else [{"stage": st, "dim": int(n)}
                                                                    for st, n in zip(stages, dims)]
        index.mkdir(parents=True, exist_ok=True)
        writer = store.Writer(index, old)
        writer.delete_files([rel for rel in old_files if rel not in kept])
        writer.add(chunks, vectors)
        ann = writer.ann(candidate.kind == "bi-encoder", old.manifest.get("ann") if old else None)
        manifest_files = {rel: kept.get(rel) or {"sha256": sha, "chunks": [c.id for c in new[(rel, sha)]]}
                          for rel, sha in stats.pop("order")}
        writer.commit({"model": model, "variant": variant, "folder": str(folder.resolve()), "dense": dense,
                       "ann": ann, "files": manifest_files})
    return {**stats, "passages": sum(len(f["chunks"]) for f in manifest_files.values()), "ann": ann}


def _refuse_other_model(index: Path, old: dict, old_stages: list[str], model: str, variant: str,
                        stages: list[str]) -> None:
    """Vectors of one model never sit beside another's; a pipeline whose stages changed counts as another model."""
    same_entry = (old["model"], old["variant"]) == (model, variant)
    if same_entry and old_stages == stages:
        return
    held = f" (vectors of {', '.join(old_stages) or 'no stage'})" if same_entry else ""
    raise BenchError(f"{index}: index was built with {old['model']} [{old['variant']}]{held}, not {model} "
                     f"[{variant}]; pass another --index or delete that folder")


def _encode(candidate, chunks: list[Chunk], engine: str = "local", address: str | None = None):
    """The passages' vectors from every dense stage, side by side, and each stage's width."""
    texts = [passage(c) for c in chunks]
    if engine == "local" or not chunks or not dense_stages(candidate):
        return encode_with(candidate, texts)
    from bench.models import ray_engine

    return ray_engine.encode_candidate(candidate, texts, address=address)


def _collect(folder: Path, files: list[Path], old_files: dict):
    """(kept: rel -> manifest entry of unchanged files, new: (rel, sha) -> chunks to add, stats)."""
    kept, new = {}, {}
    stats = {"reused": 0, "indexed": 0, "skipped": 0, "order": []}
    for path in tqdm(files, desc="index files", unit="file"):
        rel = str(path.relative_to(folder))
        try:
            sig = _signature(path)
            if rel in old_files and old_files[rel]["sha256"] == sig:
                kept[rel] = old_files[rel]
                stats["reused"] += 1
                stats["order"].append((rel, sig))
                continue
            chunks = file_chunks(path, folder)
        except (BenchError, OSError) as e:
            # One unreadable file must not cost the whole folder.
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            tqdm.write(f"skipped {rel}: {' '.join(why.split())}")
            stats["skipped"] += 1
            continue
        if not chunks:
            why = ("a .json file that is not a leaflet file (expected {\"prospektus\": [{\"ilacAdi\": ...}, ...]})"
                   if path.suffix.lower() == ".json" else "no text in it")
            tqdm.write(f"skipped {rel}: {why}")  # every skip says why: a silent count hides a wrong folder
            stats["skipped"] += 1
            continue
        new[(rel, sig)] = chunks
        stats["indexed"] += 1
        stats["order"].append((rel, sig))
    return kept, new, stats


def load(index: Path):
    """(manifest, chunks, vectors) of the index, all in memory and checked to agree; BrokenIndex when they do not."""
    opened = store.open_store(index)
    chunks, vectors = opened.chunks_and_vectors()
    return opened.manifest, chunks, vectors


def check_stages(candidate, manifest: dict, index: Path) -> list:
    """The candidate's dense stages, refused when they are not the ones whose vectors the index stores."""
    dense, spec = dense_stages(candidate), manifest["dense"]
    if [stage_label(d) for d in dense] != [d["stage"] for d in spec]:
        raise BenchError(f"{index}: the index stores vectors of {', '.join(d['stage'] for d in spec) or 'no stage'}, "
                         f"but {manifest['model']} in the registry now has dense stages "
                         f"{', '.join(map(stage_label, dense)) or 'none'}; re-index with `python -m bench search index "
                         f"DIR --model NAME --index {index}` into an empty folder")
    return dense


def state(candidate, manifest: dict, chunks: list[Chunk], vectors: np.ndarray, index: Path):
    """The candidate's search state over the indexed passages, with every dense stage on its stored vectors."""
    dense, spec = check_stages(candidate, manifest, index), manifest["dense"]
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


def ann_query(candidate, opened: store.Store, question: str, k: int) -> tuple[list[tuple[float, Chunk]], float]:
    """query() for a bi-encoder over an index with an ANN index: the table answers, no passage is held in memory."""
    question = nfc(question)
    start = time.perf_counter()
    vector = candidate.query_vector(question)
    hits = opened.nearest(vector, k)
    return hits, (time.perf_counter() - start) * 1000


def ask(opened: store.Store, candidate, question: str, k: int, reranker=None) -> tuple[list[tuple[float, Chunk]], float]:
    """(hits, milliseconds): one question answered from an open index the fastest way the entry allows."""
    manifest, index = opened.manifest, opened.path
    if opened.has_ann() and candidate.kind == "bi-encoder" and reranker is None:
        check_stages(candidate, manifest, index)
        return ann_query(candidate, opened, question, k)
    chunks, vectors = opened.chunks_and_vectors()
    st = state(candidate, manifest, chunks, vectors, index)
    return query(candidate, st, chunks, question, k, reranker)


def hit_record(score: float, c: Chunk) -> dict:
    """One hit as data: file, position, score and text; a leaflet's medicine and section too."""
    out = {"file": c.source, "position": c.position, "score": float(score), "text": c.text}
    if "ilacAdi" in c.meta:
        out |= {"medicine": leaflets.display_name(c.meta["ilacAdi"]), "section": c.meta.get("section")}
    return out


def describe(c: Chunk) -> str:
    if "ilacAdi" in c.meta:
        return f"{c.source} · {leaflets.display_name(c.meta['ilacAdi'])} (ilacAdi {c.meta['ilacAdi']}), {c.position}"
    return f"{c.source} · {c.position}"
