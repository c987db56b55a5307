"""The training-run store: reports/training.json, {entry name: the training.json its build wrote}.

`bench train` snapshots each build into it; the reports read it to say what each model trained on (leakage marks,
inverse-cloze adaptation, the ablation's steps)."""

from __future__ import annotations

import json
from pathlib import Path

from typing import Annotated

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from bench import fileio
from bench.declared import Expect, Number, build, is_number
from bench.errors import BenchError
from bench.models import registry

RUNS_FILE = "training.json"  # in the reports folder: {entry name: that model's training.json}
DOMAIN_TASK = "drug_leaflets"  # the MLM stage and inverse-cloze pairs read this task's text: said so when they do


Num = Annotated[Number | None, Expect(": expected a number")]
Nums = Annotated[list[Number] | None, Expect(": expected a list of numbers")]
Obj = Annotated[dict | None, Expect(": expected an object")]
Counts = Annotated[dict[str, dict] | None, Expect(": expected an object of per-task counts")]
PerTask = Annotated[dict | None, Expect(": expected an object of per-task counts")]


@pydantic_dataclass(config=ConfigDict(strict=True, extra="allow"))
class TrainingRun:
    """A build's training.json, as far as the reports compute with it; anything else in it is only shown."""

    steps: Num = None  # the table's steps column, with head_steps: "(+N head)"
    wall_seconds: Num = None  # summed along a train.base chain for the ETA of a rebuild
    head_steps: Num = None
    losses: Nums = None  # the loss plot; head_losses continue the curve
    head_losses: Nums = None
    params: Obj = None  # what it was built with (recipe params), compared with the registry's
    data: Obj = None  # file -> sha256 of what it read
    leakage: Counts = None  # task -> {paragraphs, questions, ...} the build's data shared with that task
    excluded_eval_questions: PerTask = None  # task -> questions dropped from the training data


def _check_run(path: Path, name: str, run) -> None:
    if not isinstance(run, dict):
        raise BenchError(f"{path}: entry '{name}': expected an object (that model's training.json)")
    build(TrainingRun, run, f"{path}: entry '{name}'", sep=" ", allowed=set(run))


def read_runs(path: Path) -> dict:
    """{entry name: training record} from a reports folder's training.json; {} when there is no such file (nothing
    trained yet)."""
    if not Path(path).is_file():
        return {}
    raw = fileio.read_json(Path(path))
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: expected a JSON object of training records keyed by model name")
    for name, run in raw.items():
        _check_run(Path(path), name, run)
    return raw


def passages_read(runs: dict) -> dict[str, set[str]]:
    """{model: evaluation tasks whose paragraphs it trained on}, through what it was built from too (its base, the
    model it was merged with, its teacher): the leaflet text an MLM stage read is in every model built on it."""
    memo: dict[str, set[str]] = {}

    def of(name: str, path: tuple = ()) -> set[str]:
        run = runs.get(name)
        if name in memo or not isinstance(run, dict) or name in path:
            return memo.get(name, set())
        tasks = {t for t, c in (run.get("leakage") or {}).items()
                 if isinstance(c, dict) and is_number(c.get("paragraphs")) and c["paragraphs"] > 0}
        params = run.get("params") or {}
        for parent in (run.get("base"), params.get("with"), params.get("teacher")):
            if isinstance(parent, str):
                tasks |= of(parent, path + (name,))
        memo[name] = tasks
        return tasks

    return {name: of(name) for name in runs}


def inverse_cloze_trained(runs: dict) -> dict[str, str]:
    """{model: the task whose passages its pair stage cut inverse-cloze pairs from} (static-tune's ict_sentences;
    the pairs come from the leaflet files, which are that task's corpus)."""
    return {name: DOMAIN_TASK for name, run in runs.items() if isinstance(run, dict) and run.get("ict_pairs")}


def snapshot(models_path: str | Path, out_json: str | Path) -> list[str]:
    """Copy the training.json of every trained registry entry built in this cache into out_json; entries already
    there for models not built here are kept unless the registry no longer names them, or names them with other
    settings. Returns the names copied."""
    out_json = Path(out_json)
    entries = registry.load_registry(models_path)
    by_name = {e.name: e for e in entries if e.train}
    # A kept run counts only while the registry still names that entry with the settings it was built from.
    stored = {name: run for name, run in read_runs(out_json).items()
              if name in by_name and not registry.run_mismatch(by_name[name], run, check_base=False)}
    copied = []
    for entry in entries:
        marker = registry.trained_dir(entry) / registry.TRAINED_MARKER if entry.train else None
        if marker is None or not marker.is_file():
            continue
        run = fileio.read_json(marker)
        _check_run(marker, entry.name, run)
        stored[entry.name] = run
        copied.append(entry.name)
    if copied:
        try:
            fileio.write_atomic(out_json, json.dumps(stored, ensure_ascii=False, indent=1) + "\n")
        except OSError as e:
            raise BenchError(f"{out_json}: cannot write the training snapshot ({e.strerror or type(e).__name__})") from None
    return copied


def default_snapshot(models_path: str | Path) -> Path:
    """The reports folder beside the registry: reports/training.json for this repository's models.yaml."""
    return Path(models_path).resolve().parent / "reports" / RUNS_FILE


def snapshot_beside(models_path: str | Path) -> list[str]:
    return snapshot(models_path, default_snapshot(models_path))
