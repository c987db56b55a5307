"""Split documents into passages a retriever can rank: on sentence and paragraph ends, up to a word budget,
keeping character offsets so a quoted answer can be traced to the passage that holds it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_WORDS = 120
# A cut may fall after sentence-final punctuation, at a blank line, or before a bullet.
_BOUNDARY = re.compile(r"(?<=[.!?:;])\s+|\n\s*\n|\n(?=\s*[•\-–*]\s)")


@dataclass
class Chunk:
    id: str
    title: str
    text: str
    source: str  # file the text came from
    position: str  # where in the source: "section yanEtkileri, part 2/3", "page 4", "chars 0-812"
    start: int = 0
    end: int = 0
    meta: dict = field(default_factory=dict)


def spans(text: str, max_words: int = MAX_WORDS) -> list[tuple[int, int]]:
    """Character spans covering `text`, each at most `max_words` words unless one sentence is longer."""
    cuts = [0] + [m.end() for m in _BOUNDARY.finditer(text)] + [len(text)]
    pieces = [(a, b) for a, b in zip(cuts, cuts[1:]) if text[a:b].strip()]
    out: list[tuple[int, int]] = []
    start, words = None, 0
    for a, b in pieces:
        n = len(text[a:b].split())
        if start is not None and words + n > max_words:
            out.append((start, a))
            start, words = None, 0
        if n > max_words:  # one overlong sentence: cut it at word boundaries
            for wa, wb in _word_windows(text, a, b, max_words):
                out.append((wa, wb))
            continue
        if start is None:
            start = a
        words += n
    if start is not None:
        out.append((start, pieces[-1][1]))
    return out


def _word_windows(text: str, a: int, b: int, max_words: int):
    bounds = [m.span() for m in re.finditer(r"\S+", text[a:b])]
    for i in range(0, len(bounds), max_words):
        group = bounds[i:i + max_words]
        yield a + group[0][0], a + group[-1][1]


def fold(text: str) -> str:
    """Line-wrapped leaflet text reads as one paragraph once whitespace is folded."""
    return " ".join(text.split())


def chunk_text(doc_id: str, title: str, text: str, source: str, label: str = "", max_words: int = MAX_WORDS,
               meta: dict | None = None) -> list[Chunk]:
    parts = spans(text, max_words)
    return [Chunk(f"{doc_id}-{i}", title, fold(text[a:b]), source,
                  f"{label + ', ' if label else ''}part {i + 1}/{len(parts)}" if len(parts) > 1 else (label or "whole"),
                  a, b, dict(meta or {})) for i, (a, b) in enumerate(parts)]
