"""The thquad_train paragraph split: ~10% of paragraphs for dev, chosen by a hash of the paragraph text.

Hashing the cleaned context (not its position) keeps the split stable when files are reordered or appended to, and
every question follows its paragraph, so no paragraph is on both sides.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.data import convert
from bench.errors import BenchError

PARTS = ("train", "dev")
DEV_BUCKETS = 10  # one bucket of ten: about 10% of paragraphs


def part_of(context: str) -> str:
    digest = hashlib.sha256(convert.clean(context).encode("utf-8")).digest()
    return "dev" if int.from_bytes(digest[:8], "big") % DEV_BUCKETS == 0 else "train"


def squad_files(path: Path) -> list[Path]:
    """A SQuAD file, or every *.json in a folder (thquad_train ships as several files)."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise BenchError(f"{path}: folder has no *.json SQuAD files")
        return files
    return [path]


def pairs(path: Path, part: str) -> tuple[list, list[tuple[str, str]]]:
    """(question pairs, (title, context) paragraphs) of one side of the split."""
    if part not in PARTS:
        raise BenchError(f"paragraphs: '{part}' is not a split part (expected one of {', '.join(PARTS)})")
    all_pairs, contexts = [], []
    for f in squad_files(path):
        p, c = convert.squad_pairs(f)
        all_pairs += p
        contexts += c
    return ([p for p in all_pairs if part_of(p.context) == part],
            [(t, c) for t, c in contexts if part_of(c) == part])


def convert_split(path: Path, part: str) -> convert.Converted:
    """The task data of one side (the `paragraphs:` field of a squad task)."""
    return convert.build(*pairs(path, part))
