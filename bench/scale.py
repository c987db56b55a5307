"""The corpus-size sweep: a task's questions against its passages plus distractors up to N, for N on a log grid,
per candidate x ANN index x vector precision -> scale.json records, scale.md and plots (callable from Python).

    >>> import bench.scale
    >>> records = bench.scale.scale(task="drug_leaflets", sizes=[1000, 10000], only=["BM25 (Turkish Snowball)"])
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import threads as bench_threads
from bench import fileio, provenance
from bench.data import distractors as dx
from bench.data import tasks as taskdata
from bench.errors import BenchError, Unavailable, one_line
from bench.index import check_pairs, supports
from bench.models import encoders, registry
from bench.models.embcache import EmbeddingCache
from bench.paths import cache_dir

K = 100  # results kept per question: recall@100, nDCG@10, and the pool a hybrid fuses
TIMED_QUESTIONS = 40  # questions timed at batch 1 per row (encode + search), seeded
THROUGHPUT_SAMPLE = 64  # distractor passages embedded afresh (uncached) to measure passages/s
DEFAULT_INDEXES = ("exact", "hnsw", "ivfpq")
# Each index gets the precisions it stores (bench.index.supports): pq is IVF-PQ's own, the rest exact's and HNSW's.
DEFAULT_PRECISIONS = ("fp32", "int8", "int8+rescore", "binary", "binary+rescore", "pq", "pq+rescore")
ENGINES = ("local", "ray")


@dataclass
class Corpus:
    """The task's passages first, then the first N - |task| distractors."""

    ids: list[str]
    texts: list[str]
    n_task: int
    n_synthetic: int

    @property
    def synthetic_share(self) -> float:
        return round(self.n_synthetic / len(self.texts), 5)


def corpora(data, stream: dx.Distractors, sizes: list[int]) -> dict[int, Corpus]:
    """Nested corpora, one per size: the set for a smaller size is a prefix of the set for a larger one."""
    task_ids = list(data.corpus)
    task_texts = [data.doc_text(d) for d in task_ids]
    too_small = [n for n in sizes if n < len(task_ids)]
    if too_small:
        raise BenchError(f"--sizes: {too_small[0]} is smaller than task '{data.name}' itself "
                         f"({len(task_ids)} passages); give sizes of at least {len(task_ids)}")
    extra = stream.take(max(sizes) - len(task_ids))
    taken = set(task_ids)
    dids = [f"distractor-{i:07d}" for i in range(len(extra))]
    if taken & set(dids):
        raise BenchError(f"task '{data.name}': a passage id collides with the distractor ids (distractor-NNNNNNN)")
    out = {}
    for n in sorted(set(sizes)):
        m = n - len(task_ids)
        out[n] = Corpus(task_ids + dids[:m], task_texts + extra[:m], len(task_ids), stream.n_synthetic(m))
    return out


# --- passage vectors: embedded once, cached -----------------------------------------------------------------------


def vector_key(candidate) -> str:
    """What a passage vector depends on, beside its (prefixed) text: the model's files, the runtime variant, the
    shipped file's size (the ONNX export), the length limit and the runtime code that computes it. Not
    bench.models.encoders, the loading and caching plumbing every runtime shares and that changes often: a day of
    encoding should not be thrown away for an edit there (a change in prefixes changes the text, which is keyed)."""
    code = provenance.code_fingerprint("bench.models.onnx_runtime", "bench.models.static", "bench.models.q4_convert")
    return (f"scale|{candidate.fingerprint}|{candidate.variant}|{candidate.disk_bytes}|{candidate.max_seq_length}"
            f"|passage|{code}")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def _engine_encode(entry, variant: str, engine: str, address: str | None):
    """Engine other than local: bench.models.engine runs the encoder (on Ray); texts are raw, it adds prefixes."""
    from bench.models.engine import encode_passages

    return lambda texts: encode_passages(entry, variant, list(texts), engine=engine, address=address)


