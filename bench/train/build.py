"""`python -m bench train NAME`: build a trained registry entry (and first its unbuilt trained bases).

The recipe's row in bench.models.recipe_table names its data preparation and its training function; what this file
adds is the same for every recipe: the params with their defaults, the leakage check, the training.json record and
the staging (bench.train.staging: a failed build leaves nothing behind).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from bench.data import split
from bench.errors import BenchError
from bench.models import recipe_table, registry
from bench.provenance import code_fingerprint, machine_info, sha256_file
from bench.train import leakage, plan as build_plan, runs as run_store
from bench.train.corpus import Job, base_folder, data_files, display_path, params_for, read_corpus
from bench.train.staging import publish, staged

LIBRARIES = ("torch", "transformers", "sentence-transformers", "datasets")
DEFAULT_LEAKAGE_NOTE = "training questions equal to evaluation questions: zero (checked)"


def build(names: str | list[str], models_path: str | Path, max_steps: int | None = None, force: bool = False) -> list[dict]:
    """Build the named entries and the trained bases they start from, each once, bases first. Before each build a
    progress line gives its expected wall time and the time left in all, taken from earlier runs of the same
    settings in reports/training.json (read once, before this run's builds replace them)."""
    names = [names] if isinstance(names, str) else list(names)
    entries = registry.load_registry(models_path)
    by_name = {e.name: e for e in entries}
    for name in names:
        if name not in by_name:
            raise BenchError(f"train: no entry named '{name}' in {models_path}")
        if not by_name[name].train:
            raise BenchError(f"{models_path}: '{name}' has no 'train' block (nothing to build)")
    plan = []
    for name in names:
        plan += [e for e in build_plan.order(by_name[name], by_name) if e not in plan]
    todo = [e for e in plan if not build_plan.is_built(e) or (force and e.name in names)]
    eta = build_plan.etas(todo, models_path) if max_steps is None else {}  # a quick build says nothing of the real one
    done = []
    for entry in plan:
        if entry not in todo:
            print(f"{entry.name}: already built in {registry.trained_dir(entry)}")
        else:
            print(build_plan.progress(len(done) + 1, len(todo), entry, eta, todo[len(done):]), flush=True)
            done.append(build_one(entry, by_name, Path(models_path), max_steps))
        # reports/training.json keeps each run beside the results, so training.md rebuilds without this cache
        run_store.snapshot_beside(models_path)
    return done


def prepare(entry, by_name: dict, files: list[Path], params: dict, seed: int, evals: dict | None = None):
    """(recipe call arguments, training questions, training paragraphs) from the data files, by the recipe's own
    prepare (its row in bench.models.recipe_table)."""
    if evals is None:
        evals = leakage.for_build(leakage.load_eval(), entry.train.get("hold_out"), leakage.held_out_tasks())[0]
    texts, conv = read_corpus(files)
    job = Job(entry, by_name, files, params, seed, evals, texts, conv)
    return recipe_table.recipe(job.recipe).function("prepare")(job)


def build_one(entry, by_name: dict, models_path: Path, max_steps: int | None) -> dict:
    import torch

    from bench.models.encoders import threads

    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise BenchError("training needs the Python package 'accelerate' (transformers.Trainer requires it): "
                         "pip install 'accelerate==1.15.0'")
    recipe, seed = entry.train["recipe"], int(entry.train.get("seed", 0))
    row = recipe_table.recipe(recipe)
    params = params_for(recipe, entry.train.get("params") or {}, max_steps)
    files = data_files(entry, models_path)
    base = by_name[entry.train["base"]]
    source = base_folder(base)
    evals = leakage.load_eval()
    hold_out = entry.train.get("hold_out")
    # An entry that reads every era drops no training question for equalling one of the held-out era's.
    dropped_for, trained_on, strict = leakage.for_build(evals, hold_out, leakage.held_out_tasks())
    args, questions, paragraphs = prepare(entry, by_name, files, params, seed, dropped_for)
    excluded = params.pop("excluded_eval_questions", None)
    cloze = params.pop("ict_pairs", None)
    note = params.pop("leakage_note", DEFAULT_LEAKAGE_NOTE)
    counts = leakage.check(questions, paragraphs, evals=evals, trained_on=trained_on, strict=strict)

    final = registry.trained_dir(entry)
    print(f"{entry.name}: training ({recipe} from '{base.name}') -> {final}", flush=True)
    with staged(final) as tmp:
        torch.set_num_threads(threads())
        if torch.cuda.is_available():  # TF32 matmuls: the GPU's fast path; recorded with the machine below
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        start = time.perf_counter()
        result = row.function("train")(source, *args, out=tmp, params=params, seed=seed)
        wall = round(time.perf_counter() - start, 1)
        record = {
            "name": entry.name, "recipe": recipe, "base": base.name, "seed": seed, "params": params,
            # Deterministic recipes rebuild byte-identical records; the id keeps base_build_id unique per build.
            "build_id": uuid.uuid4().hex, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **({"base_build": registry.base_build_id(registry.trained_dir(base) / registry.TRAINED_MARKER)}
               if base.train else {}),
            "data": {display_path(f, entry.base_dir): sha256_file(f) for f in files},
            "split": "thquad-style SQuAD files: train side of bench.data.split (hash of paragraph text, 1 in "
                     f"{split.DEV_BUCKETS} to dev)" + (f"; the {split.ERA} era's files held out whole (train.hold_out: "
                                                      f"{hold_out})" if hold_out else ""),
            **({"hold_out": hold_out} if hold_out else {}),
            "wall_seconds": wall, **result,
            "leakage": counts,
            **({"excluded_eval_questions": excluded} if excluded is not None else {}),
            **({"ict_pairs": cloze} if cloze is not None else {}),
            "leakage_note": note,
            "libraries": {lib: version(lib) for lib in LIBRARIES + row.libraries},
            "machine": machine_info(threads()),  # wall_seconds means little without the CPU it was measured on
            **({"gpu": torch.cuda.get_device_name(0)} if torch.cuda.is_available() else {}),
            "code": code_fingerprint("bench.train"),
        }
        publish(tmp, final, record)
    print(f"{entry.name}: built in {wall} s" if not result["steps"] else  # no optimizer (static-distill, trim, merge)
          f"{entry.name}: {result['steps']} steps in {wall} s, final loss {result['final_loss']}", flush=True)
    return record
