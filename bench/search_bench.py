"""Figures for the README: `bench search` at the size of a real corpus, and encoding throughput on Ray.

    python -m bench.search_bench search --passages 100000 --model NAME --out DIR
        writes a synthetic folder of about N passages (sentences of thquad_train paragraphs recombined, seeded),
        indexes it with `bench search index`'s own build(), then answers thquad_train questions in a fresh process
        through the same search.ask() that `bench search query` times, and prints: build seconds, passages, ANN
        index, query p50/p90 (the figure `search query` prints: question to ranking, no process start or model
        load), that process's peak RSS, and ANN recall@10 against exact search over the same stored vectors.
    python -m bench.search_bench ray --passages 400 --model NAME [--variant V] --actors 1 2
        encodes the same passages locally and with 1, 2 ... actors on a Ray started here; prints passages/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import threads as bench_threads

THQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "thquad_train"
FILE_PASSAGES = 1000  # passages per synthetic file: a folder of 10^3 files at 10^6 passages
WORDS_PER_PASSAGE = 120  # bench.data.chunking.MAX_WORDS: what one passage holds


def thquad(folder: Path = THQUAD) -> tuple[list[str], list[str]]:
    """(sentences, questions) of the thquad_train paragraphs."""
    sentences, questions = [], []
    for path in sorted(folder.glob("*.json")):
        for doc in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for p in doc["paragraphs"]:
                sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", p["context"]) if len(s.split()) >= 4]
                questions += [q["question"] for q in p["qas"]]
    return sentences, questions


def write_corpus(folder: Path, passages: int, seed: int = 0) -> None:
    """About `passages` passages of recombined sentences, FILE_PASSAGES per file; kept when already written."""
    done = folder / ".complete"
    if done.exists() and done.read_text() == str(passages):
        return
    sentences, _ = thquad()
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(-(-passages // FILE_PASSAGES)):
        words, out = 0, []
        while words < WORDS_PER_PASSAGE * min(FILE_PASSAGES, passages - n * FILE_PASSAGES):
            s = rng.choice(sentences)
            out.append(s)
            words += len(s.split())
        (folder / f"doc{n:05d}.txt").write_text(" ".join(out), encoding="utf-8")
    done.write_text(str(passages))


def _entry(models: str, name: str):
    from bench.models import registry

    entries = {e.name: e for e in registry.load_registry(models)}
    if name not in entries:
        raise SystemExit(f"error: --model '{name}' is not in {models}")
    return entries[name]


def query_run(index: Path, models: str, questions: list[str], k: int) -> dict:
    """What one `bench search query` process does per question, for many questions: ids, latencies, peak RSS."""
    from bench import search, store
    from bench.models import encoders

    opened = store.open_store(index)
    opened.warm()  # as `search query` does before it times the question
    entry = _entry(models, opened.manifest["model"])
    candidate = encoders.load(entry, opened.manifest["variant"])
    ms, ids = [], []
    for q in questions:
        hits, t = search.ask(opened, candidate, q, k)
        ms.append(t)
        ids.append([c.id for _, c in hits])
    return {"ms": ms, "ids": ids, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: a child started by subprocess inherits its
    parent's figure across fork and exec (the builder's gigabytes would be charged to the query process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def exact_ids(index: Path, models: str, questions: list[str], k: int) -> list[list[str]]:
    """Top-k by exact dot product over every stored vector (read from the table, not recomputed)."""
    from bench import store
    from bench.models import encoders

    opened = store.open_store(index)
    t = opened.table.to_arrow().select(["id", "vector"])
    ids = t.column("id").to_pylist()
    vectors = t.column("vector").combine_chunks().values.to_numpy().reshape(len(ids), -1)
    candidate = encoders.load(_entry(models, opened.manifest["model"]), opened.manifest["variant"])
    out = []
    for q in questions:
        scores = vectors @ candidate.query_vector(q)
        top = np.argpartition(-scores, k)[:k]
        out.append([ids[i] for i in top[np.argsort(-scores[top], kind="stable")]])
    return out


def search_figures(args) -> None:
    from bench import search
    from bench.models import encoders

    out = Path(args.out)
    folder, index = out / "corpus", out / "index"
    write_corpus(folder, args.passages)
    entry = _entry(args.models, args.model)
    start = time.perf_counter()
    stats = search.build(folder, encoders.load(entry, args.variant), entry.name, args.variant or entry.base_variant,
                         index)
    build_s = time.perf_counter() - start
    _, questions = thquad()
    questions = random.Random(1).sample(questions, args.queries)
    qfile = out / "questions.json"
    qfile.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    # A fresh process, as `bench search query` is one: its peak RSS is the query side's alone.
    run = subprocess.run([sys.executable, "-m", "bench.search_bench", "_query", str(index), args.models, str(qfile),
                          str(args.k)], capture_output=True, text=True, check=True)
    res = json.loads(run.stdout.strip().splitlines()[-1])
    exact = exact_ids(index, args.models, questions, args.k)
    recall = float(np.mean([len(set(a) & set(e)) / args.k for a, e in zip(res["ids"], exact)]))
    ms = np.array(res["ms"][1:])  # the first question pays one-off lazy loads (index pages, ANN structures)
    figures = {"model": entry.name, "passages": stats["passages"], "ann": stats["ann"], "build_s": round(build_s, 1),
               "queries": len(ms), "p50_ms": round(float(np.median(ms)), 2),
               "p90_ms": round(float(np.percentile(ms, 90)), 2), "query_peak_rss_mb": round(res["peak_rss_mb"]),
               f"ann_recall_at_{args.k}": round(recall, 4), "cpus": os.cpu_count(),
               "load_average": os.getloadavg()[0]}
    print(json.dumps(figures, ensure_ascii=False))


def ray_figures(args) -> None:
    from bench.models import encoders, ray_engine, stages

    sentences, _ = thquad()
    rng = random.Random(0)
    texts = [" ".join(rng.choice(sentences) for _ in range(5)) for _ in range(args.passages)]
    entry = _entry(args.models, args.model)
    dense = stages.dense_stages(encoders.load(entry, args.variant))[0]
    prepared = sorted(dense.prepare(texts, "passage"), key=len)
    start = time.perf_counter()
    for i in range(0, len(prepared), dense.batch_size):
        dense.embed(prepared[i:i + dense.batch_size], "passage")
    rows = [{"engine": "local", "threads": bench_threads.count(),
             "passages_per_s": round(len(texts) / (time.perf_counter() - start), 1)}]
    ray_engine.connect(None)
    for actors in args.actors:
        start, arrivals = time.perf_counter(), []
        ray_engine.embed_missing(dense, prepared, actors, arrivals)
        # The whole job, the pool's start-up (worker processes, one model load per actor) included: on a small job
        # that start-up is a large share, so the time to the first batch back is given beside it.
        rows.append({"engine": "ray", "actors": actors, "threads_per_actor": 1,
                     "passages_per_s": round(len(texts) / (time.perf_counter() - start), 1),
                     "first_batch_after_s": round(arrivals[0][0] - start, 1)})
    for r in rows:
        print(json.dumps({"model": entry.name, "variant": dense.variant, "passages": len(texts), **r,
                          "load_average": os.getloadavg()[0]}))


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_query":
        index, models, qfile, k = argv[1:5]
        questions = json.loads(Path(qfile).read_text(encoding="utf-8"))
        print(json.dumps(query_run(Path(index), models, questions, int(k))))
        return
    p = argparse.ArgumentParser(prog="python -m bench.search_bench")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("search")
    s.add_argument("--passages", type=int, required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--variant")
    s.add_argument("--models", default="models.yaml")
    s.add_argument("--out", required=True)
    s.add_argument("--queries", type=int, default=200)
    s.add_argument("-k", type=int, default=10)
    r = sub.add_parser("ray")
    r.add_argument("--passages", type=int, default=400)
    r.add_argument("--model", required=True)
    r.add_argument("--variant")
    r.add_argument("--models", default="models.yaml")
    r.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    (search_figures if args.what == "search" else ray_figures)(args)


if __name__ == "__main__":
    main()
