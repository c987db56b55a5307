"""Markdown leaderboards built from result records alone (no model is touched here)."""

from __future__ import annotations

import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.measure import stats
from bench.names import slug
from bench.models import loaders, registry
from bench.train import runs as run_store
from bench.measure import results
from bench.measure.results import ResultRecord

BASELINE_KIND = "lexical"
BUDGETS_MS = (2, 10, 50)


def num(x, digits=3):
    return "" if x is None else f"{x:.{digits}f}"


def _signed(x):
    return "" if x is None else f"{x:+.3f}"


def _mb(n):
    return "" if n is None else f"{n / 1e6:.1f}"


def _mparams(n):
    return "" if n is None else f"{n / 1e6:.1f}M"


def label(r: ResultRecord) -> str:
    return f"{r.model} [{r.variant}]"


def _model_cell(r: ResultRecord, adapted: set[str] = frozenset(), lost=frozenset()) -> str:
    # A row scored on a sample of the questions says so where it is read; its deltas are over the common questions.
    name = f"{r.model} (on {r.n_queries} of {r.sampled_from} questions)" if r.sampled_from else r.model
    name = f"{name} {ADAPTED_MARK}" if _adapted(r, adapted) else name
    return f"{name} {UNSEEN_MARK}" if lost_on_unseen_topics(r, lost) else name


ADAPTED_MARK = "†"
ADAPTED_NOTE = (f"{ADAPTED_MARK}: trained on text equal to this task's passages (or had its vocabulary chosen from "
                "it), or built from a model that was: no questions or relevance labels, but an unsupervised "
                "adaptation to this corpus (an MLM stage, a distillation or inverse-cloze pairs on it), so its score "
                "is measured on text it has read; `training.md` (Leakage) says which text.")


UNSEEN_MARK = "‡"
UNSEEN_NOTE = (f"{UNSEEN_MARK}: a trained model that lost to its base on topics it never saw (the topic-disjoint "
               "task, `thquad_1792_1922`), or was never judged there, or a pipeline built on one (models.yaml "
               "`unseen_topics`): shown, never recommended.")


def lost_on_unseen_topics(r: ResultRecord, lost) -> bool:
    """The row's model, or a stage of its pipeline, is one `lost` names (registry.lost_on_unseen_topics): lost to
    its base on unseen topics or never judged there. Such a row is never recommended."""
    return r.model in lost or any(registry.stage_name(s) in lost for s in r.stages or [])


def _adapted(r: ResultRecord, adapted: set[str]) -> bool:
    """The row's model, or a stage of its pipeline, trained on the task's passages."""
    return r.model in adapted or any(registry.stage_name(s) in adapted for s in r.stages or [])


def pareto_front(records: list[ResultRecord]) -> list[ResultRecord]:
    """Rows no other row beats on both quality and query latency, fastest first."""
    timed = sorted((r for r in records if r.latency_p50_ms is not None), key=lambda r: (r.latency_p50_ms, -r.ndcg_at_10))
    front, best = [], float("-inf")
    for r in timed:
        if r.ndcg_at_10 > best:
            front.append(r)
            best = r.ndcg_at_10
    return front


def paired(a: ResultRecord, b: ResultRecord) -> stats.Paired:
    """a against b, question by question; untested (p None) when either record lacks per-question scores."""
    return stats.compare(a.per_query_ndcg, b.per_query_ndcg, fallback_diff=a.ndcg_at_10 - b.ndcg_at_10)


def _against(rows: list[ResultRecord], ref: ResultRecord) -> dict[str, stats.Paired]:
    """paired(row, ref) for every row, keyed by label, in one batch."""
    tests = stats.compare_many([r.per_query_ndcg for r in rows], ref.per_query_ndcg,
                               [r.ndcg_at_10 - ref.ndcg_at_10 for r in rows])
    return {label(r): t for r, t in zip(rows, tests)}


def _not_worse(r: ResultRecord, ref: ResultRecord, t: stats.Paired) -> bool:
    """r is statistically tied with or better than ref; untested, only a mean at least as high counts."""
    return not t.worse if t.tested else r.ndcg_at_10 >= ref.ndcg_at_10


def delta_cell(t: stats.Paired) -> str:
    """A difference with its verdict: * significant, (n.s.) not significant, (n/a) not testable."""
    return f"{t.diff:+.3f}" + ("*" if t.significant else " (n.s.)" if t.tested else " (n/a)")


