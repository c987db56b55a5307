"""The benchmark's commands: run, speed, list, report, check, mteb-check, scale and train."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.cli.common import (lookup, narrowed_profile, out_folder, profile_names, registry_entries,
                              speed_options, threads)
from bench.data import tasks
from bench.models import encoders, registry
from bench.measure import flops, peaks, speed
from bench.measure import results
from bench.reports import report
from bench.errors import BenchError, Unavailable


def cmd_run(args) -> int:
    from bench.runner import run

    args.threads = threads(args)
    out_folder(args.out)
    run(models=args.models, tasks=args.tasks, only=args.only, variants=args.variants, threads=args.threads,
        measure_speed=not args.no_speed, out=args.out, replace=args.replace, profile=args.profile,
        **speed_options(args))
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

    args.threads = threads(args)
    options = speed_options(args)
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
    written += training.write_for(out, args.models, required=args.training_only) + students.write_for(out, args.models)
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_mteb_check(args) -> int:
    from bench.measure import mteb_check

    entries = registry_entries(args.models)
    names = args.only or list(entries)
    spec, = tasks.resolve([args.task])
    data = tasks.load(spec)
    rows = []
    for name in names:
        entry = lookup(entries, name, "--only", args.models)
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


def cmd_scale(args) -> int:
    from bench.scale import scale

    out_folder(args.out)
    only = narrowed_profile(args.models, args.profile, args.only) if args.profile else args.only
    scale(task=args.task, sizes=args.sizes, models=args.models, only=only, variants=args.variants,
          indexes=args.index, precisions=args.precision, engine=args.engine, address=args.address, out=args.out,
          distractor_dirs=args.distractors, threads=threads(args))
    return 0


def cmd_train(args) -> int:
    from bench.train.build import build

    names = profile_names(args.models, args.profile, args.name)
    if not names:
        raise BenchError("train: name the registry entries to build, or a profile of them with --profile")
    for record in build(names, args.models, args.max_steps, args.force):
        leaks = ", ".join(f"{t}: {c.get('questions', '-')} q / {c.get('paragraphs', '-')} p"
                          for t, c in record["leakage"].items())
        steps = f"{record['steps']} steps, " if record.get("steps") else ""  # none for static-distill, trim, merge
        print(f"built {record['name']}: {steps}{record['wall_seconds']} s; "
              f"leakage (equal questions / paragraphs) {leaks or 'no evaluation tasks found'}")
    return 0
