"""The prose sections of a task's leaderboard: each prints values that bench.reports.standings (or the records)
give, and decides nothing itself."""

from __future__ import annotations

import shlex

from tabulate import tabulate

from bench.measure import stats
from bench.measure.results import ResultRecord
from bench.reports import standings
from bench.reports.cells import UNSEEN_MARK, delta_cell, label, lost_on_unseen_topics, model_cell, num, pct, score, \
    verdict
from bench.reports.machines import machine_letters, machine_tag, same_machine


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


def bm25_sentence(dense: list[ResultRecord], vs_bm25: dict[str, stats.Paired]) -> str:
    """Only significant wins count as beating BM25; higher-but-not-significant rows are named apart."""
    tests = {label(r): vs_bm25[label(r)] for r in dense}
    wins = [n for n, t in tests.items() if t.better]
    unsure = [n + ("" if t.tested else " (untested)") for n, t in tests.items() if not t.better and t.diff > 0]
    behind = [n for n, t in tests.items() if t.diff <= 0]
    return (f"Beat BM25 on nDCG@10 (significant at {stats.ALPHA}): {', '.join(wins) or 'none'}. "
            f"Higher but not significantly: {', '.join(unsure) or 'none'}. "
            f"Do not: {', '.join(behind) or 'none'}.")


def recommendations(records: list[ResultRecord], lost=frozenset()) -> list[str]:
    """The Markdown lines of standings.standing: one per budget, then the best overall, then the rows it must
    name (untimed above the best, left out by the unseen-topics rule)."""
    st = standings.standing(records, lost=lost)
    if st is None:
        return []
    best, vs_best = st.best, st.vs_best
    letters = machine_letters(records)

    def p50(r: ResultRecord) -> str:
        return f"{r.latency_p50_ms:.2f} ms" + machine_tag(letters, r)

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
            trade = (f"{t.diff:+.3f} nDCG@10 against the best overall, {label(best)} ({verdict(t)}), at "
                     + faster(pick, "lower query latency")
                     + ("; a larger budget buys no significant gain." if st.tied(pick) else "."))
        lines.append(f"- **≤ {budget} ms per query:** {label(pick)} — {score(pick)}, p50 {p50(pick)}; {trade}")
    tied = st.cheapest_tied()
    if tied is best:
        tie = (" No faster row is statistically tied with it." if vs_best[label(best)].tested
               else " No faster row scores as high.")
    else:
        t = vs_best[label(tied)]
        tie = (f" Cheapest row statistically tied with it: {label(tied)}, {p50(tied)} "
               f"({faster(tied, 'faster')}; {t.diff:+.3f}, {verdict(t)}).")
    lines.append(f"- **Best overall:** {label(best)} — {score(best)}, p50 {p50(best)}, "
                 f"{num(best.throughput_per_s, 1)} passages/s." + tie)
    untimed = standings.untimed_above([r for r in records if not lost_on_unseen_topics(r, lost)], best)
    return lines + _untimed_lines(untimed, best) + _left_out_lines(standings.left_out(records, best, lost))


def _left_out_lines(above: list[ResultRecord]) -> list[str]:
    if not above:
        return []
    return [f"- **Not recommended ({UNSEEN_MARK}):** " + "; ".join(
        f"{label(r)}, nDCG@10 {r.ndcg_at_10:.3f}" for r in above)
        + " score higher here, but each lost to its base on unseen topics or was never judged there "
        "(models.yaml `unseen_topics`)."]


def _untimed_lines(above: list[ResultRecord], best: ResultRecord) -> list[str]:
    """The budgets cannot weigh untimed rows, so the section names them rather than let a weaker "best overall"
    stand, with the command that times them."""
    if not above:
        return []
    tests = standings.against(above, best)
    rows = "; ".join(f"{label(r)}, {score(r)}, {tests[label(r)].diff:+.3f} against {label(best)} "
                     f"({verdict(tests[label(r)])})" for r in above)
    models = " ".join(shlex.quote(m) for m in dict.fromkeys(r.model for r in above))
    variants = " ".join(shlex.quote(v) for v in dict.fromkeys(r.variant for r in above))
    fix = f"python -m bench run --tasks {shlex.quote(above[0].task)} --only {models} --variants {variants}"
    return [f"- **Not timed on this task:** {rows}. The budgets above weigh timed rows only; time "
            f"{'it' if len(above) == 1 else 'them'} (`{fix}`) before choosing."]


def _part_score(part: ResultRecord, pipeline: ResultRecord) -> str:
    value, shared = standings.on_same_questions(part, pipeline)
    return f"{value:.3f}" + ("" if shared is None else f" on the same {shared} questions")


