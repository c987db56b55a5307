"""Result records: one per (task, model, variant), written as JSON so reports rebuild without models."""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Annotated

from pydantic.dataclasses import dataclass

from bench import fileio
from bench.declared import STRICT, Expect, Number, build
from bench.errors import BenchError
from bench.measure import stats

# What each field admits once read back from JSON (an int is a fine float, kept as written; a bool is no number).
Str = Annotated[str, Expect(": expected a string")]
Num = Annotated[Number | None, Expect(": expected a number or null")]
Whole = Annotated[int | None, Expect(": expected a whole number or null")]
Strs = Annotated[list[str] | None, Expect(": expected a list of strings or null")]
Counts = Annotated[dict[str, int] | None, Expect(": expected an object of counts or null")]
Nums = Annotated[dict[str, Number] | None, Expect(": expected an object of numbers or null")]
Obj = Annotated[dict | None, Expect(": expected an object or null")]
STATUSES = ("ok", "skipped", "failed")


@dataclass(config=STRICT)
class ResultRecord:
    task: Str
    model: Str
    variant: Str
    status: Str  # ok | skipped | failed
    reason: Str = ""
    fix: Str = ""
    kind: Str = ""
    loader: Str = ""
    family: Str = ""  # lexical | dense | static | student | pipeline (the registry's; reports colour rows by it)
    source: Str = ""
    ndcg_at_10: Num = None
    mrr_at_10: Num = None
    recall_at_1: Num = None
    recall_at_5: Num = None
    recall_at_10: Num = None
    n_queries: Whole = None
    sampled_from: Whole = None  # set when only a seeded sample of the task's questions was scored (max_questions)
    n_docs: Whole = None
    encode_seconds: Num = None
    params: Whole = None
    disk_bytes: Whole = None
    details: Str = ""  # per-question file, relative to the results folder
    stages: Strs = None  # pipelines: their parts as "model [variant]"
    ndcg_delta_vs_fp32: Num = None  # against the same model's torch-fp32 (or numpy-fp32) row
    # speed and size, measured in a fresh process per variant (bench/speed.py)
    load_seconds: Num = None
    latency_p50_ms: Num = None
    latency_p95_ms: Num = None
    throughput_per_s: Num = None
    peak_rss_mb: Num = None
    gflops: Num = None
    # the machine the timings come from
    threads: Whole = None
    peak_gflops: Num = None
    cpu: Str = ""
    simd: Str = ""
    libs: Str = ""
    # provenance: the data (as loaded) and the code each figure came from
    task_fingerprint: Str = ""
    task_files: Obj = None  # file name -> sha256
    code_version: Str = ""
    # questions the task's data left out when it was read (bench/data/convert.py rejects), reason -> count
    n_dropped: Whole = None
    dropped: Counts = None
    created: Str = ""
    # statistics (bench/measure/stats.py): per-question nDCG@10 so reports can test differences from this file alone
    per_query_ndcg: Nums = None  # question id -> nDCG@10
    ndcg_ci_low: Num = None  # 95% paired-bootstrap interval of ndcg_at_10
    ndcg_ci_high: Num = None
    # repeatable timings (bench/measure/speed.py): p50 and passages/s are medians over interleaved rounds; a spread
    # is ± half the interquartile range of the round figures, in % of the median
    latency_p50_spread_pct: Num = None
    throughput_spread_pct: Num = None
    speed_rounds: Whole = None
    peak_int8_gops: Num = None  # the machine's int8 GEMM peak (onnxruntime dynamic quantization)
    peak_kind: Str = ""  # which peak `gflops` runs against: fp32 or int8
    peak_for_variant: Num = None  # that peak's value: GFLOP/s as % of peak = gflops / peak_for_variant
    # questions by kind (brand / ingredient / complaint), where the task gives kinds: kind -> mean nDCG@10
    ndcg_by_kind: Nums = None
    n_by_kind: Counts = None
    # where the task holds unanswerable questions: AUROC of the top score and abstention at a dev-chosen threshold
    # (bench/measure/abstention.py summary); `bench search query` reads its threshold
    abstention: Obj = None

    def stored_complaint(self) -> str | None:
        """What a results file may not hold, though a run may build it on the way (an ok row before its scores)."""
        if self.status not in STATUSES:
            return f"field 'status': expected one of {', '.join(STATUSES)}"
        if self.status == "ok" and self.ndcg_at_10 is None:
            return "field 'ndcg_at_10': expected a number in a record with status ok"
        return None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.task, self.model, self.variant)