def _verdict(t: stats.Paired) -> str:
    if not t.tested:
        return "untested: no per-question scores"
    p = "p < 0.001" if t.p_value < 0.001 else f"p = {t.p_value:.3f}"
    return f"{'significant' if t.significant else 'not significant'}, {p}"


def _interval(r: ResultRecord) -> tuple[float, float] | None:
    if r.ndcg_ci_low is not None and r.ndcg_ci_high is not None:
        return r.ndcg_ci_low, r.ndcg_ci_high
    return stats.interval(r.per_query_ndcg)


def ci_cell(r: ResultRecord) -> str:
    iv = _interval(r)
    return "n/a" if iv is None else f"{iv[0]:.3f}–{iv[1]:.3f}"


def _score(r: ResultRecord) -> str:
    iv = _interval(r)
    return f"nDCG@10 {r.ndcg_at_10:.3f}" + ("" if iv is None else f" (95% CI {iv[0]:.3f}–{iv[1]:.3f})")


def _cheapest(rows: list[ResultRecord]) -> ResultRecord:
    return min(rows, key=lambda r: (r.latency_p50_ms, -r.ndcg_at_10))


def _tied_with(rows: list[ResultRecord], ref: ResultRecord) -> list[ResultRecord]:
    tests = _against(rows, ref)
    return [r for r in rows if _not_worse(r, ref, tests[label(r)])]


@dataclass
class Standing:
    """Where a task's timed rows stand: the best overall, the rows statistically tied with it, and per latency
    budget the recommended row (None where nothing measured is that fast)."""

    best: ResultRecord
    vs_best: dict[str, stats.Paired]
    tied_best: list[ResultRecord]
    picks: dict[float, ResultRecord | None]

    def tied(self, r: ResultRecord) -> bool:
        """r is not significantly worse than the best overall (else it was picked against the best in its budget)."""
        return any(label(t) == label(r) for t in self.tied_best)


def standing(records: list[ResultRecord], budgets=BUDGETS_MS, lost=frozenset()) -> Standing | None:
    """Per latency budget, the cheapest row not significantly worse than the best overall; when no row in the
    budget is, the cheapest one not significantly worse than the best in the budget. None: no timed rows. Rows of
    the models `lost` names (lost_on_unseen_topics) take no part: neither picked nor the best to tie with."""
    timed = [r for r in records if r.latency_p50_ms is not None and not lost_on_unseen_topics(r, lost)]
    if not timed:
        return None
    best = max(timed, key=lambda r: (r.ndcg_at_10, -r.latency_p50_ms))
    vs_best = _against(timed, best)
    tied_best = [r for r in timed if _not_worse(r, best, vs_best[label(r)])]
    tied_labels = {label(r) for r in tied_best}
    picks = {}
    for budget in budgets:
        fits = [r for r in timed if r.latency_p50_ms <= budget]
        if not fits:
            picks[budget] = None
            continue
        top = max(fits, key=lambda r: (r.ndcg_at_10, -r.latency_p50_ms))
        picks[budget] = _cheapest([r for r in fits if label(r) in tied_labels] or _tied_with(fits, top))
    return Standing(best, vs_best, tied_best, picks)


def recommendations(records: list[ResultRecord], lost=frozenset()) -> list[str]:
    """The Markdown lines of `standing`: one per budget, then the best overall."""
    st = standing(records, lost=lost)
    if st is None:
        return []
    best, vs_best, tied_best = st.best, st.vs_best, st.tied_best
    letters = machine_letters(records)

    def p50(r: ResultRecord) -> str:
        return f"{r.latency_p50_ms:.2f} ms" + _machine_tag(letters, r)

    def faster(r: ResultRecord, how: str) -> str:
        ratio = f"{best.latency_p50_ms / r.latency_p50_ms:.1f}× {how}"
        return ratio if same_machine(best, r) else f"{ratio}, across machines of different speed"

    lines = []
    for budget, pick in st.picks.items():
        if pick is None:
            lines.append(f"- **≤ {budget} ms per query:** nothing measured here is that fast.")
            continue
        if pick is best:
            trade = "it is also the best overall, so a larger budget buys nothing here."
        else:
            t = vs_best[label(pick)]
            trade = (f"{t.diff:+.3f} nDCG@10 against the best overall, {label(best)} ({_verdict(t)}), at "
                     + faster(pick, "lower query latency")
                     + ("; a larger budget buys no significant gain." if st.tied(pick) else "."))
        lines.append(f"- **≤ {budget} ms per query:** {label(pick)} — {_score(pick)}, p50 {p50(pick)}; {trade}")
    tied = _cheapest(tied_best)
    if tied is best:
        tie = (" No faster row is statistically tied with it." if vs_best[label(best)].tested
               else " No faster row scores as high.")
    else:
        t = vs_best[label(tied)]
        tie = (f" Cheapest row statistically tied with it: {label(tied)}, {p50(tied)} "
               f"({faster(tied, 'faster')}; {t.diff:+.3f}, {_verdict(t)}).")
    lines.append(f"- **Best overall:** {label(best)} — {_score(best)}, p50 {p50(best)}, "
                 f"{num(best.throughput_per_s, 1)} passages/s." + tie)
    return lines + _untimed_above([r for r in records if not lost_on_unseen_topics(r, lost)], best) + _left_out(
        records, best, lost)


