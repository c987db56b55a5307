"""Where a task's rows stand, as values: the Pareto front, the recommended row per latency budget, the rows a
recommendation must mention, and each pipeline against its parts. The leaderboard prints these; `bench search`
picks its model by them."""

from __future__ import annotations

from dataclasses import dataclass

from bench.measure import stats
from bench.measure.results import ResultRecord
from bench.reports.cells import label, lost_on_unseen_topics

BUDGETS_MS = (2, 10, 50)


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


def against(rows: list[ResultRecord], ref: ResultRecord) -> dict[str, stats.Paired]:
    """paired(row, ref) for every row, keyed by label, in one batch."""
    tests = stats.compare_many([r.per_query_ndcg for r in rows], ref.per_query_ndcg,
                               [r.ndcg_at_10 - ref.ndcg_at_10 for r in rows])
    return {label(r): t for r, t in zip(rows, tests)}


def _not_worse(r: ResultRecord, ref: ResultRecord, t: stats.Paired) -> bool:
    """r is statistically tied with or better than ref; untested, only a mean at least as high counts."""
    return not t.worse if t.tested else r.ndcg_at_10 >= ref.ndcg_at_10


def cheapest(rows: list[ResultRecord]) -> ResultRecord:
    return min(rows, key=lambda r: (r.latency_p50_ms, -r.ndcg_at_10))


def _tied_with(rows: list[ResultRecord], ref: ResultRecord) -> list[ResultRecord]:
    tests = against(rows, ref)
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

    def cheapest_tied(self) -> ResultRecord:
        """The fastest row statistically tied with the best overall (the best itself when none is faster)."""
        return cheapest(self.tied_best)


def standing(records: list[ResultRecord], budgets=BUDGETS_MS, lost=frozenset()) -> Standing | None:
    """Per latency budget, the cheapest row not significantly worse than the best overall; when no row in the
    budget is, the cheapest one not significantly worse than the best in the budget. None: no timed rows. Rows of
    the models `lost` names (lost_on_unseen_topics) take no part: neither picked nor the best to tie with."""
    timed = [r for r in records if r.latency_p50_ms is not None and not lost_on_unseen_topics(r, lost)]
    if not timed:
        return None
    best = max(timed, key=lambda r: (r.ndcg_at_10, -r.latency_p50_ms))
    vs_best = against(timed, best)
    tied_best = [r for r in timed if _not_worse(r, best, vs_best[label(r)])]
    tied_labels = {label(r) for r in tied_best}
    picks = {}
    for budget in budgets:
        fits = [r for r in timed if r.latency_p50_ms <= budget]
        if not fits:
            picks[budget] = None
            continue
        top = max(fits, key=lambda r: (r.ndcg_at_10, -r.latency_p50_ms))
        picks[budget] = cheapest([r for r in fits if label(r) in tied_labels] or _tied_with(fits, top))
    return Standing(best, vs_best, tied_best, picks)


def left_out(records: list[ResultRecord], best: ResultRecord, lost) -> list[ResultRecord]:
    """Rows above the best recommendable one that the unseen-topics rule left out, highest first."""
    return sorted((r for r in records if lost_on_unseen_topics(r, lost) and r.ndcg_at_10 is not None
                   and r.ndcg_at_10 > best.ndcg_at_10), key=lambda r: -r.ndcg_at_10)


def untimed_above(records: list[ResultRecord], best: ResultRecord) -> list[ResultRecord]:
    """Rows scored without timings (a `--no-speed` run) that beat the best timed row, highest first: the budgets
    cannot weigh them, so a recommendation must name them. Rows scored on a sample of the questions are left out
    (their mean is over other questions)."""
    return sorted((r for r in records if r.latency_p50_ms is None and r.ndcg_at_10 is not None
                   and not r.sampled_from and r.ndcg_at_10 > best.ndcg_at_10), key=lambda r: -r.ndcg_at_10)


# What a pipeline's check found against its parts.
NO_PARTS = "no parts"  # none of its stages has a row of its own
BEATS = "beats"  # significantly better than every scored part
TIES = "ties"  # not significantly better than some part, not significantly worse than the best
WORSE = "worse"  # significantly worse than its best part
HIGHER_UNTESTED = "higher, untested"  # no per-question scores: only the means compare
NOT_HIGHER_UNTESTED = "not higher, untested"


@dataclass
class PipelineCheck:
    """A pipeline against the parts that have rows of their own (a cross-encoder never has one)."""

    pipeline: ResultRecord
    scored: list[ResultRecord]
    missing: list[str]  # stage labels with no row
    tests: dict[str, stats.Paired]  # label of a scored part -> paired(pipeline, part)
    outcome: str

    @property
    def best_part(self) -> ResultRecord:
        return max(self.scored, key=lambda p: p.ndcg_at_10)

    @property
    def not_better_than(self) -> list[str]:
        return [n for n, t in self.tests.items() if not t.better]


def pipeline_checks(records: list[ResultRecord]) -> list[PipelineCheck]:
    """Does each pipeline significantly beat every one of its parts on this task?"""
    by_label = {label(r): r for r in records}
    out = []
    for r in records:
        if not r.stages:
            continue
        parts = [by_label.get(s) for s in r.stages]
        scored = [p for p in parts if p is not None]
        missing = [s for s, p in zip(r.stages, parts) if p is None]
        if not scored:
            out.append(PipelineCheck(r, [], missing, {}, NO_PARTS))
            continue
        best = max(scored, key=lambda p: p.ndcg_at_10)
        tests = {label(p): paired(r, p) for p in scored}
        against_best = tests[label(best)]
        if not against_best.tested:
            outcome = HIGHER_UNTESTED if r.ndcg_at_10 > best.ndcg_at_10 else NOT_HIGHER_UNTESTED
        elif all(t.better for t in tests.values()):
            outcome = BEATS
        elif against_best.worse:
            outcome = WORSE
        else:
            outcome = TIES
        out.append(PipelineCheck(r, scored, missing, tests, outcome))
    return out


def on_same_questions(part: ResultRecord, pipeline: ResultRecord) -> tuple[float, int | None]:
    """(the part's nDCG@10 over the pipeline's questions, how many when that is fewer than the part's own): a
    pipeline scored on a sample is tested on those alone, and the part's mean over all questions would not match
    the difference printed beside it."""
    mine, theirs = pipeline.per_query_ndcg, part.per_query_ndcg
    shared = sorted(set(mine) & set(theirs)) if mine and theirs else []
    if not shared or len(shared) == len(theirs):
        return part.ndcg_at_10, None
    return sum(theirs[q] for q in shared) / len(shared), len(shared)
