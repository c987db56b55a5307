"""The benchmark run: candidates x runtime variants x tasks -> result records (callable from Python).

    >>> import bench
    >>> records = bench.run(models="models.yaml", tasks=["tr_mini_wiki"], only=["BM25 (Turkish Snowball)"])
    >>> bench.to_frame(records)[["task", "model", "variant", "ndcg_at_10"]]
"""

from __future__ import annotations

import gc
import json
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from bench import threads as bench_threads
from bench import provenance
from bench.names import slug
from bench.data import convert
from bench.data import tasks as taskdata
from bench.errors import BenchError, Unavailable, one_line
from bench.measure import evaluate, flops, peaks, speed
from bench.models import encoders, registry
from bench.measure import results
from bench.reports import report

def _record(entry, variant, task, status, **kw) -> results.ResultRecord:
    stages = [f"{e.name} [{v}]" for e, v in entry.stage_entries] or None
    return results.ResultRecord(task=task, model=entry.name, variant=variant, status=status,
                                kind=entry.kind, loader=entry.loader, family=entry.family, source=entry.source,
                                stages=stages,
                                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), **kw)


def _stamp(records: list[results.ResultRecord], task_prov: dict[str, dict], threads: int) -> None:
    """Every record names the data, the code and the machine it came from."""
    machine, code = provenance.machine_info(threads), provenance.code_version()
    for r in records:
        r.code_version = code
        for key, value in {**machine, **task_prov.get(r.task, {})}.items():
            setattr(r, key, value)


def _write_details(out: Path, task: str, entry, variant: str, per_query: list[dict]) -> str:
    rel = Path("details") / slug(task) / f"{slug(entry.name)}__{slug(variant)}.jsonl"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    with open(out / rel, "w", encoding="utf-8") as f:
        for row in per_query:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(rel)


def profile_pairs(models, name: str) -> list[tuple]:
    """(entry, variant) pairs of profile `name` in the registry: its entries, then, where it says `trained: built`,
    each trained entry already built in the cache (in the first of its `trained_variants` the entry has)."""
    profiles = registry.load_profiles(models)
    if name not in profiles:
        raise BenchError(f"--profile: no profile '{name}' in {models} (has: {', '.join(profiles) or 'none'})")
    profile = profiles[name]
    by_name = {e.name: e for e in registry.load_registry(models)}
    pairs = [(by_name[n], v) for n, one in profile.entries for v in ([one] if one else by_name[n].variants)]
    if profile.trained == "built":
        listed = {n for n, _ in profile.entries}
        missing = []
        for e in by_name.values():
            if not e.train or e.name in listed:
                continue
            try:
                registry.check_available(e)
            except Unavailable:
                missing.append(e.name)
                continue
            pairs.append((e, next((v for v in profile.trained_variants if v in e.variants), e.variants[0])))
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            print(f"profile {name}: {len(missing)} trained entries not built, so not run ({', '.join(missing[:3])}"
                  f"{more}; `bench list` names them all, `make train` builds them)")
    return pairs


def select(models, only=None, variants=None, profile: str | None = None) -> list[tuple]:
    """(entry, variant) pairs of the registry (or of one of its profiles), narrowed to `only` names and
    `variants`."""
    if profile:
        pairs = profile_pairs(models, profile)
        entries = list({id(e): e for e, _ in pairs}.values())
    else:
        entries = registry.load_registry(models)
        pairs = [(e, v) for e in entries for v in e.variants]
    if only:
        wanted = set(only)
        missing = wanted - {e.name for e in entries}
        if missing:
            raise BenchError(f"--only: no registry entry named {', '.join(sorted(missing))} in {models}")
        entries = [e for e in entries if e.name in wanted]
        pairs = [(e, v) for e, v in pairs if e.name in wanted]
    known = {v for e in entries for v in e.variants}
    unknown = [v for v in variants or () if v not in known]
    if unknown:  # a typo would otherwise select nothing, run nothing and exit 0
        raise BenchError(f"--variants: no selected registry entry has variant {', '.join(unknown)} "
                         f"(they have: {', '.join(sorted(known))}; a variant an entry does not list by default, "
                         "such as onnx-opt, runs once its 'variants' in the registry name it)")
    return [(e, v) for e, v in pairs if not variants or v in variants]


