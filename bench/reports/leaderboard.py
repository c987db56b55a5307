"""A task's Markdown leaderboard, built from result records alone (no model is touched here).

Its two tables are declared: COLUMNS (the leaderboard) and MORE_COLUMNS ("More figures"), one row per column, a
header and the function that prints a record's cell. Adding a column is one row in a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tabulate import tabulate

from bench.measure import results, stats
from bench.measure.results import ResultRecord
from bench.reports import cells, sections, standings
from bench.reports.cells import label, num
from bench.reports.machines import machine_letters, machine_line, machine_tag

BASELINE_KIND = "lexical"


@dataclass
class Board:
    """What a cell may read besides its row: the rows (best first), the baseline, the paired tests against it and
    against the best, the timing machines' letters, and the models to mark."""

    rows: list[ResultRecord]
    baseline: ResultRecord | None = None
    vs_bm25: dict[str, stats.Paired] = field(default_factory=dict)
    vs_best: dict[str, stats.Paired] = field(default_factory=dict)
    letters: dict[int, str] = field(default_factory=dict)
    adapted: set[str] = frozenset()
    lost: object = frozenset()


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[ResultRecord, Board], str]


def _to_bm25(r: ResultRecord, board: Board) -> str:
    if r is board.baseline:
        return "baseline"
    return "" if board.baseline is None else cells.delta_cell(board.vs_bm25[label(r)])


def _to_best(r: ResultRecord, board: Board) -> str:
    return "= best" if r is board.rows[0] else cells.delta_cell(board.vs_best[label(r)])


COLUMNS: list[Column] = [
    Column("Model", lambda r, board: cells.model_cell(r, board.adapted, board.lost)),
    Column("Variant", lambda r, board: r.variant),
    Column("nDCG@10", lambda r, board: num(r.ndcg_at_10)),
    Column("95% CI", lambda r, board: cells.ci_cell(r)),
    Column("MRR@10", lambda r, board: num(r.mrr_at_10)),
    Column("R@1", lambda r, board: num(r.recall_at_1)),
    Column("R@10", lambda r, board: num(r.recall_at_10)),
    Column("Δ vs BM25", _to_bm25),
    Column("Δ vs best", _to_best),
    Column("Δ vs fp32", lambda r, board: cells.signed(r.ndcg_delta_vs_fp32)),
    Column("p50 ms", lambda r, board: cells.spread(r.latency_p50_ms, r.latency_p50_spread_pct, 2)
           + machine_tag(board.letters, r)),
    Column("p95 ms", lambda r, board: num(r.latency_p95_ms, 2)),
    Column("passages/s", lambda r, board: cells.spread(r.throughput_per_s, r.throughput_spread_pct, 1)),
    Column("GFLOP/s (% peak)", lambda r, board: cells.gflops(r)),
    Column("Disk MB", lambda r, board: cells.mb(r.disk_bytes)),
    Column("Peak MB", lambda r, board: num(r.peak_rss_mb, 0)),
]

MORE_COLUMNS: list[Column] = [
    Column("Model", lambda r, board: r.model),
    Column("Variant", lambda r, board: r.variant),
    Column("R@5", lambda r, board: num(r.recall_at_5)),
    Column("Params", lambda r, board: cells.mparams(r.params)),
    Column("Load s", lambda r, board: num(r.load_seconds, 2)),
    Column("Encode s", lambda r, board: num(r.encode_seconds, 1)),
]


def table(columns: list[Column], board: Board) -> str:
    return tabulate([[c.cell(r, board) for c in columns] for r in board.rows], headers=[c.header for c in columns],
                    tablefmt="github", disable_numparse=True)


def _header(ok: list[ResultRecord]) -> list[str]:
    """What the questions and passages are, said once when every row was scored on the same ones."""
    sizes = {(r.sampled_from or r.n_queries, r.n_docs) for r in ok}
    if len(sizes) != 1:
        return []
    nq, nd = sizes.pop()
    dropped = next((r for r in ok if r.n_dropped), None)
    why = ("" if dropped is None else f" The source had {dropped.n_dropped} more that were left out ("
           + ", ".join(f"{reason} {n}" for reason, n in sorted((dropped.dropped or {}).items())) + ").")
    una = next((r.abstention["n_unanswerable"] for r in ok if r.abstention), 0)
    also = f" (and {una} that no paragraph answers: Abstention, below)" if una else ""
    return [f"{nq} questions, each answered by one of {nd} paragraphs (full-corpus retrieval){also}.{why} "
            "Metrics by mteb's retrieval evaluator; best first."
            + (" Rows marked 'on n of N questions' were scored on a fixed seeded sample (options.max_questions: "
               "a cross-encoder is too slow to score every question on this CPU); their Δ columns compare "
               "the questions both rows answered." if any(r.sampled_from for r in ok) else ""), ""]


