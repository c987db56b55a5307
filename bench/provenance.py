"""Where a figure or a cached artefact came from: the code that computed it, the data it was computed on, the machine.

Every cache key and result record carries these, so a code change, an edited task or another CPU can never be
served a stale embedding, export, timing or leaderboard row.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

from bench.version import __version__

PACKAGE_DIR = Path(__file__).resolve().parent


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def _module_files(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    if spec.submodule_search_locations:  # a subpackage: every module in it
        return sorted(p for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.py"))
    return [Path(spec.origin)]


@lru_cache(maxsize=None)
def code_fingerprint(*modules: str) -> str:
    """The package version plus a hash of the source of `modules` (dotted names; a subpackage means all of it).

    Only the modules that shape an artefact are hashed, so editing a report template does not throw away the
    embedding cache, while editing an encoder does.
    """
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        for path in _module_files(name):
            h.update(str(path.relative_to(PACKAGE_DIR)).encode())
            h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


@lru_cache(maxsize=1)
def code_version() -> str:
    """What a result record names as its code: the git revision when the checkout is clean, else a source hash."""
    root = PACKAGE_DIR.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "bench"], capture_output=True,
                               text=True, timeout=10)
        if rev.returncode == 0 and dirty.returncode == 0 and not dirty.stdout.strip():
            return f"{__version__}+g{rev.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return code_fingerprint("bench")


def simd_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                        platform.processor() or platform.machine())
    except OSError:
        return platform.processor() or platform.machine()


def machine_fingerprint(threads: int) -> str:
    """Timings are only comparable on the same CPU, SIMD level, thread count and runtime libraries."""
    from importlib.metadata import version

    libs = ",".join(f"{p}={version(p)}" for p in ("torch", "onnxruntime", "numpy"))
    return sha256_text(cpu_name(), simd_flags(), str(os.cpu_count()), str(threads), libs, platform.python_version())[:16]


def task_fingerprint(data) -> str:
    """A hash of the task as loaded (corpus, questions, relevance): the data each figure was computed on.

    Hashing what was loaded, not only the files, also catches a converter change that keeps or drops other questions.
    """
    parts = [data.corpus, data.queries, data.qrels]
    # Only where present, so a task without them keeps the fingerprint its stored rows carry.
    if getattr(data, "unanswerable", None) or getattr(data, "kinds", None):
        parts += [data.unanswerable, data.kinds]
    canon = json.dumps(parts, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]


def task_files(spec) -> dict[str, str]:
    """sha256 of each file a task spec reads, by file name (never the expanded path: it may hold a user's secrets)."""
    path = Path(spec.data_path)
    if spec.format == "beir":
        files = [path / "corpus.jsonl", path / "queries.jsonl", path / "qrels" / f"{spec.split}.tsv"]
    elif path.is_dir():  # a folder of SQuAD files (thquad's three files)
        files = sorted(path.glob("*.json"))
    else:
        files = [path] + ([Path(spec.questions_path)] if getattr(spec, "questions", "") else [])
    return {f.name: sha256_file(f) for f in files if f.is_file()}


def machine_info(threads: int) -> dict:
    """The machine fields every record carries, cheap to compute (no benchmark)."""
    from importlib.metadata import version

    libs = ", ".join(f"{p} {version(p)}" for p in ("torch", "onnxruntime", "transformers", "sentence-transformers"))
    return {"cpu": f"{cpu_name()} ({os.cpu_count()} cores)", "simd": simd_flags(), "threads": threads,
            "libs": f"{libs}, python {platform.python_version()}"}
