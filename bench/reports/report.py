"""A leaderboard and a Pareto plot per task, written from result records alone (no model is touched here).

The pieces: bench.reports.cells (a value as a cell prints it), standings (the recommendation logic, as values),
machines (which machine timed a row), sections (the prose), leaderboard (the declared tables) and plot.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bench.measure import results
from bench.measure.results import ResultRecord
from bench.names import slug
from bench.reports.leaderboard import task_markdown
from bench.reports.plot import plot
from bench.train import runs as run_store


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
