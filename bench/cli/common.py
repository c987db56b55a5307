"""What several commands share: registry look-ups, the --out folder, thread count and the argument types."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from bench import threads as bench_threads
from bench.models import loaders, registry
from bench.errors import BenchError


def registry_entries(models_path) -> dict:
    return {e.name: e for e in registry.load_registry(models_path)}


def lookup(entries: dict, name: str, flag: str, models_path):
    if name not in entries:
        raise BenchError(f"{flag}: no entry named '{name}' in {models_path} (known: {', '.join(entries)})")
    return entries[name]


def profile_names(models_path, profile: str | None, names=None, flag: str = "--profile") -> list[str]:
    """The entry names of registry profile `profile` (in its order) then `names`, each once; `names` alone without
    a profile."""
    listed = []
    if profile:
        profiles = registry.load_profiles(models_path)
        if profile not in profiles:
            raise BenchError(f"{flag}: no profile '{profile}' in {models_path} (has: {', '.join(profiles) or 'none'})")
        listed = [n for n, _ in profiles[profile].entries]
    return list(dict.fromkeys(listed + list(names or [])))


def narrowed_profile(models_path, profile: str, only=None) -> list[str]:
    """The entry names of `profile`, narrowed to `only` where given (as `bench run --profile P --only ...`)."""
    names = [n for n in profile_names(models_path, profile) if not only or n in only]
    if not names:
        raise BenchError(f"--only: none of {', '.join(only)} is in profile '{profile}'")
    return names


def out_folder(path, flag: str = "--out") -> Path:
    """Checked before any work: a file in the way would otherwise surface only when the results are written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BenchError(f"{flag} {path}: names a file; pass a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. under /proc, or a read-only mount: said now, not after the run's work
        raise BenchError(f"{flag} {path}: cannot write there ({e.strerror}); pass a writable folder") from None
    return path


def speed_options(args) -> dict:
    return {"rounds": args.rounds, "remeasure": args.remeasure, "max_workers": args.max_workers}


def entry_variant(entry, variant: str | None, flag: str = "--variant") -> str:
    variant = variant or entry.base_variant
    if variant not in (entry.variants if entry.kind == "pipeline" else loaders.variants(entry.loader)):
        raise BenchError(f"{flag}: '{entry.name}' has no variant '{variant}' (has {', '.join(entry.variants)})")
    return variant


def nonempty_question(text: str, flag: str) -> str:
    if not text.strip():
        raise BenchError(f"{flag}: the question is empty")
    return text


def threads(args) -> int:
    """--threads, else BENCH_THREADS, else every core; a bad environment value is named, not a traceback."""
    return args.threads or bench_threads.count()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None


def similarity(text: str) -> float:
    """A rapidfuzz score threshold: above 0, at most 100."""
    value = number(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"expected a number above 0 and at most 100, got {text}")
    return value


def tolerance(text: str) -> float:
    value = number(text)
    if not (math.isfinite(value) and value >= 0):  # nan would pass any drop, a negative one fail an unchanged score
        raise argparse.ArgumentTypeError(f"expected a finite number of 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value