def passage_vectors(candidate, texts: list[str], engine: str = "local", address: str | None = None,
                    progress: bool = True) -> np.ndarray:
    """Unit vectors of `texts`, each computed once and stored in the cache batch by batch (an interrupted run keeps
    what it computed; a batch is one SQLite transaction, so a half-written vector is never read back)."""
    cache = EmbeddingCache(cache_dir() / "scale-embeddings.sqlite")
    prepared = candidate.prepare(texts, "passage")
    items = list(zip(prepared, texts))
    if engine == "local":
        def compute(chunk):
            return candidate.embed([p for p, _ in chunk], "passage")
    else:
        remote = _engine_encode(candidate.entry, candidate.variant, engine, address)

        def compute(chunk):
            return remote([t for _, t in chunk])
    batch = 512 if candidate.flops_config is None else (candidate.batch_size if engine == "local" else 1024)
    vecs = cache.compute_missing(vector_key(candidate), items, lambda it: it[0], compute, batch,
                                 "embed distractors", "passage", progress)
    return unit(np.stack(vecs).astype(np.float32))


def passages_per_s(candidate, texts: list[str]) -> float:
    """Passages/s of the local encoder on a sample of real distractors, embedded afresh in batches of 32."""
    sample = candidate.prepare(texts[:THROUGHPUT_SAMPLE], "passage")
    start = time.perf_counter()
    for i in range(0, len(sample), 32):
        candidate.embed(sample[i:i + 32], "passage")
    return round(len(sample) / (time.perf_counter() - start), 2)


# --- one row: search every question, score, time --------------------------------------------------------------------


def metrics(data, qids: list[str], ids: list[list[int]], scores: list[list[float]], doc_ids: list[str]) -> dict:
    """nDCG@10 (with its bootstrap CI and per-question values) and recall@100 by mteb's scorer, as bench run scores."""
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    from bench.measure import stats

    results = {q: {doc_ids[i]: float(s) for i, s in zip(row_i, row_s) if i >= 0}
               for q, row_i, row_s in zip(qids, ids, scores)}
    r = calculate_retrieval_scores(results, {q: data.qrels[q] for q in qids}, [10, K])
    per_query = {q: round(s["ndcg_cut_10"], 5) for q, s in r.all_scores.items()}
    low, high = stats.interval(per_query)
    return {"ndcg_at_10": round(r.ndcg["NDCG@10"], 5), "ndcg_ci_low": low, "ndcg_ci_high": high,
            "recall_at_100": round(r.recall[f"Recall@{K}"], 5), "per_query_ndcg": per_query}


def ann_recall(ids: np.ndarray, exact_ids: np.ndarray, k: int = 10) -> float:
    """Share of the exact fp32 top k that the row's top k also holds, averaged over questions."""
    hits = [len(set(a[:k]) & set(b[:k])) / min(k, len(b)) for a, b in zip(ids, exact_ids)]
    return round(float(np.mean(hits)), 5)


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so the next read is this row's own peak.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timed(qids: list[str]) -> list[str]:
    import random

    return sorted(random.Random(0).sample(sorted(qids), min(TIMED_QUESTIONS, len(qids))))


def _p50(ms: list[float]) -> float:
    return round(float(np.median(ms)), 3)


def _encode_ms(candidate, questions: list[str]) -> tuple[list[np.ndarray], list[float]]:
    """Each timed question encoded afresh at batch 1 (no cache), as a deployed search does."""
    vecs, ms = [], []
    for text in questions:
        start = time.perf_counter()
        v = candidate.embed(candidate.prepare([text], "query"), "query")
        ms.append(1000 * (time.perf_counter() - start))
        vecs.append(unit(np.asarray(v, np.float32))[0])
    return vecs, ms


def _bm25_rows(bm25, retriever, queries: list[str], k: int) -> tuple[list, list]:
    ids, scores = [], []
    for q in queries:
        row = bm25.scores([q], [], index=retriever)[0]
        kk = min(k, len(row))
        top = np.argpartition(-row, kk - 1)[:kk]
        top = top[np.argsort(-row[top], kind="stable")]
        ids.append(top)
        scores.append(row[top])
    return ids, scores


def _bm25_bytes(retriever) -> int:
    arrays = [v for v in retriever.scores.values() if isinstance(v, np.ndarray)]
    vocab = sum(len(t.encode("utf-8")) + 8 for t in retriever.vocab_dict)
    return int(sum(a.nbytes for a in arrays) + vocab)


