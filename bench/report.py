"""Markdown leaderboards built from result records alone (no model is touched here)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from bench.results import ResultRecord

BASELINE_KIND = "lexical"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()


def _f(x, digits=3):
    return "" if x is None else f"{x:.{digits}f}"


def _mb(n):
    return "" if n is None else f"{n / 1e6:.1f}"


def _mparams(n):
    return "" if n is None else f"{n / 1e6:.1f}M"


def task_markdown(task: str, records: list[ResultRecord]) -> str:
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: -(r.ndcg_at_10 or 0))
    others = [r for r in records if r.status != "ok"]
    baseline = max((r for r in ok if r.kind == BASELINE_KIND), key=lambda r: r.ndcg_at_10 or 0, default=None)
    sizes = {(r.n_queries, r.n_docs) for r in ok}
    lines = [f"# Leaderboard: `{task}`", ""]
    if len(sizes) == 1:
        nq, nd = sizes.pop()
        lines += [f"{nq} questions, each answered by one of {nd} paragraphs (full-corpus retrieval). "
                  "Metrics by mteb's retrieval evaluator; best first.", ""]
    if baseline is None and ok:
        lines += ["**No BM25 baseline in these results**: dense figures below have nothing to beat.", ""]
    rows = []
    for r in ok:
        delta = "" if baseline is None or r is baseline else f"{r.ndcg_at_10 - baseline.ndcg_at_10:+.3f}"
        rows.append([r.model, r.variant, _f(r.ndcg_at_10), _f(r.mrr_at_10), _f(r.recall_at_1), _f(r.recall_at_5),
                     _f(r.recall_at_10), delta if r is not baseline else "baseline", _mparams(r.params),
                     _mb(r.disk_bytes), _f(r.encode_seconds, 1)])
    if rows:
        lines.append(tabulate(rows, headers=["Model", "Variant", "nDCG@10", "MRR@10", "R@1", "R@5", "R@10",
                                             "ΔnDCG vs BM25", "Params", "Disk MB", "Encode s"],
                              tablefmt="github", disable_numparse=True))
        lines.append("")
        if baseline is not None:
            beaten = [r.model for r in ok if r.kind != BASELINE_KIND and r.ndcg_at_10 > baseline.ndcg_at_10]
            behind = [r.model for r in ok if r.kind != BASELINE_KIND and r.ndcg_at_10 <= baseline.ndcg_at_10]
            lines.append(f"Dense models that beat BM25 on nDCG@10: {', '.join(beaten) or 'none'}. "
                         f"Not beating it: {', '.join(behind) or 'none'}.")
            lines.append("")
        lines.append("Encode s: wall time to embed the whole corpus and all questions once (0 when served from the "
                     "embedding cache); speed is measured separately. Per-question ranks and scores: `details/`.")
        lines.append("")
    if others:
        lines += ["## Skipped and failed", ""]
        lines.append(tabulate([[r.model, r.variant, r.status, r.reason, r.fix] for r in others],
                              headers=["Model", "Variant", "Status", "Reason", "How to make it available"],
                              tablefmt="github"))
        lines.append("")
    return "\n".join(lines)


def write_reports(records: list[ResultRecord], out: Path) -> list[Path]:
    by_task: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r)
    written = []
    for task, recs in sorted(by_task.items()):
        path = out / f"{slug(task)}.md"
        path.write_text(task_markdown(task, recs), encoding="utf-8")
        written.append(path)
    return written
