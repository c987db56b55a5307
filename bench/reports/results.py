"""Result records: one per (task, model, variant), written as JSON so reports rebuild without models."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from bench.errors import BenchError


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
    source: str = ""
    ndcg_at_10: float | None = None
    mrr_at_10: float | None = None
    recall_at_1: float | None = None
    recall_at_5: float | None = None
    recall_at_10: float | None = None
    n_queries: int | None = None
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
    created: str = ""
    # repeatable timings (bench/measure/speed.py): p50 and passages/s are medians over interleaved rounds; a spread
    # is ± half the interquartile range of the round figures, in % of the median
    latency_p50_spread_pct: float | None = None
    throughput_spread_pct: float | None = None
    speed_rounds: int | None = None
    peak_int8_gops: float | None = None  # the machine's int8 GEMM peak (onnxruntime dynamic quantization)
    peak_kind: str = ""  # which peak `gflops` runs against: fp32 or int8
    peak_for_variant: float | None = None  # that peak's value: GFLOP/s as % of peak = gflops / peak_for_variant

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.task, self.model, self.variant)


_NAMES = {f.name for f in fields(ResultRecord)}


def write(records: list[ResultRecord], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([asdict(r) for r in records], ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def read(path: Path) -> list[ResultRecord]:
    if not path.is_file():
        raise BenchError(f"{path}: results file not found (run `python -m bench run` first)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not a valid results JSON file ({e})") from None
    if not isinstance(raw, list):
        raise BenchError(f"{path}: expected a JSON list of result records")
    out = []
    for i, rec in enumerate(raw):
        if not isinstance(rec, dict) or not {"task", "model", "variant", "status"} <= set(rec):
            raise BenchError(f"{path}: record [{i}] lacks one of task, model, variant, status")
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


def merge(old: list[ResultRecord], new: list[ResultRecord]) -> list[ResultRecord]:
    """A re-run replaces its own rows and keeps every other result already on disk."""
    fresh = {r.key: r for r in new}
    return [r for r in old if r.key not in fresh] + list(fresh.values())