def _lexical_rows(lexical, data, corpus: Corpus, qids: list[str]) -> dict:
    bm25 = lexical.bm25
    _reset_peak()
    start = time.perf_counter()
    retriever = lexical.index(corpus.texts)
    build = time.perf_counter() - start
    ids, scores = _bm25_rows(bm25, retriever, [data.queries[q] for q in qids], K)
    ms = []
    for q in _timed(qids):
        start = time.perf_counter()
        _bm25_rows(bm25, retriever, [data.queries[q]], K)
        ms.append(1000 * (time.perf_counter() - start))
    return {"index": "bm25s", "precision": None, **metrics(data, qids, ids, scores, corpus.ids),
            "ann_recall_at_10": None, "latency_p50_ms": _p50(ms), "build_seconds": round(build, 3),
            "bytes_per_passage": round(_bm25_bytes(retriever) / len(corpus.texts), 1), "peak_mb": _peak_mb()}


def _dense_rows(candidate, data, corpus: Corpus, qids: list[str], vectors: np.ndarray, qvecs: np.ndarray,
                timed: tuple[list[str], list[np.ndarray], list[float]], indexes, precisions, threads) -> list[dict]:
    from bench.index import build
    from bench.index.precision import parse_precision

    timed_ids, timed_vecs, encode_ms = timed
    rows = []
    bases = {}  # one index per base precision serves its +rescore row too
    for p in precisions:
        bases.setdefault(parse_precision(p)[0], []).append(p)
    exact_ids = build("exact", vectors, "fp32").search(qvecs, K)[1]  # what ANN recall is measured against
    for index in indexes:
        for base, group in bases.items():
            if not supports(index, base):
                continue
            _reset_peak()
            idx = build(index, vectors, base, threads=threads)
            for precision in sorted(group, key=lambda p: p != "fp32"):
                idx.precision, idx.rescoring = precision, parse_precision(precision)[1]
                scores, ids = idx.search(qvecs, K)
                ms = _search_ms(idx, timed_vecs, encode_ms)
                ann = None if (index == "exact" and precision == "fp32") else ann_recall(ids, exact_ids)
                rows.append({"index": index, "precision": precision, **metrics(data, qids, ids, scores, corpus.ids),
                             "ann_recall_at_10": ann, "latency_p50_ms": _p50(ms),
                             "build_seconds": round(idx.build_seconds, 3),
                             "bytes_per_passage": round(idx.nbytes / len(corpus.texts), 1), "peak_mb": _peak_mb()})
                tqdm_write(f"{len(corpus.texts):>9} {candidate.entry.name} [{candidate.variant}] {index}/{precision}: "
                           f"nDCG@10 {rows[-1]['ndcg_at_10']:.3f} ann@10 {ann} p50 {rows[-1]['latency_p50_ms']:.2f} ms "
                           f"build {idx.build_seconds:.1f} s")
            del idx
    return rows


@contextmanager
def one_thread():
    """Timed single questions run on one thread: a query server answers one question per thread, and on a busy
    2-core machine an OpenMP or BLAS second thread waits for a core (50-100 ms outliers at batch 1)."""
    import faiss

    try:  # NumPy's BLAS, for the exact fp32 scan (threadpoolctl comes with scikit-learn; optional here)
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        with threadpool_limits(1) if threadpool_limits else nullcontext():
            yield
    finally:
        faiss.omp_set_num_threads(before)


def _search_ms(idx, vecs, encode_ms) -> list[float]:
    """Encode (measured before) + search, per timed question."""
    ms = []
    with one_thread():
        for v, enc in zip(vecs, encode_ms):
            start = time.perf_counter()
            idx.search(v[None, :], K)
            ms.append(enc + 1000 * (time.perf_counter() - start))
    return ms


