"""One value of a result row as a table cell prints it, and the marks a row's name carries (no logic that picks)."""

from __future__ import annotations

from bench.measure import stats
from bench.measure.results import ResultRecord
from bench.models import registry


def num(x, digits=3):
    return "" if x is None else f"{x:.{digits}f}"


def signed(x):
    return "" if x is None else f"{x:+.3f}"


def mb(n):
    return "" if n is None else f"{n / 1e6:.1f}"


def mparams(n):
    return "" if n is None else f"{n / 1e6:.1f}M"


def pct(x) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def label(r: ResultRecord) -> str:
    return f"{r.model} [{r.variant}]"


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


def adapted(r: ResultRecord, models: set[str]) -> bool:
    """The row's model, or a stage of its pipeline, trained on the task's passages (`models`: those that did)."""
    return r.model in models or any(registry.stage_name(s) in models for s in r.stages or [])


def model_cell(r: ResultRecord, adapted_models: set[str] = frozenset(), lost=frozenset()) -> str:
    # A row scored on a sample of the questions says so where it is read; its deltas are over the common questions.
    name = f"{r.model} (on {r.n_queries} of {r.sampled_from} questions)" if r.sampled_from else r.model
    name = f"{name} {ADAPTED_MARK}" if adapted(r, adapted_models) else name
    return f"{name} {UNSEEN_MARK}" if lost_on_unseen_topics(r, lost) else name


def delta_cell(t: stats.Paired) -> str:
    """A difference with its verdict: * significant, (n.s.) not significant, (n/a) not testable."""
    return f"{t.diff:+.3f}" + ("*" if t.significant else " (n.s.)" if t.tested else " (n/a)")


def verdict(t: stats.Paired) -> str:
    if not t.tested:
        return "untested: no per-question scores"
    p = "p < 0.001" if t.p_value < 0.001 else f"p = {t.p_value:.3f}"
    return f"{'significant' if t.significant else 'not significant'}, {p}"


def interval(r: ResultRecord) -> tuple[float, float] | None:
    if r.ndcg_ci_low is not None and r.ndcg_ci_high is not None:
        return r.ndcg_ci_low, r.ndcg_ci_high
    return stats.interval(r.per_query_ndcg)


def ci_cell(r: ResultRecord) -> str:
    iv = interval(r)
    return "n/a" if iv is None else f"{iv[0]:.3f}–{iv[1]:.3f}"


def score(r: ResultRecord) -> str:
    iv = interval(r)
    return f"nDCG@10 {r.ndcg_at_10:.3f}" + ("" if iv is None else f" (95% CI {iv[0]:.3f}–{iv[1]:.3f})")


def spread(value, pct_, digits):
    """A median with its spread (± half the interquartile range of the round figures, in %)."""
    return "" if value is None else f"{value:.{digits}f}" + ("" if pct_ is None else f" ±{pct_:.0f}%")


def gflops(r: ResultRecord) -> str:
    """Achieved GFLOP/s against the peak of the arithmetic the variant runs (int8 variants: the int8 peak)."""
    peak = r.peak_for_variant or r.peak_gflops
    if r.gflops is None:
        return ""
    kind = f" of {r.peak_kind}" if r.peak_kind else ""
    return f"{r.gflops:.0f} ({100 * r.gflops / peak:.0f}%{kind})" if peak else f"{r.gflops:.0f}"
