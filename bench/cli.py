"""Command line: run, list, report, inspect, convert, mteb-check."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import Counter
from pathlib import Path

from bench.data import convert, tasks
from bench.models import encoders, loaders, registry
from bench.measure import flops, peaks, speed
from bench.measure import results
from bench.reports import report
from bench.errors import BenchError, Unavailable


def _entries(models_path) -> dict:
    return {e.name: e for e in registry.load_registry(models_path)}


def _lookup(entries: dict, name: str, flag: str, models_path):
    if name not in entries:
        raise BenchError(f"{flag}: no entry named '{name}' in {models_path} (known: {', '.join(entries)})")
    return entries[name]


def _out_folder(path, flag: str = "--out") -> Path:
    """Checked before any work: a file in the way would otherwise surface only when the results are written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BenchError(f"{flag} {path}: names a file; pass a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. under /proc, or a read-only mount: said now, not after the run's work
        raise BenchError(f"{flag} {path}: cannot write there ({e.strerror}); pass a writable folder") from None
    return path


def _speed_options(args) -> dict:
    return {"rounds": args.rounds, "remeasure": args.remeasure, "max_workers": args.max_workers}


def _variant(entry, variant: str | None, flag: str = "--variant") -> str:
    variant = variant or entry.base_variant
    if variant not in (entry.variants if entry.kind == "pipeline" else loaders.variants(entry.loader)):
        raise BenchError(f"{flag}: '{entry.name}' has no variant '{variant}' (has {', '.join(entry.variants)})")
    return variant


def _question(text: str, flag: str) -> str:
    if not text.strip():
        raise BenchError(f"{flag}: the question is empty")
    return text


def _threads(args) -> int:
    """--threads, else BENCH_THREADS, else every core; a bad environment value is named, not a traceback."""
    if args.threads:
        return args.threads
    try:
        return positive_int(os.environ.get("BENCH_THREADS") or str(os.cpu_count() or 1))
    except argparse.ArgumentTypeError:
        raise BenchError("environment variable BENCH_THREADS: expected a whole number of 1 or more") from None


def cmd_run(args) -> int:
    from bench.runner import run

    args.threads = _threads(args)
    _out_folder(args.out)
    run(models=args.models, tasks=args.tasks, only=args.only, variants=args.variants, threads=args.threads,
        measure_speed=not args.no_speed, out=args.out, replace=args.replace, profile=args.profile,
        **_speed_options(args))
    return 0


def _pm(value: float | None, spread: float | None, fmt: str) -> str:
    return "" if value is None else f"{value:{fmt}} ±{spread or 0:.1f}%"


def _gflops_cell(f, variant: str, machine: dict) -> str:
    """Achieved GFLOP/s and its share of the peak its arithmetic runs at (int8 variants: the int8 peak)."""
    peak = flops.peak_fields(variant, f.gflops, machine)
    if f.gflops is None or not peak["peak_for_variant"]:
        return "" if f.gflops is None else f"{f.gflops:.1f}"
    return f"{f.gflops:.1f} ({100 * f.gflops / peak['peak_for_variant']:.0f}% of {peak['peak_kind']})"


def cmd_speed(args) -> int:
    from bench.runner import load_tasks, select, speed_texts

    args.threads = _threads(args)
    options = _speed_options(args)
    pairs = select(args.models, args.only, args.variants)
    specs = tasks.resolve(args.tasks)
    data, _, errors = load_tasks(specs)
    if not data:
        raise BenchError("no task data available to time with")
    jobs = []
    for entry, variant in pairs:
        try:
            registry.check_available(entry)
        except Unavailable as u:
            print(f"skipped {entry.name} [{variant}]: {u.reason}")
            continue
        jobs.append(speed.Job(entry, variant, speed_texts(data)))
    outcomes, gemm = speed.measure_all(jobs, args.threads, log=print, **options)
    m = peaks.machine(args.threads, gemm)
    print(f"machine: {m['cpu']}, {m['simd']}; threads {args.threads}; GEMM peaks "
          f"({'cached' if m['peaks_cached'] else 'measured'}) fp32 {m['peak_gflops']} GFLOP/s, "
          f"int8 {m['peak_int8_gops']} GOP/s; {m['libs']}")
    rows = []
    for job, outcome in zip(jobs, outcomes):
        if outcome.error:
            print(f"failed {job.label}: {outcome.error}")
            continue
        for task, f in outcome.figures.items():
            rows.append([task, job.entry.name, job.variant, "cached" if outcome.cached else "measured",
                         f"{f.load_seconds:.2f}", _pm(f.latency_p50_ms, f.latency_p50_spread_pct, ".2f"),
                         f"{f.latency_p95_ms:.2f}", _pm(f.throughput_per_s, f.throughput_spread_pct, ".1f"),
                         _gflops_cell(f, job.variant, m), f"{f.peak_rss_mb:.0f}"])
    from tabulate import tabulate

    print(tabulate(rows, headers=["task", "model", "variant", "speed", "load s", "p50 ms", "p95 ms", "passages/s",
                                  "GFLOP/s (% peak)", "peak MB"], disable_numparse=True))
    print(f"p50 and passages/s: medians of {args.rounds} interleaved rounds, ± half the interquartile range of the "
          "round figures")
    if errors:
        raise BenchError("; ".join(errors) + " (the other tasks were timed)")
    return 0


def cmd_list(args) -> int:
    rows = []
    for e in registry.load_registry(args.models):
        try:
            registry.check_available(e)
            status, why = "available", ""
        except Unavailable as u:
            status, why = "skipped", f"{u.reason} -> {u.fix}"
        rows.append([e.name, e.kind, e.loader, e.source, status, why])
    from tabulate import tabulate

    print(tabulate(rows, headers=["name", "kind", "loader", "source", "status", "why / how to make it available"]))
    return 0


def cmd_report(args) -> int:
    from bench.reports import students, training

    out = Path(args.out)
    written = []
    if not args.training_only:
        records = results.read(out / "results.json")
        if not records:
            raise BenchError(f"{out / 'results.json'}: holds no result records; run `python -m bench run` first")
        # The registry's unseen-topics verdicts mark rows and keep them out of the recommendations; without a
        # registry file the leaderboards are written from the records alone, unmarked.
        lost = (registry.lost_on_unseen_topics(registry.load_registry(args.models))
                if Path(args.models).is_file() else {})
        written = report.write_reports(records, out, lost)
    if not args.training_only and (out / "scale.json").is_file():  # the corpus-size sweep's report, from its records
        from bench.reports import scale_report
        from bench.scale import read_records

        written += scale_report.write(read_records(out / "scale.json"), out)
    for path in written + training.write_for(out, args.models, required=args.training_only) + students.write_for(out):
        print(f"wrote {path}")
    return 0


def cmd_inspect(args) -> int:
    entry = _lookup(_entries(args.models), args.model, "--model", args.models)
    variant = _variant(entry, args.variant)
    _question(args.query, "--query")
    spec, = tasks.resolve([args.task])
    data = tasks.load(spec)
    candidate = encoders.load(entry, variant)
    doc_ids = list(data.corpus)
    scores = candidate.scores([args.query], [data.doc_text(d) for d in doc_ids])[0]
    qid = next((q for q, t in data.queries.items() if t.strip() == args.query.strip()), None)
    gold = {d for d, rel in data.qrels.get(qid, {}).items() if rel > 0}
    order = sorted(range(len(doc_ids)), key=lambda i: -scores[i])
    print(f"{args.model} on {spec.name}: {args.query}")
    print("gold: " + (", ".join(sorted(gold)) if gold else "unknown (not one of the task's questions)"))
    for rank, i in enumerate(order[: args.k], 1):
        d = data.corpus[doc_ids[i]]
        mark = "*" if doc_ids[i] in gold else " "
        print(f"{mark}{rank:>3}  {scores[i]:.4f}  {doc_ids[i]:<14} {(d['title'] + ': ' if d['title'] else '')}{d['text'][:90]}")
    for g in gold - {doc_ids[i] for i in order[: args.k]}:
        rank = order.index(doc_ids.index(g)) + 1
        print(f"*{rank:>3}  {scores[doc_ids.index(g)]:.4f}  {g:<14} (the answer, below the top {args.k})")
    return 0


def cmd_convert(args) -> int:
    from bench.data import repair
    from bench.models.lexical import BM25

    src, out = Path(args.input), _out_folder(args.out)
    fmt = args.format or ("lines" if args.contexts else convert.guess_format(src))
    options = None if args.no_repair else repair.Options(args.fuzzy_threshold or repair.FUZZY_THRESHOLD,
                                                             ranker=BM25())
    conv = convert.convert_file(src, fmt, options, Path(args.contexts) if args.contexts else None)
    if not conv.corpus:
        raise BenchError(f"{src}: empty corpus (no non-empty context)")
    try:
        convert.write_beir(conv, out)
    except OSError as e:
        raise BenchError(f"--out {out}: cannot write there ({e.strerror})") from None
    reasons = Counter(r["reason"] for r in conv.rejects if r["reason"] not in convert.INFORMATIONAL)
    rekeyed = sum(r["reason"] == "rekeyed_duplicate_id" for r in conv.rejects)
    print(f"{len(conv.corpus)} documents, {len(conv.queries)} questions -> {out}")
    if rekeyed:
        print(f"warning: {rekeyed} questions re-keyed: their source id was already another question's "
              "(new ids end in -2, -3, ...)")
    print("rejects: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none")
          + f" (details in {out / 'rejects.jsonl'})")
    tiers = Counter(r["tier"] for r in conv.repairs)
    print("repairs: " + (", ".join(f"{k} {v}" for k, v in sorted(tiers.items())) or "none")
          + (" (--no-repair)" if args.no_repair else f" (details in {out / 'repairs.jsonl'})"))
    return 0


