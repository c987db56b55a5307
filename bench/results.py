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
    created: str = ""

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


def merge(old: list[ResultRecord], new: list[ResultRecord]) -> list[ResultRecord]:
    """A re-run replaces its own rows and keeps every other result already on disk."""
    fresh = {r.key: r for r in new}
    return [r for r in old if r.key not in fresh] + list(fresh.values())