_NAMES = {f.name for f in fields(ResultRecord)}


def write(records: list[ResultRecord], path: Path) -> None:
    fileio.write_atomic(path, json.dumps([asdict(r) for r in records], ensure_ascii=False, indent=1) + "\n")


@contextmanager
def locked(path: Path):
    """Serialise read-merge-write of one results file across processes (two `bench run`s into one --out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read(path: Path) -> list[ResultRecord]:
    if not path.is_file():
        raise BenchError(f"{path}: results file not found (run `python -m bench run` first)")
    raw = fileio.read_json(path)
    if not isinstance(raw, list):
        raise BenchError(f"{path}: expected a JSON list of result records")
    out = []
    for i, rec in enumerate(raw):
        if not isinstance(rec, dict) or not {"task", "model", "variant", "status"} <= set(rec):
            raise BenchError(f"{path}: record [{i}] lacks one of task, model, variant, status")
        # Unknown keys come from newer versions of the tool; keep what this version understands.
        record = build(ResultRecord, {k: v for k, v in rec.items() if k in _NAMES}, f"{path}: record [{i}]", sep=" ")
        if record.stored_complaint():
            raise BenchError(f"{path}: record [{i}] {record.stored_complaint()}")
        out.append(record)
    return out


BASE_VARIANTS = ("torch-fp32", "numpy-fp32", "bm25s")


def fill_deltas(records: list[ResultRecord]) -> None:
    """nDCG@10 change of each runtime variant against the same model as loaded, on the same task."""
    base = {(r.task, r.model): r.ndcg_at_10 for r in records if r.status == "ok" and r.variant in BASE_VARIANTS}
    for r in records:
        ref = base.get((r.task, r.model))
        r.ndcg_delta_vs_fp32 = None if r.status != "ok" or ref is None else round(r.ndcg_at_10 - ref, 5)


def fill_intervals(records: list[ResultRecord]) -> None:
    """95% bootstrap interval of nDCG@10 for each row that has per-question scores (none for older records)."""
    cis = stats.intervals([r.per_query_ndcg if r.status == "ok" else None for r in records])
    for r, ci in zip(records, cis):
        r.ndcg_ci_low, r.ndcg_ci_high = ci or (None, None)


def merge(old: list[ResultRecord], new: list[ResultRecord]) -> list[ResultRecord]:
    """A re-run replaces its own rows and keeps every other result already on disk."""
    fresh = {r.key: r for r in new}
    return [r for r in old if r.key not in fresh] + list(fresh.values())


def conflicts(old: list[ResultRecord], fingerprints: dict[str, str]) -> dict[str, set[str]]:
    """Tasks whose stored rows were computed on other data than `fingerprints` (task -> data fingerprint) says."""
    out: dict[str, set[str]] = {}
    for r in old:
        fp = fingerprints.get(r.task)
        if fp and r.status == "ok" and r.task_fingerprint != fp:
            out.setdefault(r.task, set()).add(r.task_fingerprint or "unrecorded")
    return out


def refuse_conflicts(old: list[ResultRecord], fingerprints: dict[str, str], path: Path) -> None:
    found = conflicts(old, fingerprints)
    if found:
        task, other = sorted(found.items())[0]
        raise BenchError(f"{path}: the rows of task '{task}' were computed on other data (fingerprint "
                         f"{', '.join(sorted(other))}, this run's is {fingerprints[task]}); pass --replace to drop "
                         "them, or --out another folder")


def save(new: list[ResultRecord], path: Path, fingerprints: dict[str, str], replace: bool = False) -> list[ResultRecord]:
    """Merge `new` into the results file under a lock, re-reading it first so a concurrent run's rows survive.

    Rows of a task computed on other data are refused (or, with `replace`, dropped): one leaderboard, one dataset.
    """
    with locked(path):
        old = read(path) if path.exists() else []
        if replace:
            old = [r for r in old if not (fingerprints.get(r.task) and r.task_fingerprint != fingerprints[r.task])]
        refuse_conflicts(old, fingerprints, path)
        merged = merge(old, new)
        fill_deltas(merged)
        fill_intervals(merged)
        write(merged, path)
    return merged
