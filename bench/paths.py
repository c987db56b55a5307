"""Where generated artefacts live: converted models and embedding caches go outside the repo."""

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bench"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
