"""Command line: run, list, report, inspect, convert, mteb-check."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from bench import convert, encoders, evaluate, registry, report, results, tasks
from bench.errors import BenchError, Unavailable


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:400]


def _record(entry, spec_name, status, **kw) -> results.ResultRecord:
    return results.ResultRecord(task=spec_name, model=entry.name, variant=entry.variant, status=status,
                                kind=entry.kind, loader=entry.loader, source=entry.source,
                                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), **kw)


def _write_details(out: Path, task: str, entry, per_query: list[dict]) -> str:
    rel = Path("details") / report.slug(task) / f"{report.slug(entry.name)}__{entry.variant}.jsonl"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    with open(out / rel, "w", encoding="utf-8") as f:
        for row in per_query:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(rel)


def cmd_run(args) -> int:
    entries = registry.load_registry(args.models)
    if args.only:
        wanted = set(args.only)
        entries = [e for e in entries if e.name in wanted]
        if not entries:
            raise BenchError(f"--only: no registry entry named {', '.join(sorted(wanted))} in {args.models}")
    specs = tasks.resolve(args.tasks)
    out = Path(args.out)
    bad_input = False
    data, task_problem = {}, {}
    for spec in specs:
        try:
            data[spec.name] = tasks.load(spec)
        except Unavailable as u:
            print(f"skipping task {spec.name}: {u.reason}", file=sys.stderr)
            task_problem[spec.name] = ("skipped", u.reason, u.fix)
        except BenchError as e:
            print(f"error: {e}", file=sys.stderr)
            bad_input = True
            task_problem[spec.name] = ("failed", str(e), "fix the task data and run again")
    records_path = out / "results.json"
    done = results.read(records_path) if records_path.exists() else []
    new: list[results.ResultRecord] = []
    for spec in specs:
        if spec.name in task_problem:
            status, reason, fix = task_problem[spec.name]
            new += [_record(e, spec.name, status, reason=reason, fix=fix) for e in entries]

    for entry in tqdm(entries, desc="candidates", unit="model"):
        if not data:
            break
        try:
            candidate = encoders.load(entry)
        except Unavailable as u:
            tqdm.write(f"skipped {entry.name}: {u.reason}")
            new += [_record(entry, t, "skipped", reason=u.reason, fix=u.fix) for t in data]
            continue
        except Exception as e:  # one broken candidate must not lose the others' results
            tqdm.write(f"failed {entry.name}: {_one_line(e)}")
            new += [_record(entry, t, "failed", reason=_one_line(e), fix="see the reason; check the registry entry") for t in data]
            continue
        for name, d in data.items():
            try:
                ev = evaluate.evaluate(candidate, d)
            except Exception as e:
                tqdm.write(f"failed {entry.name} on {name}: {_one_line(e)}")
                new.append(_record(entry, name, "failed", reason=_one_line(e)))
                continue
            details = _write_details(out, name, entry, ev.per_query)
            new.append(_record(entry, name, "ok", **ev.metrics, n_queries=len(d.queries), n_docs=len(d.corpus),
                               encode_seconds=round(ev.encode_seconds, 2), params=candidate.params,
                               disk_bytes=candidate.disk_bytes, details=details))
            tqdm.write(f"{name:>14} {entry.name:<45} nDCG@10 {ev.metrics['ndcg_at_10']:.3f}")
        results.write(results.merge(done, new), records_path)  # saved per candidate: a crash keeps what ran
        del candidate
        gc.collect()
    merged = results.merge(done, new)
    results.write(merged, records_path)
    for path in report.write_reports(merged, out):
        print(f"wrote {path}")
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
    entries = {e.name: e for e in registry.load_registry(args.models)}
    if args.model not in entries:
        raise BenchError(f"--model: no entry named '{args.model}' in {args.models} (known: {', '.join(entries)})")
    spec, = tasks.resolve([args.task])
    data = tasks.load(spec)
    candidate = encoders.load(entries[args.model])
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

    entries = {e.name: e for e in registry.load_registry(args.models)}
    names = args.only or list(entries)
    spec, = tasks.resolve([args.task])
    data = tasks.load(spec)
    rows = []
    for name in names:
        if name not in entries:
            raise BenchError(f"--only: no entry named '{name}' in {args.models}")
        try:
            candidate = encoders.load(entries[name])
        except Unavailable as u:
            print(f"skipped {name}: {u.reason}")
            continue
        rows += mteb_check.compare(candidate, data, spec.language)
    from tabulate import tabulate

    print(tabulate(rows, headers=["model", "metric", "bench", "mteb.evaluate", "|diff|"], floatfmt=".5f"))
    worst = max((r[4] for r in rows), default=0.0)
    print(f"largest difference: {worst:.5f}")
    return 0 if worst <= 1e-4 else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark small Turkish text encoders for retrieval.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="score every registry candidate on the tasks and write reports")
    r.add_argument("--models", default="models.yaml")
    r.add_argument("--tasks", nargs="+", help="task names or paths to task YAML files (default: tasks marked default)")
    r.add_argument("--only", nargs="+", help="run only these registry entries")
    r.add_argument("--out", default="reports")
    r.set_defaults(fn=cmd_run)
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
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
