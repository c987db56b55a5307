"""File names made from user-given names (tasks, registry entries): one rule, so no two names share a file."""

from __future__ import annotations

import hashlib
import re

MAX_LEN = 80
# Turkish letters are kept: slugging them away made 'tıp' and 'tüp' (or 'BM25 ı' and 'BM25 ü') one file.
_UNSAFE = re.compile(r"[^0-9a-zçğıöşü._-]+")


def slug(name: str) -> str:
    """A lower-case file name for `name`: letters (Turkish ones too), digits, '.', '_' and '-' kept, every other run
    of characters one '-'. A name too long for one file name is cut and given a short hash of the whole name, so
    two long names that share a beginning still get two files."""
    text = _UNSAFE.sub("-", name.replace("İ", "i").lower()).strip("-.") or "x"
    if len(text) > MAX_LEN:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
        text = f"{text[:MAX_LEN - 11].rstrip('-.')}-{digest}"
    return text


def clashes(names) -> tuple[str, str, str] | None:
    """(first name, second name, shared slug) for two different names that would write one file; else None."""
    seen: dict[str, str] = {}
    for name in names:
        s = slug(name)
        if s in seen and seen[s] != name:
            return seen[s], name, s
        seen.setdefault(s, name)
    return None