COLUMN_NOTE = ("Δ vs fp32: nDCG@10 change against the same model as loaded (torch-fp32). p50/p95: one "
               "question at batch 1; passages/s: batches of 32 real paragraphs sorted by length. Both are "
               "timed in rounds interleaved across variants (A B C A B C …); p50 and passages/s are medians "
               "of the round figures, ± half their interquartile range in % of the median. GFLOP/s counts "
               "useful (unpadded) transformer FLOPs at batch 32, each model at its own max_seq_length, as a "
               "share of the peak of the arithmetic it runs (fp32, or int8 for int8 variants). Peak MB: "
               "resident memory of the process that loaded the variant and timed it.")


def task_markdown(task: str, records: list[ResultRecord], plot_name: str | None = None,
                  adapted: set[str] = frozenset(), lost=frozenset()) -> str:
    """The leaderboard; `adapted`: models that trained on this task's passages (marked, with a footnote); `lost`:
    models never to recommend (lost_on_unseen_topics; marked, with a footnote)."""
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: (-(r.ndcg_at_10 or 0), r.latency_p50_ms or 0))
    others = [r for r in records if r.status != "ok"]
    baseline = max((r for r in ok if r.kind == BASELINE_KIND), key=lambda r: r.ndcg_at_10 or 0, default=None)
    lines = [f"# Leaderboard: `{task}`", ""] + _header(ok)
    machine = machine_line(ok)
    if machine:
        lines += [machine, ""]
    if ok:
        lines += sections.data_lines(ok)
    if baseline is None and ok:
        lines += ["**No BM25 baseline in these results**: dense figures below have nothing to beat.", ""]
    results.fill_intervals(ok)
    board = Board(ok, baseline, standings.against(ok, baseline) if baseline is not None else {},
                  standings.against(ok, ok[0]) if ok else {}, machine_letters(ok), adapted, lost)
    if ok:
        lines += [table(COLUMNS, board), "", COLUMN_NOTE, ""]
        if any(cells.adapted(r, adapted) for r in ok):
            lines += [cells.ADAPTED_NOTE, ""]
        if any(cells.lost_on_unseen_topics(r, lost) for r in ok):
            lines += [cells.UNSEEN_NOTE, ""]
        lines += [sections.STATS_NOTE, ""]
        if baseline is not None:
            lines += [sections.bm25_sentence([r for r in ok if r.kind != BASELINE_KIND], board.vs_bm25), ""]
        verdicts = sections.pipeline_verdicts(ok)
        if verdicts:
            lines += ["## Pipelines against their parts", ""] + verdicts + [""]
        recs = sections.recommendations(ok, lost)
        if recs:
            lines += ["## Recommendation", ""] + recs + [""]
        lines += sections.kind_section(ok) + sections.abstention_section(ok, lost)
        front = standings.pareto_front(ok)
        if front:
            lines += ["## Quality vs query latency", ""]
            if plot_name:
                lines += [f"![nDCG@10 against query latency]({plot_name})", ""]
            lines += ["Pareto front (no other row is both faster and better): "
                      + " → ".join(f"{label(r)} ({r.latency_p50_ms:.2f} ms, {r.ndcg_at_10:.3f})" for r in front), ""]
        lines += ["## More figures", "", table(MORE_COLUMNS, board)]
        lines += ["", "Encode s: wall time to embed the corpus and all questions in the quality run (near 0 when "
                  "served from the embedding cache). Per-question ranks and scores: `details/`.", ""]
    if others:
        lines += ["## Skipped and failed", ""]
        lines.append(tabulate([[r.model, r.variant, r.status, r.reason, r.fix] for r in others],
                              headers=["Model", "Variant", "Status", "Reason", "How to make it available"],
                              tablefmt="github"))
        lines.append("")
    return "\n".join(lines)
