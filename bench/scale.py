"""The corpus-size sweep: a task's questions against its passages plus distractors up to N, for N on a log grid,
per candidate x ANN index x vector precision -> scale.json records, scale.md and plots (callable from Python).

    >>> import bench.scale
    >>> records = bench.scale.scale(task="drug_leaflets", sizes=[1000, 10000], only=["BM25 (Turkish Snowball)"])
"""

from __future__ import annotations

import json
import sys
import time
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
from bench.scale_rows import (Corpus, dense_rows, encode_ms, hybrid_row, lexical_rows, timed_questions, tqdm_write,
                               unit)

THROUGHPUT_SAMPLE = 64  # distractor passages embedded afresh (uncached) to measure passages/s
DEFAULT_INDEXES = ("exact", "hnsw", "ivfpq")
# Each index gets the precisions it stores (bench.index.supports): pq is IVF-PQ's own, the rest exact's and HNSW's.
DEFAULT_PRECISIONS = ("fp32", "int8", "int8+rescore", "binary", "binary+rescore", "pq", "pq+rescore")
ENGINES = ("local", "ray")


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
        qvecs = np.stack(encode_ms(dense, [data.queries[q] for q in qids])[0])
        tids = timed_questions(qids)
        tv, ms = encode_ms(dense, [data.queries[q] for q in tids])
        timed = (tids, tv, ms)
        rate = passages_per_s(dense, biggest.texts[biggest.n_task:] or biggest.texts)
    rows = []
    for n in tqdm(sorted(sets), desc=f"sizes of {entry.name}", unit="size", leave=False):
        corpus = sets[n]
        if kind == "lexical":
            found = [lexical_rows(candidate, data, corpus, qids)]
        elif kind == "bi-encoder":
            found = dense_rows(candidate, data, corpus, qids, vectors[:n], qvecs, timed, indexes, precisions,
                                threads)
        else:
            lexical = next(p for p in candidate.parts if p.kind == "lexical")
            found = [hybrid_row(candidate, data, corpus, qids, vectors[:n], qvecs, timed,
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
