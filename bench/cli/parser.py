"""The argument parser: every command, its flags and the function that runs it."""

from __future__ import annotations

import argparse

from bench.cli.benchmark import (cmd_check, cmd_list, cmd_mteb_check, cmd_report, cmd_run, cmd_scale, cmd_speed,
                                 cmd_train)
from bench.cli.common import positive_float, positive_int, similarity, tolerance
from bench.cli.data import cmd_convert, cmd_inspect
from bench.cli.search import cmd_search
from bench.measure import speed
from bench.errors import BenchError


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
    sc.add_argument("--profile", help="sweep the entries of this profile of the registry (make scale: scale-static, "
                    "scale-dense); --only narrows it")
    sc.add_argument("--only", nargs="+")
    sc.add_argument("--variants", nargs="+")
    sc.add_argument("--index", nargs="+", help="exact, hnsw, ivfpq (bench/index; default: all three)")
    sc.add_argument("--precision", nargs="+", help="fp32 int8 binary pq, each also +rescore (default: all)")
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
    tr.add_argument("name", nargs="*", help="registry entries to build (with their trained bases, bases first)")
    tr.add_argument("--profile", help="build the entries of this profile of the registry too (make train: train), "
                    "in its order")
    tr.add_argument("--models", default="models.yaml")
    tr.add_argument("--max-steps", type=positive_int, help="stop each recipe after this many optimizer steps (a quick build)")
    tr.add_argument("--force", action="store_true", help="rebuild NAME even when it is already built")
    tr.set_defaults(fn=cmd_train)
    return p