def cmd_mteb_check(args) -> int:
    from bench.measure import mteb_check

    entries = _entries(args.models)
    names = args.only or list(entries)
    spec, = tasks.resolve([args.task])
    data = tasks.load(spec)
    rows = []
    for name in names:
        entry = _lookup(entries, name, "--only", args.models)
        try:
            candidate = encoders.load(entry)
        except Unavailable as u:
            print(f"skipped {name}: {u.reason}")
            continue
        rows += mteb_check.compare(candidate, data, spec.language)
    from tabulate import tabulate

    if not rows:
        print("mteb-check failed: nothing was compared (every candidate was skipped)", file=sys.stderr)
        return 1
    print(tabulate(rows, headers=["model", "metric", "bench", "mteb.evaluate", "|diff|"], floatfmt=".5f"))
    worst = max(r[4] for r in rows)
    print(f"largest difference: {worst:.5f}")
    return 0 if worst <= 1e-4 else 1


def cmd_check(args) -> int:
    from bench.measure import check

    if args.write:
        check.write_baseline(Path(args.baseline), Path(args.models))
        print(f"wrote {args.baseline}")
        return 0
    problems = check.run(Path(args.baseline), Path(args.models), args.tolerance)
    for p in problems:
        print(f"regression: {p}", file=sys.stderr)
    print("check passed" if not problems else f"check failed: {len(problems)} problem(s)")
    return 1 if problems else 0