def pipeline_verdicts(records: list[ResultRecord]) -> list[str]:
    """The Markdown lines of standings.pipeline_checks."""
    lines = []
    for c in standings.pipeline_checks(records):
        r = c.pipeline
        if c.outcome == standings.NO_PARTS:
            lines.append(f"- {label(r)}: nDCG@10 {r.ndcg_at_10:.3f}; no row for {', '.join(c.missing)} to compare with.")
            continue
        unscored = "".join(f"; {m} has no row of its own" for m in c.missing)
        parts_word = "scored parts" if c.missing else "parts"
        verdict_text = {
            standings.HIGHER_UNTESTED: f"is higher than each of its {parts_word} (untested: no per-question scores)",
            standings.NOT_HIGHER_UNTESTED: "does not beat its best part (untested: no per-question scores)",
            standings.BEATS: f"beats each of its {parts_word}",
            standings.WORSE: "does not beat its best part (significantly worse)",
            standings.TIES: "ties: not significantly better than " + ", ".join(c.not_better_than),
        }[c.outcome]
        lines.append(f"- {label(r)}: nDCG@10 {r.ndcg_at_10:.3f} {verdict_text} ("
                     + ", ".join(f"{label(p)} {_part_score(p, r)}" for p in c.scored)
                     + f"; {delta_cell(c.tests[label(c.best_part)])} against the best{unscored}).")
    return lines


KIND_ORDER = ("brand", "ingredient", "complaint")


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
    table = [[model_cell(r), r.variant, num(r.ndcg_at_10)] + [num(r.ndcg_by_kind.get(k)) for k in kinds] for r in rows]
    return ["## Questions by kind", "",
            "nDCG@10 over the answerable questions of each kind (in brackets: how many): `brand` names the medicine "
            "as sold, `ingredient` only its active ingredient, `complaint` neither, only what it treats.", "",
            tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), ""]


GOAL_ABSTAIN, GOAL_ANSWER = 0.8, 0.9


def goal_gap(a: dict) -> dict[str, float]:
    """How far a row's test-half shares fall short of the goal, in percentage points (negative), by share; empty
    when it meets both."""
    short = {}
    if a.get("abstained_unanswerable") is not None and a["abstained_unanswerable"] < GOAL_ABSTAIN:
        short["abstains"] = 100 * (a["abstained_unanswerable"] - GOAL_ABSTAIN)
    if a.get("answered_answerable") is not None and a["answered_answerable"] < GOAL_ANSWER:
        short["answers"] = 100 * (a["answered_answerable"] - GOAL_ANSWER)
    return short


def _gap(a: dict) -> str:
    return "; ".join(f"{share} {points:.1f} points" for share, points in goal_gap(a).items()) or "meets both"


def abstention_section(ok: list[ResultRecord], lost=frozenset()) -> list[str]:
    """Can each row tell that no passage answers? AUROC of its top score, and abstention at a dev-chosen threshold."""
    rows = sorted((r for r in ok if r.abstention), key=lambda r: -(r.abstention.get("auroc") or 0))
    if not rows:
        return []
    a0 = rows[0].abstention
    table = [[model_cell(r), r.variant, num(r.abstention.get("auroc")), f"{r.abstention['threshold']:.4g}",
              pct(r.abstention.get("abstained_unanswerable")), pct(r.abstention.get("answered_answerable")),
              _gap(r.abstention)] for r in rows]
    lines = ["## Abstention", "",
             f"{a0['n_unanswerable']} unanswerable questions (no passage answers them: medicines and topics no "
             f"document covers) beside the {a0['n_answerable']} answerable ones; the leaderboard above scores only "
             "the answerable. AUROC: how well a row's top passage score separates answerable from unanswerable "
             "questions over all of them (1 = perfectly, 0.5 = chance). Threshold: chosen on a dev half of the "
             f"questions (seeded split, seed {a0['seed']}, stratified; {a0['n_dev']} questions) as the highest top "
             f"score that still answers {pct(a0['target_answered'])} of its answerable questions; the two shares "
             f"are measured on the other half ({a0['n_test']} questions), so the choice never sees them. Goal: "
             f"abstain on ≥ {pct(GOAL_ABSTAIN)} of unanswerable questions and answer ≥ {pct(GOAL_ANSWER)} of "
             "answerable ones. `bench search query` uses a row's threshold to abstain.", "",
             tabulate(table, headers=["Model", "Variant", "AUROC", "Threshold", "Abstains (unanswerable)",
                                      "Answers (answerable)", "Short of the goal"],
                      tablefmt="github", disable_numparse=True), ""]
    st = standings.standing(ok, lost=lost)
    budget = max(standings.BUDGETS_MS)
    pick = st.picks.get(budget) if st else None
    if pick is not None and pick.abstention:
        a = pick.abstention
        lines += [f"Goal, for the recommended row under {budget} ms ({label(pick)}): it abstains on "
                  f"{pct(a.get('abstained_unanswerable'))} of the unanswerable questions and answers "
                  f"{pct(a.get('answered_answerable'))} of the answerable ones at threshold {a['threshold']:.4g}: "
                  + ("it meets both." if not goal_gap(a) else f"it misses: {_gap(a)}.") + "", ""]
    return lines