def _hybrid_row(pipe, data, corpus: Corpus, qids: list[str], vectors: np.ndarray, qvecs: np.ndarray,
                timed, bm25_retriever) -> dict:
    from bench.models.pipelines import fuse

    lexical = next(p for p in pipe.parts if p.kind == "lexical")
    timed_ids, timed_vecs, encode_ms = timed

    def one(qtext: str, qv: np.ndarray):
        lex = lexical.bm25.scores([qtext], [], index=bm25_retriever)[0]
        dense = vectors @ qv
        fused = fuse([lex, dense] if pipe.parts[0] is lexical else [dense, lex], pipe.fusion, pipe.weight)
        top = np.argpartition(-fused, min(K, len(fused)) - 1)[:K]
        top = top[np.argsort(-fused[top], kind="stable")]
        return top, fused[top]

    _reset_peak()
    ids, scores = zip(*(one(data.queries[q], v) for q, v in zip(qids, qvecs)))
    ms = []
    with one_thread():
        for q, v, enc in zip(timed_ids, timed_vecs, encode_ms):
            start = time.perf_counter()
            one(data.queries[q], v)
            ms.append(enc + 1000 * (time.perf_counter() - start))
    return {"index": "bm25s+exact", "precision": "fp32", **metrics(data, qids, list(ids), list(scores), corpus.ids),
            "ann_recall_at_10": None, "latency_p50_ms": _p50(ms), "build_seconds": None,
            "bytes_per_passage": round((_bm25_bytes(bm25_retriever) + vectors.nbytes) / len(corpus.texts), 1),
            "peak_mb": _peak_mb()}


def tqdm_write(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text)


# --- the sweep --------------------------------------------------------------------------------------------------------

KEY = ("task", "model", "variant", "size", "index", "precision")


def _check_options(sizes, indexes, precisions, engine) -> None:
    if not sizes:
        raise BenchError("--sizes: give at least one corpus size")
    bad = [n for n in sizes if int(n) < 1]
    if bad:
        raise BenchError(f"--sizes: {bad[0]} is not a corpus size (expected a whole number of passages >= 1)")
    check_pairs(indexes, precisions)
    if engine not in ENGINES:
        raise BenchError(f"--engine: unknown engine '{engine}' (known: {', '.join(ENGINES)})")


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = fileio.read_json(path)
    if not isinstance(records, list):
        raise BenchError(f"{path}: expected a JSON list of scale records")
    return records