def load_tasks(specs):
    """(data by task, {task: (reason, fix)} of tasks that cannot run here, [errors of tasks with bad data]).

    A task that cannot run here (its data not downloaded) is reported as skipped, with the fix. A task whose data is
    malformed is bad input, not a result: it gets no row and no report, and its error is raised, once, after the
    other tasks have run."""
    data, skipped, errors = {}, {}, []
    for spec in specs:
        try:
            data[spec.name] = taskdata.load(spec)
            _say_dropped(spec.name, data[spec.name])
        except Unavailable as u:
            print(f"skipping task {spec.name}: {u.reason}", file=sys.stderr)
            skipped[spec.name] = (u.reason, u.fix)
        except BenchError as e:
            errors.append(str(e))
    return data, skipped, errors


def _drop_fields(d) -> dict:
    """A task's n_dropped / dropped record fields: the questions its data left out when read, by reason."""
    dropped = convert.dropped_questions(d.rejects)
    return {"n_dropped": sum(dropped.values()), "dropped": dropped}


def _say_dropped(name: str, d) -> None:
    fields = _drop_fields(d)
    if fields["n_dropped"]:
        n = fields["n_dropped"]
        print(f"{name}: dropped {n} of {n + len(d.queries)} questions ("
              + ", ".join(f"{reason} {k}" for reason, k in fields["dropped"].items())
              + "; `python -m bench convert` writes each one to rejects.jsonl)", file=sys.stderr)
    rekeyed = sum(r["reason"] == "rekeyed_duplicate_id" for r in d.rejects)
    if rekeyed:
        print(f"{name}: {rekeyed} questions kept under new ids (their source id was another question's)", file=sys.stderr)


def speed_texts(data) -> dict:
    return {name: {"queries": list(d.queries.values()), "passages": [d.doc_text(x) for x in d.corpus]}
            for name, d in data.items()}


def _machine_fields(m: dict) -> dict:
    # cpu, simd, threads and libs are stamped on every record by _stamp; timings add the peaks.
    return {"peak_gflops": m["peak_gflops"], "peak_int8_gops": m["peak_int8_gops"]}


def _speed_phase(timed: list[tuple], data, threads: int, rounds: int, remeasure: bool, max_workers: int) -> None:
    """Time every candidate that scored, all together in interleaved rounds, and fill in their records."""
    jobs = [speed.Job(entry, variant, speed_texts({n: data[n] for n in rows})) for entry, variant, rows in timed]
    outcomes, gemm = speed.measure_all(jobs, threads, rounds=rounds, remeasure=remeasure, max_workers=max_workers,
                                        log=tqdm.write)
    m = peaks.machine(threads, gemm)
    tqdm.write(f"{'speed':>14} GEMM peaks {'cached' if m['peaks_cached'] else 'measured'}: fp32 {m['peak_gflops']} "
               f"GFLOP/s, int8 {m['peak_int8_gops']} GOP/s")
    machine = _machine_fields(m)
    for job, (_, _, rows), outcome in zip(jobs, timed, outcomes):
        if outcome.error:
            tqdm.write(f"speed of {job.label} not measured: {outcome.error}")
            for rec in rows.values():
                rec.reason = f"speed not measured: {outcome.error}"
            continue
        for name, rec in rows.items():
            f = outcome.figures[name]
            for key, value in {**asdict(f), **machine, **flops.peak_fields(job.variant, f.gflops, m)}.items():
                setattr(rec, key, value)
        f = next(iter(outcome.figures.values()))
        tqdm.write(f"{'speed':>14} {job.label:<55} {'cached' if outcome.cached else 'measured'}: "
                   f"p50 {f.latency_p50_ms:.2f} ms ±{f.latency_p50_spread_pct}%, "
                   f"{f.throughput_per_s:.1f} passages/s ±{f.throughput_spread_pct}%")


