"""training.md's sections on the training runs themselves: what was built from what, on which data and machine
(header), each recipe's settings (Recipes), the MLM stage's held-out loss, and the overlap of training and evaluation
data (Leakage). Read from the stored training records alone."""

from __future__ import annotations

from collections import defaultdict

from tabulate import tabulate

from bench.reports.cells import num
from bench.reports.machines import machine_line
from bench.measure.results import ResultRecord
from bench.train.leakage import EVAL_TASKS
from bench.train.runs import DOMAIN_TASK, RUNS_FILE, is_number

TASKS = EVAL_TASKS
RECIPE_COLUMNS = ("Model", "Recipe", "Base", "Steps", "Wall time", "On", "Examples", "Final loss", "Seed")
PARAM_COLUMNS = (("max_seq_length", "Max seq"), ("batch_size", "Batch"), ("lr", "LR"), ("max_pairs", "Max pairs"),
                 ("max_steps", "Max steps"), ("freeze_embeddings", "Frozen embeddings"))
MLM_COLUMNS = ("Model", "Held-out texts", "Loss (new head untrained)", "Loss before", "Loss after",
               "Perplexity before", "Perplexity after", "Head warm-up steps")
NOT_TRAINED = "—"


def value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:g}" if isinstance(v, float) else str(v)


def wall_time(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def ordered_runs(runs: dict, entries: list) -> list[tuple[str, dict]]:
    """Runs in registry order, then any stored for models the registry no longer has."""
    names = [e.name for e in entries if e.name in runs]
    return [(n, runs[n]) for n in names] + [(n, r) for n, r in runs.items() if n not in names]


def header(ordered: list[tuple[str, dict]], runs: dict, entries: list, ok: list[ResultRecord]) -> list[str]:
    lines = ["# Trained models: ablation", "",
             "Built with `python -m bench train NAME` (bench/train/recipes/, one module a recipe) and scored by `python -m bench run`. "
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
    machine = machine_line(ok)
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


def recipes(ordered: list[tuple[str, dict]]) -> list[str]:
    if not ordered:
        return []
    rows = []
    for name, run in ordered:
        params = run.get("params") or {}
        steps = value(run.get("steps")) + (f" (+{run['head_steps']} head)" if run.get("head_steps") else "")
        wall = "" if run.get("wall_seconds") is None else wall_time(run["wall_seconds"])
        rows.append([name, run.get("recipe", ""), run.get("base", ""), steps, wall, _where(run),
                     value(run.get("examples")),
                     num(run.get("final_loss") if is_number(run.get("final_loss")) else None, 4),
                     value(run.get("seed"))] + [value(params.get(key)) for key, _ in PARAM_COLUMNS])
    headers = list(RECIPE_COLUMNS) + [h for _, h in PARAM_COLUMNS]
    return ["## Recipes", "", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
            "Steps: optimizer steps (MLM: + warm-up steps of the new MLM head with the encoder frozen). Examples: "
            "training triples (contrastive: question, positive, BM25 hard negative) or pairs (cross-encoder: "
            "positives and negatives; static-tune: question-paragraph pairs). Final loss: the last logged step's "
            "(static-tune logs the teacher fit's cosine distance, then the pair stage's InfoNCE, one curve). Wall "
            "time: the whole recipe, warm-up, teacher encoding and held-out evaluations included.", ""]


def mlm(ordered: list[tuple[str, dict]]) -> list[str]:
    runs = [(n, r) for n, r in ordered if r.get("heldout_mlm_loss_before") is not None]
    if not runs:
        return []
    rows = [[n, value(r.get("heldout_texts")), num(r.get("heldout_mlm_loss_random_head")),
             num(r.get("heldout_mlm_loss_before")), num(r.get("heldout_mlm_loss_after")),
             num(r.get("heldout_perplexity_before"), 2), num(r.get("heldout_perplexity_after"), 2),
             value(r.get("head_steps"))] for n, r in runs]
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


def leakage(ordered: list[tuple[str, dict]]) -> list[str]:
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