def _left_out(records: list[ResultRecord], best: ResultRecord, lost) -> list[str]:
    """Rows above the best recommendable one that the unseen-topics rule left out."""
    above = [r for r in records if lost_on_unseen_topics(r, lost) and r.ndcg_at_10 is not None
             and r.ndcg_at_10 > best.ndcg_at_10]
    if not above:
        return []
    return [f"- **Not recommended ({UNSEEN_MARK}):** " + "; ".join(
        f"{label(r)}, nDCG@10 {r.ndcg_at_10:.3f}" for r in sorted(above, key=lambda r: -r.ndcg_at_10))
        + " score higher here, but each lost to its base on unseen topics or was never judged there "
        "(models.yaml `unseen_topics`)."]


def _untimed_above(records: list[ResultRecord], best: ResultRecord) -> list[str]:
    """Rows scored without timings (a `--no-speed` run) that beat the best timed row: the budgets cannot weigh
    them, so the section says so rather than let a weaker "best overall" stand. Rows scored on a sample of the
    questions are left out (their mean is over other questions)."""
    above = sorted((r for r in records if r.latency_p50_ms is None and r.ndcg_at_10 is not None
                    and not r.sampled_from and r.ndcg_at_10 > best.ndcg_at_10), key=lambda r: -r.ndcg_at_10)
    if not above:
        return []
    tests = _against(above, best)
    rows = "; ".join(f"{label(r)}, {_score(r)}, {tests[label(r)].diff:+.3f} against {label(best)} "
                     f"({_verdict(tests[label(r)])})" for r in above)
    models = " ".join(shlex.quote(m) for m in dict.fromkeys(r.model for r in above))
    variants = " ".join(shlex.quote(v) for v in dict.fromkeys(r.variant for r in above))
    fix = f"python -m bench run --tasks {shlex.quote(above[0].task)} --only {models} --variants {variants}"
    return [f"- **Not timed on this task:** {rows}. The budgets above weigh timed rows only; time "
            f"{'it' if len(above) == 1 else 'them'} (`{fix}`) before choosing."]


def _on_same_questions(part: ResultRecord, pipeline: ResultRecord) -> str:
    """The part's nDCG@10 over the pipeline's questions: a pipeline scored on a sample is tested on those alone,
    and the part's mean over all questions would not match the difference printed beside it."""
    mine, theirs = pipeline.per_query_ndcg, part.per_query_ndcg
    shared = sorted(set(mine) & set(theirs)) if mine and theirs else []
    if not shared or len(shared) == len(theirs):
        return f"{part.ndcg_at_10:.3f}"
    return f"{sum(theirs[q] for q in shared) / len(shared):.3f} on the same {len(shared)} questions"


def pipeline_verdicts(records: list[ResultRecord]) -> list[str]:
    """Does each pipeline significantly beat every one of its parts on this task?"""
    by_label = {label(r): r for r in records}
    lines = []
    for r in records:
        if not r.stages:
            continue
        parts = [by_label.get(s) for s in r.stages]
        scored = [p for p in parts if p is not None]
        missing = [s for s, p in zip(r.stages, parts) if p is None]
        if not scored:
            lines.append(f"- {label(r)}: nDCG@10 {r.ndcg_at_10:.3f}; no row for {', '.join(missing)} to compare with.")
            continue
        # A cross-encoder re-ranks; it never has a row of its own, so the verdict is against the scored parts.
        unscored = "".join(f"; {m} has no row of its own" for m in missing)
        parts_word = "scored parts" if missing else "parts"
        best = max(scored, key=lambda p: p.ndcg_at_10)
        tests = {label(p): paired(r, p) for p in scored}
        against_best = tests[label(best)]
        if not against_best.tested:
            verdict = (f"is higher than each of its {parts_word}" if r.ndcg_at_10 > best.ndcg_at_10
                       else "does not beat its best part") + " (untested: no per-question scores)"
        elif all(t.better for t in tests.values()):
            verdict = f"beats each of its {parts_word}"
        elif against_best.worse:
            verdict = "does not beat its best part (significantly worse)"
        else:
            verdict = "ties: not significantly better than " + ", ".join(n for n, t in tests.items() if not t.better)
        lines.append(f"- {label(r)}: nDCG@10 {r.ndcg_at_10:.3f} {verdict} ("
                     + ", ".join(f"{label(p)} {_on_same_questions(p, r)}" for p in scored)
                     + f"; {delta_cell(against_best)} against the best{unscored}).")
    return lines


