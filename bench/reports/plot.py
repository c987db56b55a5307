"""The Pareto plot of a task: nDCG@10 against query latency, every timed row coloured by family, names only on the
front and the recommended rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.measure.results import ResultRecord
from bench.models import loaders
from bench.reports.cells import interval, label
from bench.reports.standings import pareto_front, standing

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


def spread_labels(ys: list[float], gap: float) -> list[float]:
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
        iv = interval(r)
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
    for r, y in zip(by_height, spread_labels([min(max(y, 0.02), 0.98) for y in ys], 0.055)):
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