def run(models="models.yaml", tasks=None, only=None, variants=None, threads=None, measure_speed=True,
        out="reports", write_reports=True, replace=False, rounds=speed.ROUNDS, remeasure=False,
        max_workers=speed.MAX_WORKERS, profile: str | None = None) -> list[results.ResultRecord]:
    """Score every selected candidate x variant on the tasks; returns the merged records of `out`/results.json.

    Quality first, candidate by candidate; then one speed phase times every candidate that scored, in `rounds`
    interleaved rounds (cached: `remeasure` times again). Bad task data is recorded as `failed` for that task and
    raised as BenchError after the others have run. Rows already in `out` for a task whose data has changed are
    refused, unless `replace` drops them.
    """
    threads = threads or encoders.threads()
    pairs = select(models, only, variants, profile)
    specs = taskdata.resolve(tasks)
    out = Path(out)
    bench_threads.use(threads)
    data, skipped, errors = load_tasks(specs)
    if not data:
        raise BenchError("; ".join(errors) or "no task could be loaded: "
                         + "; ".join(reason for reason, _ in skipped.values()))
    if errors:  # said now too, so nobody waits an hour to learn of it; raised (the one error line) at the end
        tqdm.write(f"{len(errors)} task(s) not run: malformed data, named at the end")
    records_path = out / "results.json"
    task_prov = {spec.name: {"task_fingerprint": provenance.task_fingerprint(data[spec.name]),
                             "task_files": provenance.task_files(spec)} for spec in specs if spec.name in data}
    fingerprints = {t: p["task_fingerprint"] for t, p in task_prov.items()}
    if records_path.exists() and not replace:  # refuse before an hour of work, not after it
        results.refuse_conflicts(results.read(records_path), fingerprints, records_path)
    new: list[results.ResultRecord] = []

    def save():
        _stamp(new, task_prov, threads)
        return results.save(new, records_path, fingerprints, replace)

    for name, (reason, fix) in skipped.items():
        new += [_record(e, v, name, "skipped", reason=reason, fix=fix) for e, v in pairs]
    drops = {name: _drop_fields(d) for name, d in data.items()}
    timed = []  # (entry, variant, rows) of the candidates that scored: the speed phase times them together

    for entry, variant in tqdm(pairs, desc="candidates", unit="variant"):
        label = f"{entry.name} [{variant}]"
        candidate, problem = encoders.try_load(entry, variant)
        if problem:
            status, reason, fix = problem
            tqdm.write(f"{status} {label}: {reason}")
            new += [_record(entry, variant, t, status, reason=reason, fix=fix, **drops[t]) for t in data]
            continue
        rows = {}
        limit = entry.options.get("max_questions")
        for name, full in data.items():
            d = full.sample(int(limit)) if limit else full
            sampled = len(full.queries) if len(d.queries) < len(full.queries) else None
            try:
                ev = evaluate.evaluate(candidate, d)
            except Exception as e:
                tqdm.write(f"failed {label} on {name}: {one_line(e)}")
                new.append(_record(entry, variant, name, "failed", reason=one_line(e), **drops[name]))
                continue
            details = _write_details(out, name, entry, variant, ev.per_query)
            rows[name] = _record(entry, variant, name, "ok", **ev.metrics, n_queries=len(d.queries),
                                 sampled_from=sampled,
                                 n_docs=len(d.corpus), encode_seconds=round(ev.encode_seconds, 2),
                                 params=candidate.params, disk_bytes=candidate.disk_bytes, details=details,
                                 per_query_ndcg=ev.per_query_ndcg, ndcg_by_kind=ev.ndcg_by_kind,
                                 n_by_kind=ev.n_by_kind,
                                 abstention=ev.abstention, **drops[name])
            of = f" (on {len(d.queries)} of {sampled} questions)" if sampled else ""
            tqdm.write(f"{name:>14} {label:<55} nDCG@10 {ev.metrics['ndcg_at_10']:.3f}{of}")
        del candidate
        gc.collect()
        if rows:
            timed.append((entry, variant, rows))
        new += rows.values()
        save()  # saved per candidate: a crash keeps what ran
    if measure_speed and timed:
        try:
            _speed_phase(timed, data, threads, rounds, remeasure, max_workers)
        except Exception as e:  # the quality results are saved already; keep them and report the rest
            tqdm.write(f"speed phase failed: {one_line(e)}")
            for _, _, rows in timed:
                for rec in rows.values():
                    rec.reason = rec.reason or f"speed not measured: {one_line(e)}"
    merged = save()
    if write_reports:
        lost = registry.lost_on_unseen_topics(registry.load_registry(models))
        for path in report.write_reports(merged, out, lost):
            print(f"wrote {path}")
    if errors:
        raise BenchError("; ".join(errors) + " (the other tasks' results were written)")
    return merged


def to_frame(records):
    """Records as a pandas DataFrame, one row per (task, model, variant)."""
    import pandas as pd

    return pd.DataFrame([asdict(r) for r in records])