FAMILY_COLOURS = {"lexical": "black", "dense": "tab:blue", "static": "tab:green", "student": "tab:orange",
                  "pipeline": "tab:purple", "cross-encoder": "tab:brown"}


def row_family(r: ResultRecord) -> str:
    """The record's family; records written before it was stamped get it from their kind and loader."""
    return r.family or loaders.kind_family(r.kind, r.loader)


@dataclass
class PlotMarks:
    """What the Pareto plot draws: every timed row coloured by family, names only on the front and the picks."""

    timed: list[ResultRecord]
    front: list[ResultRecord]
    labelled: list[ResultRecord]  # the front and the recommended rows, fastest first
    families: list[str]  # the legend: one entry per family present


def plot_marks(records: list[ResultRecord]) -> PlotMarks | None:
    timed = [r for r in records if r.latency_p50_ms is not None and r.latency_p50_ms > 0]
    if not timed:
        return None
    front = pareto_front(timed)
    st = standing(timed)
    picked = [r for r in (st.picks.values() if st else ()) if r is not None] + ([st.best] if st else [])
    labelled = {label(r): r for r in front + picked}
    families = [f for f in FAMILY_COLOURS if any(row_family(r) == f for r in timed)]
    return PlotMarks(timed, front, sorted(labelled.values(), key=lambda r: r.latency_p50_ms), families)


def _spread_labels(ys: list[float], gap: float) -> list[float]:
    """Label heights no closer than `gap` (axes fraction), each as near its point as that allows."""
    out = []
    for y in ys:
        out.append(max(y, out[-1] + gap) if out else y)
    overshoot = out[-1] - 0.98 if out else 0
    return [y - max(overshoot, 0) for y in out]


