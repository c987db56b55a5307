"""CI regression gate: re-score the fast candidates on the embedded task and compare with a stored baseline.

Tolerance: 0.01 on every metric. On the 270-question default task, one question slipping from rank 1 to rank 2
moves nDCG@10 by 0.0014 and R@1 by 0.0037, so 0.01 absorbs the two or three near-ties that another CPU's float
kernels can flip, while the bugs this gate exists for (a lost prefix, wrong pooling, a broken tokenizer or
quantizer) cost 0.05 or more. On one machine the figures repeat exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

from bench import fileio
from bench.models import encoders, loaders, registry
from bench.measure import evaluate
from bench.data import tasks
from bench.errors import BenchError, Unavailable, one_line
from bench.measure.results import ResultRecord

METRICS = ("ndcg_at_10", "mrr_at_10", "recall_at_1", "recall_at_5", "recall_at_10")
TOLERANCE = 0.01
GATE = "gate"  # the registry profile naming the gate's task and its fast candidates


def schema() -> list[str]:
    return sorted(f.name for f in fields(ResultRecord))


def score(models_path: Path, pairs: list[tuple[str, str]], task: str) -> tuple[list[dict], list[str]]:
    """Fresh metrics for each (model, variant), and a problem line for each one that could not be scored."""
    entries = {e.name: e for e in registry.load_registry(models_path)}
    data = tasks.load(tasks.resolve([task])[0])
    rows, problems = [], []
    for name, variant in pairs:
        if name not in entries:
            problems.append(f"{name} [{variant}]: not in the registry {models_path}")
            continue
        if variant not in entries[name].variants and variant not in loaders.LOADERS[entries[name].loader].variants:
            problems.append(f"{name} [{variant}]: unknown variant (has {', '.join(entries[name].variants)})")
            continue
        try:
            metrics = evaluate.evaluate(encoders.load(entries[name], variant), data).metrics
        except Unavailable as u:
            problems.append(f"{name} [{variant}]: could not be scored here: {u.reason}")
            continue
        except Exception as e:  # a gate that skips what it cannot load would pass while checking nothing
            problems.append(f"{name} [{variant}]: failed to score: {one_line(e)}")
            continue
        rows.append({"model": name, "variant": variant, **metrics})
    return rows, problems


def write_baseline(path: Path, models_path: Path) -> None:
    gate = registry.load_profiles(models_path).get(GATE)
    if gate is None or not gate.task or any(v is None for _, v in gate.entries):
        raise BenchError(f"{models_path}: expected a profile '{GATE}' with a 'task' and entries 'name [variant]'")
    rows, problems = score(models_path, gate.entries, gate.task)
    if problems or not rows:
        raise BenchError(f"{path}: baseline not written: {'; '.join(problems) or 'nothing was scored'}")
    fileio.write_atomic(path, json.dumps({"task": gate.task, "tolerance": TOLERANCE, "schema": schema(),
                                          "records": rows}, ensure_ascii=False, indent=1) + "\n")


def run(path: Path, models_path: Path, tolerance: float | None = None) -> list[str]:
    """Problems found, one line each; empty means the gate passes."""
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        # nan passes every comparison (drop > nan is false) and a negative one fails an unchanged score
        raise BenchError(f"--tolerance: expected a finite number of 0 or more, got {tolerance}")
    if not path.is_file():
        raise BenchError(f"{path}: baseline not found (create it with `python -m bench check --baseline {path} --write`)")
    base = fileio.read_json(path)
    _validate(path, base)
    tol = base.get("tolerance", TOLERANCE) if tolerance is None else tolerance
    problems = []
    if base.get("schema") != schema():
        gone = sorted(set(base.get("schema", [])) - set(schema()))
        added = sorted(set(schema()) - set(base.get("schema", [])))
        problems.append(f"results schema changed: removed {gone or 'nothing'}, added {added or 'nothing'} "
                        "(other tools read these names; update the baseline only on purpose)")
    pairs = [(r["model"], r["variant"]) for r in base["records"]]
    fresh, unscored = score(models_path, pairs, base["task"])
    problems += unscored
    now = {(r["model"], r["variant"]): r for r in fresh}
    for old in base["records"]:
        cur = now.get((old["model"], old["variant"]))
        if cur is None:
            continue  # already a problem: no fresh record to compare with
        for m in METRICS:
            drop = old[m] - cur[m]
            status = "FAIL" if drop > tol else "ok"
            print(f"{status:>4}  {old['model']} [{old['variant']}] {m}: baseline {old[m]:.4f}, now {cur[m]:.4f}")
            if drop > tol:
                problems.append(f"{old['model']} [{old['variant']}] {m} fell by {drop:.4f} (> {tol})")
    return problems


def _validate(path: Path, base) -> None:
    """A baseline that checks nothing must not pass: no records, or a metric that is missing or not a number."""
    if not isinstance(base, dict):
        raise BenchError(f"{path}: expected a JSON object with fields task, tolerance, schema, records")
    if not isinstance(base.get("task"), str) or not base["task"]:
        raise BenchError(f"{path}: field 'task' is missing or not a task name")
    tol = base.get("tolerance", TOLERANCE)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise BenchError(f"{path}: field 'tolerance' must be a non-negative number")
    records = base.get("records")
    if not isinstance(records, list) or not records:
        raise BenchError(f"{path}: field 'records' is missing or empty: the gate would check nothing")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise BenchError(f"{path}: records[{i}]: expected an object with model, variant and {', '.join(METRICS)}")
        for key in ("model", "variant"):
            if not isinstance(rec.get(key), str) or not rec[key]:
                raise BenchError(f"{path}: records[{i}]: field '{key}' is missing or not a string")
        for m in METRICS:
            v = rec.get(m)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise BenchError(f"{path}: records[{i}] ({rec['model']} [{rec['variant']}]): field '{m}' is "
                                 "missing or not a finite number")
