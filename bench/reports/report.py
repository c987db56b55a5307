"""Markdown leaderboards built from result records alone (no model is touched here)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from bench.reports.results import ResultRecord

BASELINE_KIND = "lexical"
BUDGETS_MS = (2, 10, 50)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()


def _f(x, digits=3):
    return "" if x is None else f"{x:.{digits}f}"


def _signed(x):
    return "" if x is None else f"{x:+.3f}"


def _mb(n):
    return "" if n is None else f"{n / 1e6:.1f}"


def _mparams(n):
    return "" if n is None else f"{n / 1e6:.1f}M"


def label(r: ResultRecord) -> str:
    return f"{r.model} [{r.variant}]"


def pareto_front(records: list[ResultRecord]) -> list[ResultRecord]:
    """Rows no other row beats on both quality and query latency, fastest first."""
    timed = sorted((r for r in records if r.latency_p50_ms is not None), key=lambda r: (r.latency_p50_ms, -r.ndcg_at_10))
    front, best = [], float("-inf")
    for r in timed:
        if r.ndcg_at_10 > best:
            front.append(r)
            best = r.ndcg_at_10
    return front


def recommendations(records: list[ResultRecord]) -> list[str]:
    timed = [r for r in records if r.latency_p50_ms is not None]
    if not timed:
        return []
    best = max(timed, key=lambda r: (r.ndcg_at_10, -r.latency_p50_ms))
    lines = []
    for budget in BUDGETS_MS:
        fits = [r for r in timed if r.latency_p50_ms <= budget]
        if not fits:
            lines.append(f"- **≤ {budget} ms per query:** nothing measured here is that fast.")
            continue
        pick = max(fits, key=lambda r: (r.ndcg_at_10, -r.latency_p50_ms))
        if pick is best:
            trade = "it is also the best overall, so a larger budget buys nothing here."
        else:
            trade = (f"{best.ndcg_at_10 - pick.ndcg_at_10:.3f} nDCG@10 below the best overall, at "
                     f"{best.latency_p50_ms / pick.latency_p50_ms:.1f}× lower query latency.")
        lines.append(f"- **≤ {budget} ms per query:** {label(pick)} — nDCG@10 {pick.ndcg_at_10:.3f}, "
                     f"p50 {pick.latency_p50_ms:.2f} ms; {trade}")
    fastest_same = min((r for r in timed if r.ndcg_at_10 >= best.ndcg_at_10 - 0.01), key=lambda r: r.latency_p50_ms)
    lines.append(f"- **Best overall:** {label(best)} — nDCG@10 {best.ndcg_at_10:.3f}, p50 {best.latency_p50_ms:.2f} ms, "
                 f"{_f(best.throughput_per_s, 1)} passages/s."
                 + ("" if fastest_same is best else
                    f" Within 0.01 of it, {label(fastest_same)} answers in {fastest_same.latency_p50_ms:.2f} ms "
                    f"({best.latency_p50_ms / fastest_same.latency_p50_ms:.1f}× faster)."))
    return lines


def pipeline_verdicts(records: list[ResultRecord]) -> list[str]:
    """Does each pipeline beat every one of its parts on this task?"""
    by_label = {label(r): r for r in records}
    lines = []
    for r in records:
        if not r.stages:
            continue
        parts = [by_label.get(s) for s in r.stages]
        scored = [p for p in parts if p is not None]
        if len(scored) < len(parts):
            missing = [s for s, p in zip(r.stages, parts) if p is None]
            lines.append(f"- {label(r)}: nDCG@10 {r.ndcg_at_10:.3f}; no row for {', '.join(missing)} to compare with.")
            continue
        best = max(scored, key=lambda p: p.ndcg_at_10)
        verdict = "beats each of its parts" if r.ndcg_at_10 > best.ndcg_at_10 else "does not beat its best part"
        lines.append(f"- {label(r)}: nDCG@10 {r.ndcg_at_10:.3f} {verdict} ("
                     + ", ".join(f"{label(p)} {p.ndcg_at_10:.3f}" for p in scored)
                     + f"; {r.ndcg_at_10 - best.ndcg_at_10:+.3f} against the best).")
    return lines


def plot(task: str, records: list[ResultRecord], path: Path) -> bool:
    timed = [r for r in records if r.latency_p50_ms is not None and r.latency_p50_ms > 0]
    if not timed:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    front = pareto_front(timed)
    # Numbers on the points and names in a key beside the axes: many variants of one model sit close together.
    for n, r in enumerate(sorted(timed, key=lambda r: -r.ndcg_at_10), 1):
        on_front = r in front
        ax.scatter(r.latency_p50_ms, r.ndcg_at_10, s=40, color="tab:red" if on_front else "tab:blue",
                   marker="s" if r.kind == BASELINE_KIND else "o", zorder=3, label=f"{n}  {label(r)}")
        ax.annotate(str(n), (r.latency_p50_ms, r.ndcg_at_10), fontsize=8, xytext=(4, 3), textcoords="offset points")
    ax.plot([r.latency_p50_ms for r in front], [r.ndcg_at_10 for r in front], color="tab:red", lw=1, ls="--",
            label="Pareto front (red points)")
    ax.set_xscale("log")
    ax.set_xlabel("query latency p50 at batch 1 (ms, log scale)")
    ax.set_ylabel("nDCG@10")
    ax.set_title(f"{task}: quality vs query latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, handlelength=1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _machine_line(ok: list[ResultRecord]) -> str:
    timed = [r for r in ok if r.threads]
    if not timed:
        return ""
    r = timed[0]
    return (f"Timings: {r.cpu}, SIMD {r.simd or 'n/a'}, {r.threads} threads for every runtime; fp32 GEMM peak "
            f"{_f(r.peak_gflops, 1)} GFLOP/s measured with torch at the same threads. {r.libs}.")


def _data_lines(ok: list[ResultRecord]) -> list[str]:
    """Which data and code the rows were computed on; rows from different data must never share a leaderboard."""
    prints = sorted({r.task_fingerprint or "unrecorded" for r in ok})
    codes = sorted({r.code_version for r in ok if r.code_version})
    files = next((r.task_files for r in ok if r.task_files), None) or {}
    line = (f"Data: fingerprint `{', '.join(prints)}`"
            + (" (" + ", ".join(f"{name} sha256 `{digest[:12]}`" for name, digest in sorted(files.items())) + ")"
               if files else "")
            + (f"; code {', '.join(codes)}." if codes else "."))
    out = [line, ""]
    if len(prints) > 1:
        out += ["**Warning: these rows were computed on different data** (the task changed between runs); "
                "re-run with `--replace` to rebuild the leaderboard on one dataset.", ""]
    return out


def task_markdown(task: str, records: list[ResultRecord], plot_name: str | None = None) -> str:
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: (-(r.ndcg_at_10 or 0), r.latency_p50_ms or 0))
    others = [r for r in records if r.status != "ok"]
    baseline = max((r for r in ok if r.kind == BASELINE_KIND), key=lambda r: r.ndcg_at_10 or 0, default=None)
    sizes = {(r.n_queries, r.n_docs) for r in ok}
    lines = [f"# Leaderboard: `{task}`", ""]
    if len(sizes) == 1:
        nq, nd = sizes.pop()
        lines += [f"{nq} questions, each answered by one of {nd} paragraphs (full-corpus retrieval). "
                  "Metrics by mteb's retrieval evaluator; best first.", ""]
    machine = _machine_line(ok)
    if machine:
        lines += [machine, ""]
    if ok:
        lines += _data_lines(ok)
    if baseline is None and ok:
        lines += ["**No BM25 baseline in these results**: dense figures below have nothing to beat.", ""]
    rows = []
    for r in ok:
        vs_bm25 = "baseline" if r is baseline else ("" if baseline is None else _signed(r.ndcg_at_10 - baseline.ndcg_at_10))
        gf = "" if r.gflops is None else f"{r.gflops:.0f} ({100 * r.gflops / r.peak_gflops:.0f}%)" if r.peak_gflops else f"{r.gflops:.0f}"
        rows.append([r.model, r.variant, _f(r.ndcg_at_10), _f(r.mrr_at_10), _f(r.recall_at_1), _f(r.recall_at_10),
                     vs_bm25, _signed(r.ndcg_delta_vs_fp32), _f(r.latency_p50_ms, 2), _f(r.latency_p95_ms, 2),
                     _f(r.throughput_per_s, 1), gf, _mb(r.disk_bytes), _f(r.peak_rss_mb, 0)])
    if rows:
        lines.append(tabulate(rows, headers=["Model", "Variant", "nDCG@10", "MRR@10", "R@1", "R@10", "Δ vs BM25",
                                             "Δ vs fp32", "p50 ms", "p95 ms", "passages/s", "GFLOP/s (% peak)",
                                             "Disk MB", "Peak MB"],
                              tablefmt="github", disable_numparse=True))
        lines.append("")
        lines.append("Δ vs BM25 and Δ vs fp32: nDCG@10 change against the BM25 baseline and against the same model "
                     "as loaded (torch-fp32). p50/p95: one question at batch 1; passages/s: batches of 32 real "
                     "paragraphs sorted by length; GFLOP/s counts useful (unpadded) transformer FLOPs at batch 32. "
                     "Peak MB: resident memory of a fresh process that loaded the variant and timed it.")
        lines.append("")
        if baseline is not None:
            dense = [r for r in ok if r.kind != BASELINE_KIND]
            beaten = [label(r) for r in dense if r.ndcg_at_10 > baseline.ndcg_at_10]
            behind = [label(r) for r in dense if r.ndcg_at_10 <= baseline.ndcg_at_10]
            lines += [f"Beat BM25 on nDCG@10: {', '.join(beaten) or 'none'}. "
                      f"Do not: {', '.join(behind) or 'none'}.", ""]
        verdicts = pipeline_verdicts(ok)
        if verdicts:
            lines += ["## Pipelines against their parts", ""] + verdicts + [""]
        recs = recommendations(ok)
        if recs:
            lines += ["## Recommendation", ""] + recs + [""]
        front = pareto_front(ok)
        if front:
            lines += ["## Quality vs query latency", ""]
            if plot_name:
                lines += [f"![nDCG@10 against query latency]({plot_name})", ""]
            lines += ["Pareto front (no other row is both faster and better): "
                      + " → ".join(f"{label(r)} ({r.latency_p50_ms:.2f} ms, {r.ndcg_at_10:.3f})" for r in front), ""]
        lines += ["## More figures", ""]
        lines.append(tabulate([[r.model, r.variant, _f(r.recall_at_5), _mparams(r.params), _f(r.load_seconds, 2),
                                _f(r.encode_seconds, 1)] for r in ok],
                              headers=["Model", "Variant", "R@5", "Params", "Load s", "Encode s"],
                              tablefmt="github", disable_numparse=True))
        lines += ["", "Encode s: wall time to embed the corpus and all questions in the quality run (near 0 when "
                  "served from the embedding cache). Per-question ranks and scores: `details/`.", ""]
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
        png = out / f"{slug(task)}-pareto.png"
        has_plot = plot(task, [r for r in recs if r.status == "ok"], png)
        path = out / f"{slug(task)}.md"
        path.write_text(task_markdown(task, recs, png.name if has_plot else None), encoding="utf-8")
        written.append(path)
    return written