def plot(task: str, records: list[ResultRecord], path: Path) -> bool:
    marks = plot_marks(records)
    if marks is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    front = {label(r) for r in marks.front}
    for r in marks.timed:
        colour = FAMILY_COLOURS.get(row_family(r), "tab:gray")
        on_front = label(r) in front
        ax.scatter(r.latency_p50_ms, r.ndcg_at_10, s=46 if on_front else 26, color=colour, zorder=3,
                   edgecolors="tab:red" if on_front else "none", linewidths=1.2, alpha=1 if on_front else 0.7)
        iv = _interval(r)
        if iv is not None:
            ax.vlines(r.latency_p50_ms, *iv, color=colour, lw=1, alpha=0.35, zorder=2)
    ax.plot([r.latency_p50_ms for r in marks.front], [r.ndcg_at_10 for r in marks.front], color="tab:red", lw=1,
            ls="--", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("query latency p50 at batch 1 (ms, log scale)")
    ax.set_ylabel("nDCG@10 (bars: 95% CI)")
    ax.set_title(f"{task}: quality vs query latency")
    ax.grid(True, which="both", alpha=0.3)
    # Names only on the front and the recommended rows, in a column right of the axes ordered by height, with a
    # line to each point: rows in one latency cluster no longer print over each other.
    fig.canvas.draw()
    to_axes = ax.transAxes.inverted()
    by_height = sorted(marks.labelled, key=lambda r: r.ndcg_at_10)
    ys = [to_axes.transform(ax.transData.transform((r.latency_p50_ms, r.ndcg_at_10)))[1] for r in by_height]
    for r, y in zip(by_height, _spread_labels([min(max(y, 0.02), 0.98) for y in ys], 0.055)):
        ax.annotate(label(r), (r.latency_p50_ms, r.ndcg_at_10), xytext=(1.02, y), textcoords="axes fraction",
                    fontsize=7, va="center", arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})
    handles = [Line2D([], [], ls="", marker="o", color=FAMILY_COLOURS[f], label=f) for f in marks.families]
    handles.append(Line2D([], [], color="tab:red", ls="--", marker="o", markerfacecolor="white",
                          markeredgecolor="tab:red", label="Pareto front"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.85)
    fig.subplots_adjust(left=0.07, right=0.62, bottom=0.1, top=0.92)
    fig.savefig(path)
    plt.close(fig)
    return True


# GEMM peaks within 10% of each other: the same speed of machine. Cloud machines share a CPU label ("AMD EPYC") and
# SIMD level yet have timed 1.6x apart here; the peaks measured beside every timing are what tells them apart.
SAME_MACHINE = 1.10


def _machine_key(r: ResultRecord) -> tuple:
    return (r.cpu, r.simd, r.threads)


def same_machine(a: ResultRecord, b: ResultRecord) -> bool:
    """Whether two rows' timings compare: the same CPU label, SIMD level and threads, and GEMM peaks that agree."""
    if _machine_key(a) != _machine_key(b):
        return False
    pa, pb = a.peak_gflops or 0.0, b.peak_gflops or 0.0
    return max(pa, pb) <= SAME_MACHINE * min(pa, pb) if pa and pb else pa == pb  # an unmeasured peak: unknown


def machine_groups(ok: list[ResultRecord]) -> list[list[ResultRecord]]:
    """Timed rows grouped by the speed of the machine that timed them, slowest first."""
    groups: list[list[ResultRecord]] = []
    timed = [r for r in ok if r.latency_p50_ms is not None]
    for r in sorted(timed, key=lambda r: (str(_machine_key(r)), r.peak_gflops or 0.0)):
        if groups and same_machine(groups[-1][0], r):
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _range(values: list, digits: int) -> str:
    lo, hi = min(values, default=None), max(values, default=None)
    return num(lo, digits) if lo == hi else f"{num(lo, digits)}–{num(hi, digits)}"


def _machine_text(rows: list[ResultRecord], threads: str = "threads") -> str:
    r = rows[0]
    fp32 = _range([x.peak_gflops for x in rows if x.peak_gflops], 1)
    int8 = _range([x.peak_int8_gops for x in rows if x.peak_int8_gops], 1)
    return (f"{r.cpu}, SIMD {r.simd or 'n/a'}, {r.threads} {threads}, GEMM peaks at those threads: fp32 {fp32} GFLOP/s "
            f"(torch), int8 {int8} GOP/s (onnxruntime dynamic quantization)")


def machine_letters(ok: list[ResultRecord]) -> dict[int, str]:
    """id(row) -> the letter of its timing machine, where the rows were timed on more than one; else empty."""
    groups = machine_groups(ok)
    if len(groups) < 2:
        return {}
    return {id(r): chr(ord("A") + i) for i, rows in enumerate(groups) for r in rows}


def _machine_tag(letters: dict[int, str], r: ResultRecord) -> str:
    """' (B)' after a p50 timed on machine B, where machine_letters gave the rows letters."""
    return f" ({letters[id(r)]})" if id(r) in letters else ""


def machine_line(ok: list[ResultRecord]) -> str:
    # Untimed rows still name the machine they were scored on (int8 quality can differ between CPUs).
    groups = machine_groups(ok) or [[r for r in ok if r.threads]]
    if not groups[0]:
        return ""
    r = groups[0][0]
    if not any(x.peak_gflops or x.peak_int8_gops for x in groups[0]):  # scored with --no-speed: no peaks to name
        return f"Not timed (quality only). Scored on: {r.cpu}, SIMD {r.simd or 'n/a'}, {r.threads} threads. {r.libs}."
    rounds = f"medians of {r.speed_rounds} interleaved rounds" if r.speed_rounds else "one pass"
    if len(groups) == 1:
        return f"Timings: {_machine_text(groups[0], 'threads for every runtime')}; {rounds}. {r.libs}."
    return (f"Timings come from {len(groups)} machines of different speed: "
            + "; ".join(f"{chr(ord('A') + i)}: {_machine_text(rows)}" for i, rows in enumerate(groups))
            + ". Compare p50 and passages/s only between rows of one machine (a leaderboard puts its letter after "
            "each p50; its Pareto front and latency budgets take each row's figures as measured). "
            f"{rounds[0].upper() + rounds[1:]}; {r.libs}.")


def _spread(value, pct, digits):
    """A median with its spread (± half the interquartile range of the round figures, in %)."""
    return "" if value is None else f"{value:.{digits}f}" + ("" if pct is None else f" ±{pct:.0f}%")


def _gflops(r: ResultRecord) -> str:
    """Achieved GFLOP/s against the peak of the arithmetic the variant runs (int8 variants: the int8 peak)."""
    peak = r.peak_for_variant or r.peak_gflops
    if r.gflops is None:
        return ""
    kind = f" of {r.peak_kind}" if r.peak_kind else ""
    return f"{r.gflops:.0f} ({100 * r.gflops / peak:.0f}%{kind})" if peak else f"{r.gflops:.0f}"


def data_lines(ok: list[ResultRecord]) -> list[str]:
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


STATS_NOTE = (f"95% CI: percentile bootstrap interval of nDCG@10 over the questions ({stats.N_RESAMPLES} "
              f"resamples, seed {stats.SEED}; every row resampled on the same question sets). Δ vs BM25 and Δ vs "
              "best: mean per-question difference over the questions both rows answered; * = significant at "
              f"α = {stats.ALPHA} by a two-sided paired randomization (sign-flip) test ({stats.N_RESAMPLES} "
              f"resamples, seed {stats.SEED}), (n.s.) = not significant. Each comparison is tested at "
              f"{stats.ALPHA} on its own, with no correction for the many comparisons in this table. "
              "Overlapping intervals do not make a tie: the paired test compares rows question by question, and the "
              "marks, the BM25 verdict and the recommendation use it. "
              "n/a: the record has no per-question scores (written by an older version), so no interval and no "
              "test; such rows are only compared by their means.")


def _bm25_sentence(dense: list[ResultRecord], vs_bm25: dict[str, stats.Paired]) -> str:
    """Only significant wins count as beating BM25; higher-but-not-significant rows are named apart."""
    tests = {label(r): vs_bm25[label(r)] for r in dense}
    wins = [n for n, t in tests.items() if t.better]
    unsure = [n + ("" if t.tested else " (untested)") for n, t in tests.items() if not t.better and t.diff > 0]
    behind = [n for n, t in tests.items() if t.diff <= 0]
    return (f"Beat BM25 on nDCG@10 (significant at {stats.ALPHA}): {', '.join(wins) or 'none'}. "
            f"Higher but not significantly: {', '.join(unsure) or 'none'}. "
            f"Do not: {', '.join(behind) or 'none'}.")


def task_markdown(task: str, records: list[ResultRecord], plot_name: str | None = None,
                  adapted: set[str] = frozenset(), lost=frozenset()) -> str:
    """The leaderboard; `adapted`: models that trained on this task's passages (marked, with a footnote); `lost`:
    models never to recommend (lost_on_unseen_topics; marked, with a footnote)."""
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: (-(r.ndcg_at_10 or 0), r.latency_p50_ms or 0))
    others = [r for r in records if r.status != "ok"]
    baseline = max((r for r in ok if r.kind == BASELINE_KIND), key=lambda r: r.ndcg_at_10 or 0, default=None)
    sizes = {(r.sampled_from or r.n_queries, r.n_docs) for r in ok}
    lines = [f"# Leaderboard: `{task}`", ""]
    if len(sizes) == 1:
        nq, nd = sizes.pop()
        dropped = next((r for r in ok if r.n_dropped), None)
        why = ("" if dropped is None else f" The source had {dropped.n_dropped} more that were left out ("
               + ", ".join(f"{reason} {n}" for reason, n in sorted((dropped.dropped or {}).items())) + ").")
        una = next((r.abstention["n_unanswerable"] for r in ok if r.abstention), 0)
        also = f" (and {una} that no paragraph answers: Abstention, below)" if una else ""
        lines += [f"{nq} questions, each answered by one of {nd} paragraphs (full-corpus retrieval){also}.{why} "
                  "Metrics by mteb's retrieval evaluator; best first."
                  + (" Rows marked 'on n of N questions' were scored on a fixed seeded sample (options.max_questions: "
                     "a cross-encoder is too slow to score every question on this CPU); their Δ columns compare "
                     "the questions both rows answered." if any(r.sampled_from for r in ok) else ""), ""]
    machine = machine_line(ok)
    if machine:
        lines += [machine, ""]
    if ok:
        lines += data_lines(ok)
    if baseline is None and ok:
        lines += ["**No BM25 baseline in these results**: dense figures below have nothing to beat.", ""]
    results.fill_intervals(ok)
    vs_bm25 = _against(ok, baseline) if baseline is not None else {}
    vs_best = _against(ok, ok[0]) if ok else {}
    letters = machine_letters(ok)
    rows = []
    for r in ok:
        to_bm25 = "baseline" if r is baseline else ("" if baseline is None else delta_cell(vs_bm25[label(r)]))
        to_best = "= best" if r is ok[0] else delta_cell(vs_best[label(r)])
        rows.append([_model_cell(r, adapted, lost), r.variant, num(r.ndcg_at_10), ci_cell(r), num(r.mrr_at_10), num(r.recall_at_1),
                     num(r.recall_at_10), to_bm25, to_best, _signed(r.ndcg_delta_vs_fp32),
                     _spread(r.latency_p50_ms, r.latency_p50_spread_pct, 2) + _machine_tag(letters, r), num(r.latency_p95_ms, 2),
                     _spread(r.throughput_per_s, r.throughput_spread_pct, 1), _gflops(r), _mb(r.disk_bytes),
                     num(r.peak_rss_mb, 0)])
    if rows:
        lines.append(tabulate(rows, headers=["Model", "Variant", "nDCG@10", "95% CI", "MRR@10", "R@1", "R@10",
                                             "Δ vs BM25", "Δ vs best", "Δ vs fp32", "p50 ms", "p95 ms", "passages/s",
                                             "GFLOP/s (% peak)", "Disk MB", "Peak MB"],
                              tablefmt="github", disable_numparse=True))
        lines.append("")
        lines.append("Δ vs fp32: nDCG@10 change against the same model as loaded (torch-fp32). p50/p95: one "
                     "question at batch 1; passages/s: batches of 32 real paragraphs sorted by length. Both are "
                     "timed in rounds interleaved across variants (A B C A B C …); p50 and passages/s are medians "
                     "of the round figures, ± half their interquartile range in % of the median. GFLOP/s counts "
                     "useful (unpadded) transformer FLOPs at batch 32, each model at its own max_seq_length, as a "
                     "share of the peak of the arithmetic it runs (fp32, or int8 for int8 variants). Peak MB: "
                     "resident memory of the process that loaded the variant and timed it.")
        lines.append("")
        if any(_adapted(r, adapted) for r in ok):
            lines += [ADAPTED_NOTE, ""]
        if any(lost_on_unseen_topics(r, lost) for r in ok):
            lines += [UNSEEN_NOTE, ""]
        lines += [STATS_NOTE, ""]
        if baseline is not None:
            lines += [_bm25_sentence([r for r in ok if r.kind != BASELINE_KIND], vs_bm25), ""]
        verdicts = pipeline_verdicts(ok)
        if verdicts:
            lines += ["## Pipelines against their parts", ""] + verdicts + [""]
        recs = recommendations(ok, lost)
        if recs:
            lines += ["## Recommendation", ""] + recs + [""]
        lines += kind_section(ok) + abstention_section(ok, lost)
        front = pareto_front(ok)
        if front:
            lines += ["## Quality vs query latency", ""]
            if plot_name:
                lines += [f"![nDCG@10 against query latency]({plot_name})", ""]
            lines += ["Pareto front (no other row is both faster and better): "
                      + " → ".join(f"{label(r)} ({r.latency_p50_ms:.2f} ms, {r.ndcg_at_10:.3f})" for r in front), ""]
        lines += ["## More figures", ""]
        lines.append(tabulate([[r.model, r.variant, num(r.recall_at_5), _mparams(r.params), num(r.load_seconds, 2),
                                num(r.encode_seconds, 1)] for r in ok],
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


def kind_section(ok: list[ResultRecord]) -> list[str]:
    """nDCG@10 per kind of question: a model tuned on questions that name the brand may miss those that name only
    the active ingredient or the complaint."""
    rows = [r for r in ok if r.ndcg_by_kind]
    if not rows:
        return []
    kinds = sorted({k for r in rows for k in r.ndcg_by_kind},
                   key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER), k))
    counts = {k: max(((r.n_by_kind or {}).get(k) or 0 for r in rows), default=0) for k in kinds}
    headers = ["Model", "Variant", f"all ({rows[0].n_queries})"] + [
        f"{k} ({counts[k]})" if counts[k] else k for k in kinds]
    table = [[_model_cell(r), r.variant, num(r.ndcg_at_10)] + [num(r.ndcg_by_kind.get(k)) for k in kinds] for r in rows]
    return ["## Questions by kind", "",
            "nDCG@10 over the answerable questions of each kind (in brackets: how many): `brand` names the medicine "
            "as sold, `ingredient` only its active ingredient, `complaint` neither, only what it treats.", "",
            tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), ""]


