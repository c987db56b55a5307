"""Result records: one per (task, model, variant), written as JSON so reports rebuild without models."""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from bench import fileio
from bench.errors import BenchError
from bench.measure import stats


@dataclass
class ResultRecord:
    task: str
    model: str
    variant: str
    status: str  # ok | skipped | failed
    reason: str = ""
    fix: str = ""
    kind: str = ""
    loader: str = ""
    family: str = ""  # lexical | dense | static | student | pipeline (the registry's; reports colour rows by it)
    source: str = ""
    ndcg_at_10: float | None = None
    mrr_at_10: float | None = None
    recall_at_1: float | None = None
    recall_at_5: float | None = None
    recall_at_10: float | None = None
    n_queries: int | None = None
    sampled_from: int | None = None  # set when only a seeded sample of the task's questions was scored (max_questions)
    n_docs: int | None = None
    encode_seconds: float | None = None
    params: int | None = None
    disk_bytes: int | None = None
    details: str = ""  # per-question file, relative to the results folder
    stages: list[str] | None = None  # pipelines: their parts as "model [variant]"
    ndcg_delta_vs_fp32: float | None = None  # against the same model's torch-fp32 (or numpy-fp32) row
    # speed and size, measured in a fresh process per variant (bench/speed.py)
    load_seconds: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    throughput_per_s: float | None = None
    peak_rss_mb: float | None = None
    gflops: float | None = None
    # the machine the timings come from
    threads: int | None = None
    peak_gflops: float | None = None
    cpu: str = ""
    simd: str = ""
    libs: str = ""
    # provenance: the data (as loaded) and the code each figure came from
    task_fingerprint: str = ""
    task_files: dict | None = None  # file name -> sha256
    code_version: str = ""
    # questions the task's data left out when it was read (bench/data/convert.py rejects), reason -> count
    n_dropped: int | None = None
    dropped: dict[str, int] | None = None
    created: str = ""
    # statistics (bench/measure/stats.py): per-question nDCG@10 so reports can test differences from this file alone
    per_query_ndcg: dict[str, float] | None = None  # question id -> nDCG@10
    ndcg_ci_low: float | None = None  # 95% paired-bootstrap interval of ndcg_at_10
    ndcg_ci_high: float | None = None
    # repeatable timings (bench/measure/speed.py): p50 and passages/s are medians over interleaved rounds; a spread
    # is ± half the interquartile range of the round figures, in % of the median
    latency_p50_spread_pct: float | None = None
    throughput_spread_pct: float | None = None
    speed_rounds: int | None = None
    peak_int8_gops: float | None = None  # the machine's int8 GEMM peak (onnxruntime dynamic quantization)
    peak_kind: str = ""  # which peak `gflops` runs against: fp32 or int8
    peak_for_variant: float | None = None  # that peak's value: GFLOP/s as % of peak = gflops / peak_for_variant
    # questions by kind (brand / ingredient / complaint), where the task gives kinds: kind -> mean nDCG@10
    ndcg_by_kind: dict[str, float] | None = None
    n_by_kind: dict[str, int] | None = None
    # where the task holds unanswerable questions: AUROC of the top score and abstention at a dev-chosen threshold
    # (bench/measure/abstention.py summary); `bench search query` reads its threshold
    abstention: dict | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.task, self.model, self.variant)


_NAMES = {f.name for f in fields(ResultRecord)}
_NUMBER = (int, float)


def _is_number(v) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool)


# What each annotation admits once read back from JSON (an int is a fine float; a bool is no number).
_CHECKS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "float | None": (lambda v: v is None or _is_number(v), "a number or null"),
    "int | None": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "a whole number or null"),
    "list[str] | None": (lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
                         "a list of strings or null"),
    "dict[str, int] | None": (lambda v: v is None or (isinstance(v, dict) and all(
        isinstance(n, int) and not isinstance(n, bool) for n in v.values())), "an object of counts or null"),
    "dict[str, float] | None": (lambda v: v is None or (isinstance(v, dict) and all(_is_number(n) for n in v.values())),
                                "an object of numbers or null"),
    "dict | None": (lambda v: v is None or isinstance(v, dict), "an object or null"),
}
_EXPECTED = {f.name: _CHECKS[f.type] for f in fields(ResultRecord)}


STATUSES = ("ok", "skipped", "failed")


def _check_types(path: Path, i: int, rec: dict) -> None:
    for key, value in rec.items():
        if key in _EXPECTED and not _EXPECTED[key][0](value):
            raise BenchError(f"{path}: record [{i}] field '{key}': expected {_EXPECTED[key][1]}")
    if rec["status"] not in STATUSES:
        raise BenchError(f"{path}: record [{i}] field 'status': expected one of {', '.join(STATUSES)}")
    if rec["status"] == "ok" and rec.get("ndcg_at_10") is None:
        raise BenchError(f"{path}: record [{i}] field 'ndcg_at_10': expected a number in a record with status ok")


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
        _check_types(path, i, rec)
        # Unknown keys come from newer versions of the tool; keep what this version understands.
        out.append(ResultRecord(**{k: v for k, v in rec.items() if k in _NAMES}))
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
