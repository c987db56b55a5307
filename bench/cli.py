"""Command line: run, list, report, inspect, convert, mteb-check."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from bench import convert, encoders, evaluate, registry, report, results, speed, tasks
from bench.errors import BenchError, Unavailable


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:400]


def _record(entry, variant, task, status, **kw) -> results.ResultRecord:
    stages = [f"{e.name} [{v}]" for e, v in entry.stage_entries] or None
    return results.ResultRecord(task=task, model=entry.name, variant=variant, status=status,
                                kind=entry.kind, loader=entry.loader, source=entry.source, stages=stages,
                                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), **kw)


def _write_details(out: Path, task: str, entry, variant: str, per_query: list[dict]) -> str:
    rel = Path("details") / report.slug(task) / f"{report.slug(entry.name)}__{variant}.jsonl"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    with open(out / rel, "w", encoding="utf-8") as f:
        for row in per_query:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(rel)


def _entries(models_path) -> dict:
    return {e.name: e for e in registry.load_registry(models_path)}


def _lookup(entries: dict, name: str, flag: str, models_path):
    if name not in entries:
        raise BenchError(f"{flag}: no entry named '{name}' in {models_path} (known: {', '.join(entries)})")
    return entries[name]


def _select(args):
    entries = registry.load_registry(args.models)
    if args.only:
        wanted = set(args.only)
        missing = wanted - {e.name for e in entries}
        if missing:
            raise BenchError(f"--only: no registry entry named {', '.join(sorted(missing))} in {args.models}")
        entries = [e for e in entries if e.name in wanted]
    pairs = [(e, v) for e in entries for v in e.variants if not args.variants or v in args.variants]
    return entries, pairs


def _load_tasks(specs):
    data, problems, bad_input = {}, {}, False
    for spec in specs:
        try:
            data[spec.name] = tasks.load(spec)
        except Unavailable as u:
            print(f"skipping task {spec.name}: {u.reason}", file=sys.stderr)
            problems[spec.name] = ("skipped", u.reason, u.fix)
        except BenchError as e:
            print(f"error: {e}", file=sys.stderr)
            bad_input = True
            problems[spec.name] = ("failed", str(e), "fix the task data and run again")
    return data, problems, bad_input


def _speed_texts(data) -> dict:
    return {name: {"queries": list(d.queries.values()), "passages": [d.doc_text(x) for x in d.corpus]}
            for name, d in data.items()}


def _machine_fields(threads: int) -> dict:
    m = speed.machine(threads)
    return {"threads": threads, "peak_gflops": m["peak_gflops"], "cpu": f"{m['cpu']} ({m['cores']} cores)",
            "simd": m["simd"], "libs": m["libs"]}


def cmd_run(args) -> int:
    entries, pairs = _select(args)
    specs = tasks.resolve(args.tasks)
    out = Path(args.out)
    os.environ["BENCH_THREADS"] = str(args.threads)
    data, problems, bad_input = _load_tasks(specs)
    records_path = out / "results.json"
    done = results.read(records_path) if records_path.exists() else []
    new: list[results.ResultRecord] = []
    for spec in specs:
        if spec.name in problems:
            status, reason, fix = problems[spec.name]
            new += [_record(e, v, spec.name, status, reason=reason, fix=fix) for e, v in pairs]
    machine = _machine_fields(args.threads) if not args.no_speed and data else {}

    for entry, variant in tqdm(pairs if data else [], desc="candidates", unit="variant"):
        label = f"{entry.name} [{variant}]"
        try:
            candidate = encoders.load(entry, variant)
        except Unavailable as u:
            tqdm.write(f"skipped {label}: {u.reason}")
            new += [_record(entry, variant, t, "skipped", reason=u.reason, fix=u.fix) for t in data]
            continue
        except Exception as e:  # one broken candidate must not lose the others' results
            tqdm.write(f"failed {label}: {_one_line(e)}")
            new += [_record(entry, variant, t, "failed", reason=_one_line(e), fix="see the reason; check the registry entry")
                    for t in data]
            continue
        rows = {}
        for name, d in data.items():
            try:
                ev = evaluate.evaluate(candidate, d)
            except Exception as e:
                tqdm.write(f"failed {label} on {name}: {_one_line(e)}")
                new.append(_record(entry, variant, name, "failed", reason=_one_line(e)))
                continue
            details = _write_details(out, name, entry, variant, ev.per_query)
            rows[name] = _record(entry, variant, name, "ok", **ev.metrics, n_queries=len(d.queries),
                                 n_docs=len(d.corpus), encode_seconds=round(ev.encode_seconds, 2),
                                 params=candidate.params, disk_bytes=candidate.disk_bytes, details=details)
            tqdm.write(f"{name:>14} {label:<55} nDCG@10 {ev.metrics['ndcg_at_10']:.3f}")
        del candidate
        gc.collect()
        if rows and not args.no_speed:
            try:
                figures = speed.measure(entry, variant, _speed_texts({n: data[n] for n in rows}), args.threads)
                for name, rec in rows.items():
                    for key, value in {**asdict(figures[name]), **machine}.items():
                        setattr(rec, key, value)
                f = next(iter(figures.values()))
                tqdm.write(f"{'speed':>14} {label:<55} p50 {f.latency_p50_ms:.1f} ms, {f.throughput_per_s:.1f} passages/s")
            except Exception as e:
                tqdm.write(f"speed of {label} not measured: {_one_line(e)}")
                for rec in rows.values():
                    rec.reason = f"speed not measured: {_one_line(e)}"
        new += rows.values()
        _save(done, new, records_path)  # saved per candidate: a crash keeps what ran
    merged = _save(done, new, records_path)
    for path in report.write_reports(merged, out):
        print(f"wrote {path}")
    return 2 if bad_input else 0


def _save(done, new, path):
    merged = results.merge(done, new)
    results.fill_deltas(merged)
    results.write(merged, path)
    return merged


def cmd_speed(args) -> int:
    _, pairs = _select(args)
    specs = tasks.resolve(args.tasks)
    data, _, bad_input = _load_tasks(specs)
    if not data:
        raise BenchError("no task data available to time with")
    m = speed.machine(args.threads)
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['simd']}; threads {args.threads}; "
          f"fp32 GEMM peak {m['peak_gflops']} GFLOP/s; {m['libs']}")
    rows = []
    for entry, variant in pairs:
        try:
            registry.check_available(entry)
            figures = speed.measure(entry, variant, _speed_texts(data), args.threads)
        except Unavailable as u:
            print(f"skipped {entry.name} [{variant}]: {u.reason}")
            continue
        except Exception as e:
            print(f"failed {entry.name} [{variant}]: {_one_line(e)}")
            continue
        for task, f in figures.items():
            rows.append([task, entry.name, variant, f.load_seconds, f.latency_p50_ms, f.latency_p95_ms,
                         f.throughput_per_s, f.gflops, f.peak_rss_mb])
            print(f"{task:>14} {entry.name} [{variant}]: p50 {f.latency_p50_ms:.2f} ms, p95 {f.latency_p95_ms:.2f} ms, "
                  f"{f.throughput_per_s:.1f} passages/s", flush=True)
    from tabulate import tabulate

    print(tabulate(rows, headers=["task", "model", "variant", "load s", "p50 ms", "p95 ms", "passages/s", "GFLOP/s",
                                  "peak MB"], floatfmt=".2f"))
    return 2 if bad_input else 0


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
    out = Path(args.out)
    for path in report.write_reports(results.read(out / "results.json"), out):
        print(f"wrote {path}")
    return 0


def cmd_inspect(args) -> int:
    entry = _lookup(_entries(args.models), args.model, "--model", args.models)
    spec, = tasks.resolve([args.task])
    data = tasks.load(spec)
    candidate = encoders.load(entry, args.variant)
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
    src = Path(args.input)
    conv = convert.convert_file(src, args.format or convert.guess_format(src))
    if not conv.corpus:
        raise BenchError(f"{src}: empty corpus (no non-empty context)")
    convert.write_beir(conv, Path(args.out))
    reasons = {}
    for r in conv.rejects:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    print(f"{len(conv.corpus)} documents, {len(conv.queries)} questions -> {args.out}")
    print("rejects: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none")
          + f" (details in {Path(args.out) / 'rejects.jsonl'})")
    return 0


def cmd_mteb_check(args) -> int:
    from bench import mteb_check

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

    print(tabulate(rows, headers=["model", "metric", "bench", "mteb.evaluate", "|diff|"], floatfmt=".5f"))
    worst = max((r[4] for r in rows), default=0.0)
    print(f"largest difference: {worst:.5f}")
    return 0 if worst <= 1e-4 else 1


def cmd_check(args) -> int:
    from bench import check

    if args.write:
        check.write_baseline(Path(args.baseline), Path(args.models))
        print(f"wrote {args.baseline}")
        return 0
    problems = check.run(Path(args.baseline), Path(args.models), args.tolerance)
    for p in problems:
        print(f"regression: {p}", file=sys.stderr)
    print("check passed" if not problems else f"check failed: {len(problems)} problem(s)")
    return 1 if problems else 0


def _bi_encoder(models_path, name, variant):
    entry = _lookup(_entries(models_path), name, "--model", models_path)
    if entry.kind != "bi-encoder":
        raise BenchError(f"--model: '{name}' is a {entry.kind}; indexing needs a bi-encoder")
    variant = variant or entry.base_variant
    if variant not in registry.VARIANTS[entry.loader]:
        raise BenchError(f"--variant: '{name}' has no variant '{variant}' (has {', '.join(entry.variants)})")
    return entry, variant


def cmd_search(args) -> int:
    from bench import search

    index = Path(args.index) if args.index else search.default_index()
    if args.action == "index":
        name, variant = args.model, args.variant
        if not name:
            name, rec_variant, why = search.recommended_model(Path(args.results))
            variant = variant or rec_variant
            print(f"model: {name} [{variant}] ({why})")
        entry, variant = _bi_encoder(args.models, name, variant)
        stats = search.build(Path(args.target), encoders.load(entry, variant), entry.name, variant, index)
        print(f"indexed {stats['indexed']} files, reused {stats['reused']}, skipped {stats['skipped']}; "
              f"{stats['passages']} passages in {index}")
        return 0
    manifest, chunks, vectors = search.load(index)
    entry, variant = _bi_encoder(args.models, manifest["model"], manifest["variant"])
    reranker = None
    if args.rerank:
        reranker = encoders.load_stage(_lookup(_entries(args.models), args.rerank, "--rerank", args.models))
    hits = search.query(encoders.load(entry, variant), chunks, vectors, args.target, args.k, reranker)
    print(f"{manifest['model']} [{variant}]" + (f" -> {args.rerank}" if args.rerank else "") + f": {args.target}")
    for rank, (score, c) in enumerate(hits, 1):
        print(f"{rank:>2}. {score:.4f}  {search.describe(c)}")
        print(f"    {c.text[:300]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark small Turkish text encoders for retrieval.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="score every registry candidate on the tasks and write reports")
    r.add_argument("--models", default="models.yaml")
    r.add_argument("--tasks", nargs="+", help="task names or paths to task YAML files (default: tasks marked default)")
    r.add_argument("--only", nargs="+", help="run only these registry entries")
    r.add_argument("--variants", nargs="+", help="run only these runtime variants (e.g. torch-fp32 onnx-int8)")
    r.add_argument("--threads", type=int, default=encoders.threads(), help="threads for every runtime (default: all cores)")
    r.add_argument("--no-speed", action="store_true", help="quality only; skip the speed and memory measurements")
    r.add_argument("--out", default="reports")
    r.set_defaults(fn=cmd_run)
    sp = sub.add_parser("speed", help="measure load time, latency, throughput and memory of each variant")
    sp.add_argument("--models", default="models.yaml")
    sp.add_argument("--tasks", nargs="+", help="tasks whose questions and paragraphs are timed (default: default tasks)")
    sp.add_argument("--only", nargs="+")
    sp.add_argument("--variants", nargs="+")
    sp.add_argument("--threads", type=int, default=encoders.threads())
    sp.set_defaults(fn=cmd_speed)
    ls = sub.add_parser("list", help="print registry entries and whether each can run here")
    ls.add_argument("--models", default="models.yaml")
    ls.set_defaults(fn=cmd_list)
    rep = sub.add_parser("report", help="rebuild the Markdown leaderboards from results.json")
    rep.add_argument("--out", default="reports")
    rep.set_defaults(fn=cmd_report)
    ins = sub.add_parser("inspect", help="rank a task's paragraphs for one question, with scores")
    ins.add_argument("--model", required=True)
    ins.add_argument("--task", required=True)
    ins.add_argument("--query", required=True)
    ins.add_argument("--models", default="models.yaml")
    ins.add_argument("--variant", help="runtime variant (default: the model as loaded)")
    ins.add_argument("-k", type=int, default=10)
    ins.set_defaults(fn=cmd_inspect)
    c = sub.add_parser("convert", help="SQuAD JSON / JSONL / CSV -> corpus.jsonl, queries.jsonl, qrels/test.tsv")
    c.add_argument("input")
    c.add_argument("--format", choices=["squad", "jsonl", "csv"])
    c.add_argument("--out", required=True)
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
    se.add_argument("--model", help="bi-encoder to index with (default: the leaderboard's recommendation)")
    se.add_argument("--variant", help="runtime variant of --model")
    se.add_argument("--rerank", help="registry entry that re-scores the top 50 (cross-encoder or bi-encoder)")
    se.add_argument("-k", type=int, default=5)
    se.add_argument("--models", default="models.yaml")
    se.add_argument("--results", default="reports/results.json", help="leaderboard used to pick the default model")
    se.set_defaults(fn=cmd_search)
    ck = sub.add_parser("check", help="CI gate: fail when quality falls below the baseline or the schema changes")
    ck.add_argument("--baseline", default="reports/baseline.json")
    ck.add_argument("--models", default="models.yaml")
    ck.add_argument("--tolerance", type=float, help="allowed drop per metric (default: the baseline's, 0.01)")
    ck.add_argument("--write", action="store_true", help="(re)write the baseline from the current code")
    ck.set_defaults(fn=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
