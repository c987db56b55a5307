"""A built model goes into place whole or not at all: written into a temporary sibling folder, training.json (the
marker the registry trusts) written last, then renamed over any older build."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from bench.models import registry


@contextmanager
def staged(final: Path):
    """A temporary sibling of `final` to write a model into (publish() renames it into place); removed on any
    failure, as are those an interrupted build left."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, final: Path, record: dict) -> None:
    """training.json last (the marker the registry trusts), then the folder renamed over any older build."""
    (tmp / registry.TRAINED_MARKER).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