def _retriever(entries: dict, name: str, variant, models_path):
    """Any entry that ranks passages by itself; a cross-encoder only re-scores what another stage found."""
    entry = _lookup(entries, name, "--model", models_path)
    if entry.kind == "cross-encoder":
        users = [f"'{e.name}'" for e in entries.values() if any(s.name == name for s, _ in e.stage_entries)]
        raise BenchError(f"--model: '{name}' is a cross-encoder, which only re-scores what a first stage found; index "
                         f"with a pipeline entry that ends in it ({', '.join(users) or f'none in {models_path} yet'}) "
                         "or pass it to `search query` as --rerank")
    return entry, _variant(entry, variant)


def _search_index(args, index: Path) -> int:
    from bench import search

    folder = Path(args.target)
    search.check_index_path(index)
    search.source_files(folder)
    entries = _entries(args.models)
    name, variant = args.model, args.variant
    if not name:
        # An entry that lost to its base on unseen topics (or was never judged there) is never the default pick.
        names = set(entries) - set(registry.lost_on_unseen_topics(list(entries.values())))
        name, chosen, why = search.default_model(index, folder, Path(args.results), names, args.task,
                                                 args.budget_ms)
        variant = variant or chosen
        print(f"model: {name} [{variant}] ({why})")
    entry, variant = _retriever(entries, name, variant, args.models)
    stats = search.build(folder, encoders.load(entry, variant), entry.name, variant, index, args.engine, args.address)
    print(f"indexed {stats['indexed']} files, reused {stats['reused']}, skipped {stats['skipped']}; "
          f"{stats['passages']} passages in {index}" + (f" (ANN index {stats['ann']['type']})" if stats["ann"] else ""))
    return 0


