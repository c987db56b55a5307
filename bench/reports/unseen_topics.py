"""training.md's unseen-topics section: each entry built with `train.hold_out` scored on the topic-disjoint task
against the model it starts from, its verdict (kept / lost), and the settings that task chooses."""

from __future__ import annotations

from collections import defaultdict

from tabulate import tabulate

from bench.measure import stats
from bench.models import recipe_table
from bench.measure.results import ResultRecord
from bench.reports.ablation import reference
from bench.reports.cells import ci_cell, delta_cell, label, num
from bench.reports.standings import paired

# Topics the trained entries never saw: the held-out era (bench/data/split.py), judged by entries built with
# train.hold_out. An entry more than LOSS_MARGIN nDCG@10 below its base there lost on unseen topics.
DISJOINT_TASK = "thquad_1792_1922"
SEEN_TOPICS_TASK = "thquad_dev"  # its paragraphs share eras, people and places with the training ones
LOSS_MARGIN = 0.01
# Distillation into a smaller model is judged by the students' targets against its teacher instead (students.md).
STUDENT_MAX_LOSS = 0.02  # a pruned student: nDCG@10 within this of its teacher
STATIC_SHARE = 0.85  # a static model: at least this share of its teacher's nDCG@10
DISJOINT_COLUMNS = ("Held-out entry", "Recipe", "Variant", "nDCG@10", "95% CI", "Judged against", "Its nDCG@10",
                    "Δ vs it (paired)", "Verdict", "Shipped entries it judges")


def unseen_verdict(row: ResultRecord, ref: ResultRecord, recipe: str) -> str:
    """kept: at most LOSS_MARGIN below its base on unseen topics (or above it), by the mean paired difference;
    lost: more than that below. A static-distill or prune student is held to the students' targets against its
    teacher instead (STATIC_SHARE of its nDCG@10; within STUDENT_MAX_LOSS)."""
    judged = recipe_table.RECIPES[recipe].judged if recipe in recipe_table.RECIPES else recipe_table.AGAINST_BASE
    if judged == recipe_table.AS_STATIC_SHARE:
        return "kept" if row.ndcg_at_10 >= STATIC_SHARE * ref.ndcg_at_10 else "lost"
    limit = STUDENT_MAX_LOSS if judged == recipe_table.AS_STUDENT else LOSS_MARGIN
    return "lost" if paired(row, ref).diff < -limit else "kept"


def disjoint_rows(records: list[ResultRecord], runs: dict) -> list[tuple[ResultRecord, ResultRecord | None, str]]:
    """(row, the row it is judged against, recipe) for each scored entry built with train.hold_out on the disjoint
    task: against its train.base (a static-distill's base is its teacher), same variant where the base has it,
    else the base's torch-fp32 row."""
    ok = [r for r in records if r.task == DISJOINT_TASK and r.status == "ok"]
    out = []
    for r in ok:
        run = runs.get(r.model) or {}
        if not run.get("hold_out"):
            continue
        bases = [b for b in ok if b.model == run.get("base")]
        out.append((r, reference(bases, r.variant) or (bases[0] if bases else None), run.get("recipe", "")))
    return out


def section(records: list[ResultRecord], runs: dict, entries: list) -> list[str]:
    rows = disjoint_rows(records, runs)
    judged_by = defaultdict(list)
    for e in entries:
        if e.unseen_topics.get("by"):
            judged_by[e.unseen_topics["by"]].append(e.name)
    lines = [f"## Unseen topics: `{DISJOINT_TASK}`", "",
             f"The 1792–1922 thquad file held out whole (bench/data/split.py): its 1,624 questions searched among all "
             "246 thquad paragraphs, by entries built without that file (`train.hold_out: era`), each against the "
             f"model it starts from. More than {LOSS_MARGIN} nDCG@10 below it (the mean paired difference): lost on "
             f"unseen topics; a static-distill needs {STATIC_SHARE:.0%} of its teacher's nDCG@10, a pruned student "
             f"to stay within {STUDENT_MAX_LOSS} of it (the students' targets). A shipped entry (trained on every era) takes the verdict of the held-out entry of its "
             "recipe (models.yaml `unseen_topics`); one with no such entry scored is `not judged`, and neither is "
             "ever recommended.", ""]
    if rows:
        table = []
        for r, ref, recipe in rows:
            t = paired(r, ref) if ref is not None else None
            table.append([r.model, recipe, r.variant, num(r.ndcg_at_10), ci_cell(r),
                          label(ref) if ref is not None else "not scored", num(ref.ndcg_at_10) if ref else "",
                          delta_cell(t) if t else "", unseen_verdict(r, ref, recipe) if t else "not judged",
                          ", ".join(judged_by.get(r.model, [])) or "—"])
        lines += [tabulate(table, headers=DISJOINT_COLUMNS, tablefmt="github", disable_numparse=True), "",
                  "Δ vs it: mean per-question difference over the questions both rows answered; * = significant by "
                  f"the paired sign-flip test (α = {stats.ALPHA}), (n.s.) = not significant.", ""]
        lines += chosen(rows)
    else:
        lines += ["No held-out entry is scored on this task yet (`make train` builds and scores them).", ""]
    verdicts = {e.name: e.unseen_topics.get("verdict") for e in entries if e.unseen_topics}
    computed = {r.model: unseen_verdict(r, ref, recipe) for r, ref, recipe in rows if ref is not None}
    disagree = [f"{e.name} (declared {e.unseen_topics['verdict']}, its held-out entry {e.unseen_topics['by']}: "
                f"{computed[e.unseen_topics['by']]})" for e in entries
                if e.unseen_topics.get("by") in computed
                and e.unseen_topics.get("verdict") != computed[e.unseen_topics["by"]]]
    if disagree:
        lines += ["**The declared verdicts disagree with these rows:** " + "; ".join(disagree) + ".", ""]
    for verdict in ("lost", "not judged", "kept"):
        names = [n for n, v in verdicts.items() if v == verdict]
        if names:
            lines += [f"Declared `{verdict}` in models.yaml: {', '.join(names)}.", ""]
    return lines


def chosen(rows: list[tuple[ResultRecord, ResultRecord | None, str]]) -> list[str]:
    """Per recipe and base tried in more than one setting: the setting the disjoint task chooses (the highest
    nDCG@10), with its paired difference to each other setting."""
    groups = defaultdict(list)
    for r, ref, recipe in rows:
        if ref is not None:
            groups[(recipe, ref.model)].append(r)
    lines = []
    for (recipe, base), tried in groups.items():
        if len(tried) < 2:
            continue
        best = max(tried, key=lambda r: r.ndcg_at_10)
        others = "; ".join(f"{label(r)} {delta_cell(paired(best, r))}" for r in tried if r is not best)
        lines.append(f"- **{recipe} from {base}**: the disjoint task chooses {label(best)} "
                     f"({num(best.ndcg_at_10)}); against the other settings: {others}.")
    return (["Settings chosen on unseen topics (the highest nDCG@10 of the settings tried; paired differences, "
             "chosen minus other):", ""] + lines + [""]) if lines else []
