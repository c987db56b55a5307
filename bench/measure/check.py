"""CI regression gate: re-score the fast candidates on the embedded task and compare with a stored baseline.

Tolerance: 0.01 on every metric. On the 270-question default task, one question slipping from rank 1 to rank 2
moves nDCG@10 by 0.0014 and R@1 by 0.0037, so 0.01 absorbs the two or three near-ties that another CPU's float
kernels can flip, while the bugs this gate exists for (a lost prefix, wrong pooling, a broken tokenizer or
quantizer) cost 0.05 or more. On one machine the figures repeat exactly.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from bench.models import encoders, registry
from bench.measure import evaluate
from bench.data import tasks
from bench.errors import BenchError
from bench.reports.results import ResultRecord

METRICS = ("ndcg_at_10", "mrr_at_10", "recall_at_1", "recall_at_5", "recall_at_10")
TOLERANCE = 0.01
TASK = "tr_mini_wiki"
FAST = [("BM25 (Turkish Snowball)", "bm25s"), ("USE-multilingual-v3", "numpy-fp32"),
        ("multilingual-e5-small (Q4-dequantized)", "torch-fp32"), ("multilingual-e5-small (Q4-dequantized)", "onnx-int8")]


def schema() -> list[str]:
    return sorted(f.name for f in fields(ResultRecord))


def score(models_path: Path, pairs: list[tuple[str, str]], task: str) -> list[dict]:
    entries = {e.name: e for e in registry.load_registry(models_path)}
    data = tasks.load(tasks.resolve([task])[0])
    rows = []
    for name, variant in pairs:
        if name not in entries:
            raise BenchError(f"{models_path}: baseline model '{name}' is not in the registry")
        metrics = evaluate.evaluate(encoders.load(entries[name], variant), data).metrics
        rows.append({"model": name, "variant": variant, **metrics})
    return rows


def write_baseline(path: Path, models_path: Path) -> None:
    rows = score(models_path, FAST, TASK)
    path.write_text(json.dumps({"task": TASK, "tolerance": TOLERANCE, "schema": schema(), "records": rows},
                               ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def run(path: Path, models_path: Path, tolerance: float | None = None) -> list[str]:
    """Problems found, one line each; empty means the gate passes."""
    try:
        base = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: baseline not found (create it with `python -m bench check --baseline {path} --write`)") from None
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}:{e.lineno}: malformed JSON: {e.msg}") from None
    tol = base.get("tolerance", TOLERANCE) if tolerance is None else tolerance
    problems = []
    if base.get("schema") != schema():
        gone = sorted(set(base.get("schema", [])) - set(schema()))
        added = sorted(set(schema()) - set(base.get("schema", [])))
        problems.append(f"results schema changed: removed {gone or 'nothing'}, added {added or 'nothing'} "
                        "(other tools read these names; update the baseline only on purpose)")
    pairs = [(r["model"], r["variant"]) for r in base["records"]]
    now = {(r["model"], r["variant"]): r for r in score(models_path, pairs, base["task"])}
    for old in base["records"]:
        cur = now[(old["model"], old["variant"])]
        for m in METRICS:
            drop = old[m] - cur[m]
            status = "FAIL" if drop > tol else "ok"
            print(f"{status:>4}  {old['model']} [{old['variant']}] {m}: baseline {old[m]:.4f}, now {cur[m]:.4f}")
            if drop > tol:
                problems.append(f"{old['model']} [{old['variant']}] {m} fell by {drop:.4f} (> {tol})")
    return problems
