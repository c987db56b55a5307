"""The answer side of `bench search query`: whether to abstain, and how to print what was found.

Kept apart from bench/search.py (which builds, stores and opens the index) so a change of the on-disk store leaves
this alone. A threshold is the one a task's records calibrated for the index's model (bench.measure.abstention): on
a dev half of that task's questions, the highest top score that still answered 90% of its answerable questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError



@dataclass
class Calibration:
    threshold: float | None
    task: str | None
    text: str  # where the threshold comes from, or why there is none


def calibration(results_path: Path, model: str, variant: str, task: str | None = None) -> Calibration:
    """The threshold of `model` [`variant`] from the records in `results_path` (the task's, where `task` is given)."""
    from bench.measure import results

    label = f"{model} [{variant}]"
    if not Path(results_path).is_file():
        return Calibration(None, None, f"no calibrated threshold for {label}: no results file at {results_path}")
    try:
        records = results.read(Path(results_path))
    except BenchError as e:
        return Calibration(None, None, f"no calibrated threshold for {label}: {e}")
    rows = {r.task: r for r in records if r.status == "ok" and r.model == model and r.variant == variant
            and r.abstention and r.abstention.get("threshold") is not None}
    if task is not None:
        rows = {t: r for t, r in rows.items() if t == task}
    if not rows:
        where = f"task {task}" if task else "any task with unanswerable questions"
        return Calibration(None, None, f"no calibrated threshold for {label} in {results_path} ({where} has not "
                                       "scored it); passages are shown without a confidence check")
    from bench.search import PREFERRED_TASKS

    # Where several tasks calibrated the model: the first of the search's preferred tasks, else the first by name.
    rank = {t: i for i, t in enumerate(PREFERRED_TASKS)}
    chosen = min(rows, key=lambda t: (rank.get(t, len(rank)), t))
    a = rows[chosen].abstention
    share = lambda x: "n/a" if x is None else f"{100 * x:.0f}%"  # noqa: E731
    return Calibration(float(a["threshold"]), chosen,
                       f"calibrated on {chosen} in {results_path}, AUROC {a['auroc']:.3f}; on that task's held-out "
                       f"half it abstained on {share(a.get('abstained_unanswerable'))} of unanswerable and answered "
                       f"{share(a.get('answered_answerable'))} of answerable questions")


def abstains(hits: list, cal: Calibration) -> bool:
    """True when a threshold is known and no passage reaches it."""
    return cal.threshold is not None and (not hits or hits[0][0] < cal.threshold)


def payload(hits: list, cal: Calibration) -> dict:
    """The one JSON object `--json` prints: abstain, threshold, results (with medicine and section for leaflets)."""
    from bench.search import hit_record

    return {"abstain": abstains(hits, cal), "threshold": cal.threshold,
            "results": [{**hit_record(s, c), "score": round(float(s), 6)} for s, c in hits], "calibration": cal.text}


def text_lines(hits: list, cal: Calibration, describe) -> list[str]:
    """The human answer: passages that clear the threshold, then a line, then the nearest ones below it."""
    lines = []
    if abstains(hits, cal):
        best = f"the best score, {hits[0][0]:.4f}, is" if hits else "nothing was found,"
        lines.append(f"No passage answers this question confidently: {best} below the threshold "
                     f"{cal.threshold:.4g} ({cal.text}).")
        lines.append("Nearest passages, all below that line:")
    cut = False
    for rank, (score, c) in enumerate(hits, 1):
        if cal.threshold is not None and score < cal.threshold and not cut and not abstains(hits, cal):
            lines.append(f"---- below the confidence threshold {cal.threshold:.4g}: these may not answer ----")
            cut = True
        lines.append(f"{rank:>2}. {score:.4f}  {describe(c)}")
        lines.append(f"    {c.text[:300]}")
    if not abstains(hits, cal):
        lines.append(f"(threshold {cal.threshold:.4g}, {cal.text}.)" if cal.threshold is not None else f"({cal.text}.)")
    return lines
