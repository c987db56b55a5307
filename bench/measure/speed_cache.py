"""The timing cache: figures keyed by the machine, the code, the libraries, the model, the variant, the rounds and
the timed texts, so a re-run with nothing changed measures nothing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from bench import fileio, provenance
from bench.models import loaders

# The code that shapes timings: a change re-measures.
SPEED_CODE = ("bench.models", "bench.measure.speed", "bench.measure.timing", "bench.measure.flops")


def model_identity(entry) -> str:
    # Notes, report labels, and which other variants an entry lists, do not shape this variant's timing.
    described = {k: v for k, v in entry.to_dict().items() if k not in ("notes", "variants", "short", "role")}
    stages = [[model_identity(s), v] for s, v in entry.stage_entries]
    return provenance.sha256_text(json.dumps(described, sort_keys=True), json.dumps(stages),
                                  loaders.LOADERS[entry.loader].call("weights", entry))


def lib_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("sentence-transformers", "transformers", "tokenizers", "bm25s"):
        try:
            out.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            pass
    return ",".join(out)


def key(job, threads: int, rounds: int) -> str:
    texts = json.dumps(job.texts, sort_keys=True, ensure_ascii=False)
    return provenance.sha256_text(provenance.machine_fingerprint(threads), provenance.code_fingerprint(*SPEED_CODE),
                                  lib_versions(), model_identity(job.entry), job.variant, str(rounds),
                                  provenance.sha256_text(texts))


def path_of(key: str) -> Path:
    from bench.paths import cache_dir

    return cache_dir() / "speed" / f"{key[:32]}.json"


def read(key: str) -> dict | None:
    path = path_of(key)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("key") != key:
            return None
        return raw["value"]
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # absent or unreadable: measure again


def write(key: str, value: dict, about: str) -> None:
    fileio.write_atomic(path_of(key), json.dumps({"key": key, "about": about, "value": value, "measured":
                        datetime.now(timezone.utc).isoformat(timespec="seconds")}, ensure_ascii=False))
