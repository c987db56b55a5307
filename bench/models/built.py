"""Trained entries' builds: where `python -m bench train NAME` puts a model (the cache, never the repo), and whether
the build there still matches the entry's `train:` block."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench import names
from bench.models.entry import ModelEntry

TRAINED_MARKER = "training.json"  # written last: a folder without it is never trusted


def trained_dir(entry: ModelEntry) -> Path:
    return trained_dir_of(entry.name)


def trained_dir_of(name: str) -> Path:
    from bench.paths import cache_dir

    return cache_dir() / "trained" / names.slug(name)


def trained_mismatch(entry: ModelEntry) -> str | None:
    """How the built model's training.json differs from the entry's train block (recipe, base, seed, each given
    param), or None. Scoring a model built from other settings under this entry's name would report the wrong thing."""
    try:
        built = json.loads((trained_dir(entry) / TRAINED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{TRAINED_MARKER} is unreadable"
    return run_mismatch(entry, built)


def run_mismatch(entry: ModelEntry, built: dict, check_base: bool = True) -> str | None:
    """trained_mismatch for a training.json already read (e.g. one kept in reports/training.json); check_base also
    compares the recorded base build with the base built in this cache."""
    want = entry.train
    for key, default in (("recipe", None), ("base", None), ("seed", 0), ("hold_out", None)):
        if built.get(key) != want.get(key, default):
            return f"{key}: built {built.get(key)!r}, registry {want.get(key, default)!r}"
    params = built.get("params") or {}
    given = want.get("params") or {}
    if params.get("max_steps") and "max_steps" not in given:  # `bench train --max-steps`: a quick build
        return f"a quick build (--max-steps {params['max_steps']})"
    for key, value in sorted(given.items()):
        if params.get(key) != value:
            return f"params.{key}: built {params.get(key)!r}, registry {value!r}"
    # A model built from a trained base that has been rebuilt since (same name, new weights) is stale too.
    recorded = built.get("base_build")
    if recorded and check_base:
        marker = trained_dir_of(want["base"]) / TRAINED_MARKER
        if marker.is_file() and base_build_id(marker) != recorded:
            return f"its base '{want['base']}' was rebuilt after it"
    return None


def base_build_id(marker: Path) -> str:
    """Names one build of a trained model: the sha256 of its training.json (which holds its wall time and losses)."""
    return hashlib.sha256(marker.read_bytes()).hexdigest()[:16]
