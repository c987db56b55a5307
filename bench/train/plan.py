"""What `bench train` will build, in which order, and how long it should take: the entry and the trained entries
it reads, bases first, each with the wall time of its last run of the same settings on the same kind of machine."""

from __future__ import annotations

from bench.models import registry
from bench.train import runs as run_store
from bench.train.trainer import cuda

ENTRY_PARAMS = ("with", "teacher")  # train.params keys that name another entry (merge's other model, a teacher)


def needs(entry, by_name: dict) -> list:
    """The entries a build reads: its base, and the models its params name (ENTRY_PARAMS)."""
    params = entry.train.get("params") or {}
    names = [entry.train["base"]] + [params[k] for k in ENTRY_PARAMS if isinstance(params.get(k), str)]
    return [by_name[n] for n in names if n in by_name]


def order(entry, by_name: dict) -> list:
    """The entry and the trained entries it reads, those first (MLM before the contrastive model that starts from
    it; a static model's teacher before the static model fitted to it)."""
    plan = []

    def visit(e, path: tuple):
        if not e.train or e in plan or e.name in path:  # a cycle is the registry's to report
            return
        for need in needs(e, by_name):
            visit(need, path + (e.name,))
        plan.append(e)

    visit(entry, ())
    return plan


def is_built(entry) -> bool:
    return (registry.trained_dir(entry) / registry.TRAINED_MARKER).is_file() and not registry.trained_mismatch(entry)


def expected_seconds(entry, runs: dict, gpu: bool) -> tuple[float, str] | None:
    """(wall seconds, where) of the last run of `entry` with its present settings, if it ran on the same kind of
    machine (a GPU's seconds say nothing of two cores)."""
    run = runs.get(entry.name)
    if not run or not isinstance(run.get("wall_seconds"), (int, float)) or registry.run_mismatch(entry, run, False):
        return None
    if bool(run.get("gpu")) != gpu:
        return None
    threads = (run.get("machine") or {}).get("threads")
    return float(run["wall_seconds"]), run.get("gpu") or (f"{threads} CPU threads" if threads else "CPU")


def etas(todo: list, models_path) -> dict[str, tuple[float, str]]:
    path = run_store.default_snapshot(models_path)
    runs = run_store.read_runs(path)
    gpu = cuda()
    return {e.name: got for e in todo if (got := expected_seconds(e, runs, gpu))}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def progress(k: int, n: int, entry, eta: dict, remaining: list) -> str:
    """`remaining`: this build and those after it."""
    this = (f"about {_minutes(eta[entry.name][0])} (its last run, on {eta[entry.name][1]})" if entry.name in eta
            else "no earlier run here to estimate from")
    known = [eta[e.name][0] for e in remaining if e.name in eta]
    unknown = len(remaining) - len(known)
    rest = f"about {_minutes(sum(known))} left in all" if known else ""
    if unknown:
        rest += f"{' + ' if rest else ''}{unknown} build(s) without an estimate"
    return f"[{k}/{n}] {entry.name}: {this}" + (f"; {rest}" if rest else "")