KIND_ORDER = ("brand", "ingredient", "complaint")
GOAL_ABSTAIN, GOAL_ANSWER = 0.8, 0.9


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def _gap(a: dict) -> str:
    """How far a row's test-half shares are from the goal, in percentage points."""
    short = []
    if a.get("abstained_unanswerable") is not None and a["abstained_unanswerable"] < GOAL_ABSTAIN:
        short.append(f"abstains {100 * (a['abstained_unanswerable'] - GOAL_ABSTAIN):.1f} points")
    if a.get("answered_answerable") is not None and a["answered_answerable"] < GOAL_ANSWER:
        short.append(f"answers {100 * (a['answered_answerable'] - GOAL_ANSWER):.1f} points")
    return "; ".join(short) or "meets both"


def abstention_section(ok: list[ResultRecord], lost=frozenset()) -> list[str]:
    """Can each row tell that no passage answers? AUROC of its top score, and abstention at a dev-chosen threshold."""
    rows = sorted((r for r in ok if r.abstention), key=lambda r: -(r.abstention.get("auroc") or 0))
    if not rows:
        return []
    a0 = rows[0].abstention
    table = [[_model_cell(r), r.variant, num(r.abstention.get("auroc")), f"{r.abstention['threshold']:.4g}",
              _pct(r.abstention.get("abstained_unanswerable")), _pct(r.abstention.get("answered_answerable")),
              _gap(r.abstention)] for r in rows]
    lines = ["## Abstention", "",
             f"{a0['n_unanswerable']} unanswerable questions (no passage answers them: medicines and topics no "
             f"document covers) beside the {a0['n_answerable']} answerable ones; the leaderboard above scores only "
             "the answerable. AUROC: how well a row's top passage score separates answerable from unanswerable "
             "questions over all of them (1 = perfectly, 0.5 = chance). Threshold: chosen on a dev half of the "
             f"questions (seeded split, seed {a0['seed']}, stratified; {a0['n_dev']} questions) as the highest top "
             f"score that still answers {_pct(a0['target_answered'])} of its answerable questions; the two shares "
             f"are measured on the other half ({a0['n_test']} questions), so the choice never sees them. Goal: "
             f"abstain on ≥ {_pct(GOAL_ABSTAIN)} of unanswerable questions and answer ≥ {_pct(GOAL_ANSWER)} of "
             "answerable ones. `bench search query` uses a row's threshold to abstain.", "",
             tabulate(table, headers=["Model", "Variant", "AUROC", "Threshold", "Abstains (unanswerable)",
                                      "Answers (answerable)", "Short of the goal"],
                      tablefmt="github", disable_numparse=True), ""]
    st = standing(ok, lost=lost)
    pick = st.picks.get(max(BUDGETS_MS)) if st else None
    if pick is not None and pick.abstention:
        a = pick.abstention
        verdict = _gap(a)
        lines += [f"Goal, for the recommended row under {max(BUDGETS_MS)} ms ({label(pick)}): it abstains on "
                  f"{_pct(a.get('abstained_unanswerable'))} of the unanswerable questions and answers "
                  f"{_pct(a.get('answered_answerable'))} of the answerable ones at threshold {a['threshold']:.4g}: "
                  + ("it meets both." if verdict == "meets both" else f"it misses: {verdict}.") + "", ""]
    return lines


def write_reports(records: list[ResultRecord], out: Path, lost=frozenset()) -> list[Path]:
    """`lost`: registry.lost_on_unseen_topics of the registry the rows came from (marked, never recommended)."""
    # training.json beside results.json, when models were trained here
    read = run_store.passages_read(run_store.read_runs(out / run_store.RUNS_FILE))
    by_task: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r)
    results.fill_intervals(records)
    written = []
    for task, recs in sorted(by_task.items()):
        png = out / f"{slug(task)}-pareto.png"
        has_plot = plot(task, [r for r in recs if r.status == "ok"], png)
        path = out / f"{slug(task)}.md"
        adapted = {m for m, tasks in read.items() if task in tasks}
        path.write_text(task_markdown(task, recs, png.name if has_plot else None, adapted, lost), encoding="utf-8")
        written.append(path)
    return written
