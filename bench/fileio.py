"""Reading and writing the files bench owns: JSON parsed with one-line errors, and writes that are atomic."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.errors import BenchError


def parse_json(text: str, where: str, line: int | None = None):
    """JSON from `text`; bad JSON is a one-line BenchError naming `where` (a path) and the line: `line` when `text`
    is one line of a JSONL file, else the decoder's own line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BenchError(f"{where}:{line or e.lineno}: malformed JSON: {e.msg}") from None
    except RecursionError:  # json's C parser recurses once per level: 100,000 '[' exhaust the stack
        at = f"{where}:{line}" if line else where
        raise BenchError(f"{at}: JSON nested too deeply to read; expected a flat list or object") from None


def read_json(path: Path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not UTF-8 text; expected a JSON file") from None
    return parse_json(text, str(path))


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """A unique temporary name renamed into place: a reader never sees half a file, a crash never leaves one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes the file owner-only; what bench writes is for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