def save_records(new: list[dict], path: Path) -> list[dict]:
    """Merge `new` into `path` (a row with the same task, model, variant, size, index and precision is replaced);
    written to a temporary file and renamed, so an interrupted run never leaves half a file."""
    merged = {tuple(r.get(k) for k in KEY): r for r in read_records(path)}
    merged.update({tuple(r.get(k) for k in KEY): r for r in new})
    rows = sorted(merged.values(), key=lambda r: (r["task"], r["model"], r["variant"], r["size"], str(r["index"]),
                                                  str(r["precision"])))
    fileio.write_atomic(path, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    return rows


def _machine(threads: int) -> dict:
    return {"code_version": provenance.code_version(), **provenance.machine_info(threads)}


def scale(task: str, sizes: list[int], models="models.yaml", only=None, variants=None, indexes=None,
          precisions=None, engine: str = "local", address: str | None = None, out="reports",
          distractor_dirs=None, threads: int | None = None, write_reports: bool = True) -> list[dict]:
    """Score each selected candidate x variant on `task` grown to each size; returns the merged records of
    `out`/scale.json. Dense candidates get one row per index x precision; BM25 and hybrids one row per size."""
    from tqdm.auto import tqdm

    from bench.models.static import sadedegel_wheel
    from bench.runner import select

    sizes = sorted({int(n) for n in sizes})
    precisions = list(precisions or DEFAULT_PRECISIONS)
    check_pairs((), precisions)
    # Named indexes must each get a precision they store; of the defaults, those that get none are left out.
    indexes = list(indexes or (i for i in DEFAULT_INDEXES if any(supports(i, p) for p in precisions)))
    _check_options(sizes, indexes, precisions, engine)
    threads = threads or encoders.threads()
    bench_threads.use(threads)
    pairs = select(models, only, variants)
    spec = taskdata.resolve([task])[0]
    data = taskdata.load(spec)
    if spec.format == "leaflets":
        from bench.data.chunking import MAX_WORDS
    else:
        MAX_WORDS = 10 ** 6  # paragraphs as they are: such tasks search whole paragraphs
    wheel = None
    sade = next((e for e in registry.load_registry(models) if e.loader == "sadedegel"), None)
    if sade is not None:
        try:
            wheel = sadedegel_wheel(sade)
        except Unavailable:
            wheel = None
    stream = dx.for_task(data.name, [data.doc_text(d) for d in data.corpus], wheel,
                         [Path(p) for p in distractor_dirs or ()], max_words=MAX_WORDS)
    sets = corpora(data, stream, sizes)
    print(f"{data.name}: {len(data.corpus)} passages, {len(data.queries)} questions; distractors: "
          f"{len(stream.real)} real ({', '.join(f'{k} {v}' for k, v in stream.sources.items())}), "
          f"{stream.contaminated} dropped for holding a sentence of the task; "
          f"synthetic beyond that ({stream.synthetic_rejected} rejected)", file=sys.stderr)
    for name, why in stream.unavailable.items():
        print(f"distractor source {name} not read: {why}", file=sys.stderr)
    out = Path(out)
    prov = {"task_fingerprint": provenance.task_fingerprint(data), "task_files": provenance.task_files(spec),
            "distractors_real": len(stream.real), "distractors_dropped": stream.contaminated, **_machine(threads)}
    qids = sorted(data.queries)
    path = out / "scale.json"
    merged = read_records(path)
    for entry, variant in tqdm(pairs, desc="candidates", unit="variant"):
        label = f"{entry.name} [{variant}]"
        candidate, problem = encoders.try_load(entry, variant)
        if problem:
            status, reason, fix = problem
            tqdm.write(f"{status} {label}: {reason} (fix: {fix})")
            continue
        try:
            rows = _candidate_rows(candidate, entry, variant, data, sets, qids, indexes, precisions, engine, address,
                                   threads, prov, path)
        except (BenchError, Unavailable):
            raise
        except Exception as e:
            tqdm.write(f"failed {label}: {one_line(e)}")
            continue
        merged = save_records(rows, path)
    if write_reports:
        from bench.reports import scale_report

        for written in scale_report.write(merged, out):
            print(f"wrote {written}")
    return merged


def _dense_part(candidate):
    return next(p for p in candidate.parts if p.kind != "lexical")


def _candidate_rows(candidate, entry, variant, data, sets: dict[int, Corpus], qids, indexes, precisions, engine,
                    address, threads, prov, path) -> list[dict]:
    from tqdm.auto import tqdm

    kind = candidate.kind
    if kind == "pipeline" and not hasattr(candidate, "parts"):
        raise Unavailable("re-ranking pipelines are not swept (their second stage scores pairs, not vectors)", "")
    biggest = sets[max(sets)]
    dense = candidate if kind == "bi-encoder" else (_dense_part(candidate) if kind == "pipeline" else None)
    vectors = qvecs = timed = rate = None
    if dense is not None:
        vectors = passage_vectors(dense, biggest.texts, engine, address)
        qvecs = np.stack(_encode_ms(dense, [data.queries[q] for q in qids])[0])
        tids = _timed(qids)
        tv, ms = _encode_ms(dense, [data.queries[q] for q in tids])
        timed = (tids, tv, ms)
        rate = passages_per_s(dense, biggest.texts[biggest.n_task:] or biggest.texts)
    rows = []
    for n in tqdm(sorted(sets), desc=f"sizes of {entry.name}", unit="size", leave=False):
        corpus = sets[n]
        if kind == "lexical":
            found = [_lexical_rows(candidate, data, corpus, qids)]
        elif kind == "bi-encoder":
            found = _dense_rows(candidate, data, corpus, qids, vectors[:n], qvecs, timed, indexes, precisions,
                                threads)
        else:
            lexical = next(p for p in candidate.parts if p.kind == "lexical")
            found = [_hybrid_row(candidate, data, corpus, qids, vectors[:n], qvecs, timed,
                                 lexical.index(corpus.texts))]
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for row in found:
            rows.append({"task": data.name, "model": entry.name, "variant": variant, "size": n, **row,
                         "synthetic_share": corpus.synthetic_share, "n_questions": len(qids),
                         "passages_per_s": rate, "engine": engine, "created": stamp, **prov})
        if kind != "bi-encoder":
            tqdm.write(f"{n:>9} {entry.name} [{variant}]: nDCG@10 {found[0]['ndcg_at_10']:.3f} "
                       f"p50 {found[0]['latency_p50_ms']:.2f} ms")
        save_records(rows, path)  # per size: an interrupted sweep keeps what it measured
    return rows