def _shortened(text: str, limit: int = 200) -> str:
    """A question echoed back in full would bury the answer under it when someone pastes a document."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else f"{one_line[:limit]}… ({len(text):,} characters)"


def _search_query(args, index: Path) -> int:
    import json

    from bench import answers, search

    _question(args.target, "search query")
    opened = search.store.open_store(index)
    manifest = opened.manifest
    entries = _entries(args.models)
    entry, variant = _retriever(entries, manifest["model"], manifest["variant"], args.models)
    reranker = encoders.load_stage(_lookup(entries, args.rerank, "--rerank", args.models)) if args.rerank else None
    candidate = encoders.load(entry, variant)
    opened.warm()
    hits, ms = search.ask(opened, candidate, args.target, args.k, reranker)
    if args.rerank:  # a re-ranker's scores are on its own scale: the index model's threshold does not apply
        cal = answers.Calibration(None, None, f"no calibrated threshold for {manifest['model']} [{variant}] "
                                              f"re-ranked by {args.rerank}; passages are shown without a confidence check")
    else:
        cal = answers.calibration(Path(args.results), manifest["model"], variant, args.task)
    if args.json:
        print(json.dumps(answers.payload(hits, cal), ensure_ascii=False))
        return 0
    # Model loading and opening the index are one-off costs; the figure is what each further question costs.
    print(f"{manifest['model']} [{variant}]" + (f" -> {args.rerank}" if args.rerank else "") + f" · {ms:.1f} ms: "
          f"{_shortened(args.target)}")
    print("\n".join(answers.text_lines(hits, cal, search.describe)))
    return 0


def cmd_search(args) -> int:
    from bench import search

    index = Path(args.index) if args.index else search.default_index()
    return (_search_index if args.action == "index" else _search_query)(args, index)


def cmd_scale(args) -> int:
    from bench.scale import scale

    _out_folder(args.out)
    scale(task=args.task, sizes=args.sizes, models=args.models, only=args.only, variants=args.variants,
          indexes=args.index, precisions=args.precision, engine=args.engine, address=args.address, out=args.out,
          distractor_dirs=args.distractors, threads=_threads(args))
    return 0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None


def similarity(text: str) -> float:
    """A rapidfuzz score threshold: above 0, at most 100."""
    value = _number(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"expected a number above 0 and at most 100, got {text}")
    return value


def tolerance(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):  # nan would pass any drop, a negative one fail an unchanged score
        raise argparse.ArgumentTypeError(f"expected a finite number of 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def cmd_train(args) -> int:
    from bench.train.build import build

    for record in build(args.name, args.models, args.max_steps, args.force):
        leaks = ", ".join(f"{t}: {c.get('questions', '-')} q / {c.get('paragraphs', '-')} p"
                          for t, c in record["leakage"].items())
        steps = f"{record['steps']} steps, " if record.get("steps") else ""  # none for static-distill, trim, merge
        print(f"built {record['name']}: {steps}{record['wall_seconds']} s; "
              f"leakage (equal questions / paragraphs) {leaks or 'no evaluation tasks found'}")
    return 0


def _add_speed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", type=positive_int, default=speed.ROUNDS,
                   help=f"interleaved timing rounds per variant; figures are their medians (default {speed.ROUNDS})")
    p.add_argument("--remeasure", action="store_true",
                   help="time again even where cached timings for this machine, code, model and texts exist")
    p.add_argument("--max-workers", type=positive_int, default=speed.MAX_WORKERS,
                   help=f"variants loaded at once while timing; lower it when memory is short (default {speed.MAX_WORKERS})")


class _Parser(argparse.ArgumentParser):
    """Bad arguments are bad input like any other: one line and exit status 2, not a usage block."""

    def error(self, message):
        raise BenchError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from bench import search

    p = _Parser(prog="bench", description="Benchmark small Turkish text encoders for retrieval.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="score every registry candidate on the tasks and write reports")
    r.add_argument("--models", default="models.yaml")
    r.add_argument("--tasks", nargs="+", help="task names or paths to task YAML files (default: tasks marked default)")
    r.add_argument("--profile", help="run the candidates of this profile of the registry (make bench: default); "
                   "--only and --variants narrow it further")
    r.add_argument("--only", nargs="+", help="run only these registry entries")
    r.add_argument("--variants", nargs="+", help="run only these runtime variants (e.g. torch-fp32 onnx-int8)")
    r.add_argument("--threads", type=positive_int, help="threads for every runtime (default: BENCH_THREADS, else all cores)")
    r.add_argument("--no-speed", action="store_true", help="quality only; skip the speed and memory measurements")
    r.add_argument("--out", default="reports")
    r.add_argument("--replace", action="store_true",
                   help="drop rows in --out computed on other data for the same task (else the run refuses to mix them)")
    _add_speed_flags(r)
    r.set_defaults(fn=cmd_run)
    sp = sub.add_parser("speed", help="measure load time, latency, throughput and memory of each variant")
    sp.add_argument("--models", default="models.yaml")
    sp.add_argument("--tasks", nargs="+", help="tasks whose questions and paragraphs are timed (default: default tasks)")
    sp.add_argument("--only", nargs="+")
    sp.add_argument("--variants", nargs="+")
    sp.add_argument("--threads", type=positive_int, help="threads for every runtime (default: BENCH_THREADS, else all cores)")
    _add_speed_flags(sp)
    sp.set_defaults(fn=cmd_speed)
    ls = sub.add_parser("list", help="print registry entries and whether each can run here")
    ls.add_argument("--models", default="models.yaml")
    ls.set_defaults(fn=cmd_list)
    rep = sub.add_parser("report", help="rebuild the Markdown leaderboards (and training.md) from results.json")
    rep.add_argument("--out", default="reports")
    rep.add_argument("--models", default="models.yaml", help="registry naming the trained entries (for training.md)")
    rep.add_argument("--training-only", action="store_true",
                     help="write only training.md, from results.json and training.json in --out")
    rep.set_defaults(fn=cmd_report)
    ins = sub.add_parser("inspect", help="rank a task's paragraphs for one question, with scores")
    ins.add_argument("--model", required=True)
    ins.add_argument("--task", required=True)
    ins.add_argument("--query", required=True)
    ins.add_argument("--models", default="models.yaml")
    ins.add_argument("--variant", help="runtime variant (default: the model as loaded)")
    ins.add_argument("-k", type=positive_int, default=10)
    ins.set_defaults(fn=cmd_inspect)
    c = sub.add_parser("convert", help="SQuAD JSON / JSONL / CSV -> corpus.jsonl, queries.jsonl, qrels/test.tsv")
    c.add_argument("input")
    c.add_argument("--format", choices=["squad", "jsonl", "csv", "lines"],
                   help="lines: INPUT holds one question per line (optionally TAB answer), --contexts one context per line")
    c.add_argument("--contexts", help="format lines: the parallel file of contexts, one per line")
    c.add_argument("--out", required=True)
    c.add_argument("--no-repair", action="store_true",
                   help="convert strictly: reject every answer that is not a verbatim span, every question asked of "
                        "several contexts and every question without a context")
    c.add_argument("--fuzzy-threshold", type=similarity, default=None,
                   help="lowest rapidfuzz similarity (0-100] of a fuzzy answer re-alignment (default: 90)")
    c.set_defaults(fn=cmd_convert)
    m = sub.add_parser("mteb-check", help="re-run candidates through mteb.evaluate and compare the figures")
    m.add_argument("--task", required=True)
    m.add_argument("--models", default="models.yaml")
    m.add_argument("--only", nargs="+")
    m.set_defaults(fn=cmd_mteb_check)
    se = sub.add_parser("search", help="index a folder of documents, or ask the index a question")
    se.add_argument("action", choices=["index", "query"])
    se.add_argument("target", help="the folder to index, or the question")
    se.add_argument("--index", help="index folder (default: <cache>/search/default)")
    se.add_argument("--model", help="registry entry to index with: bi-encoder, BM25, hybrid or re-ranking pipeline "
                    "(default: the leaderboard's recommendation for the task closest to DIR)")
    se.add_argument("--variant", help="runtime variant of --model")
    se.add_argument("--task", help="index: take the default model from this task's leaderboard instead of the closest "
                    "task's; query: take the abstention threshold from this task's records")
    se.add_argument("--budget-ms", type=positive_float,
                    help=f"query latency budget of the default model's recommendation (default: {search.BUDGET_MS})")
    se.add_argument("--rerank", help="registry entry that re-scores the top 50 (cross-encoder or bi-encoder)")
    se.add_argument("-k", type=positive_int, default=5)
    se.add_argument("--json", action="store_true",
                    help="query: print one JSON object (abstain, threshold, results with file, position, score, text)")
    se.add_argument("--models", default="models.yaml")
    se.add_argument("--results", default="reports/results.json",
                    help="leaderboard used to pick the default model (index) and the abstention threshold (query)")
    se.add_argument("--engine", choices=["local", "ray"], default="local",
                    help="index: encode the passages here, or on Ray (bench.models.engine)")
    se.add_argument("--address", help="index --engine ray: Ray cluster address, HOST:PORT or ray://HOST:10001 "
                    "(default: a Ray started here)")
    se.set_defaults(fn=cmd_search)
    sc = sub.add_parser("scale", help="corpus-size sweep: a task grown with distractors to each size, per index "
                        "and vector precision -> scale.json, scale.md and plots")
    sc.add_argument("--task", required=True)
    sc.add_argument("--sizes", nargs="+", type=positive_int, required=True, help="corpus sizes in passages (>= the task's)")
    sc.add_argument("--models", default="models.yaml")
    sc.add_argument("--only", nargs="+")
    sc.add_argument("--variants", nargs="+")
    sc.add_argument("--index", nargs="+", default=["exact", "hnsw"], help="exact, hnsw (bench/index)")
    sc.add_argument("--precision", nargs="+", default=["fp32", "int8", "int8+rescore", "binary", "binary+rescore"])
    sc.add_argument("--engine", default="local", help="local, or ray (bench.models.engine)")
    sc.add_argument("--address", help="Ray cluster address for --engine ray (default: a Ray started here)")
    sc.add_argument("--distractors", nargs="+", help="more folders of .txt/.md Turkish text to draw distractors from")
    sc.add_argument("--threads", type=positive_int, help="threads (default: BENCH_THREADS, else all cores)")
    sc.add_argument("--out", default="reports")
    sc.set_defaults(fn=cmd_scale)
    ck = sub.add_parser("check", help="CI gate: fail when quality falls below the baseline or the schema changes")
    ck.add_argument("--baseline", default="reports/baseline.json")
    ck.add_argument("--models", default="models.yaml")
    ck.add_argument("--tolerance", type=tolerance, help="allowed drop per metric (default: the baseline's, 0.01)")
    ck.add_argument("--write", action="store_true", help="(re)write the baseline from the current code")
    ck.set_defaults(fn=cmd_check)
    tr = sub.add_parser("train", help="build a registry entry that has a 'train:' block (and its trained bases first)")
    tr.add_argument("name", nargs="+", help="registry entries to build (with their trained bases, bases first)")
    tr.add_argument("--models", default="models.yaml")
    tr.add_argument("--max-steps", type=positive_int, help="stop each recipe after this many optimizer steps (a quick build)")
    tr.add_argument("--force", action="store_true", help="rebuild NAME even when it is already built")
    tr.set_defaults(fn=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Unavailable as u:  # a model or task asked for by name that cannot run here
        print(f"error: {' '.join(u.reason.split())}" + (f" (to fix: {u.fix})" if u.fix else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every file bench writes is renamed into place, so what is on disk is whole
        print("interrupted", file=sys.stderr)
        return 130
