"""Inverse-cloze pairs (Lee et al. 2019, ORQA): a sentence of a passage stands in for a question about it.

Label-free training pairs from the documents to be searched: a user adapts a model to their own corpus before
anyone has asked it anything. The sentence is removed from the passage it queries (unless `keep` draws otherwise, as
in the paper, or nothing else would be left), so matching it means matching the rest of the passage, not copying."""

from __future__ import annotations

import random
import re
from bench.data.retrieval import passage_text

_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+|•")


def sentences(text: str, min_words: int = 5) -> list[str]:
    """The text's sentences, bullet items and lines of at least `min_words` words (shorter ones say too little)."""
    return [s.strip() for s in _SPLIT.split(text) if len(s.split()) >= min_words]


def pairs(passages: list[tuple[str, str]], per_passage: int, keep: float, seed: int,
          min_words: int = 5) -> list[tuple[str, str]]:
    """(sentence, "title\\npassage") pairs, up to `per_passage` sentences of each (title, text), drawn with `seed`;
    the passage side is written as the evaluation encodes a titled passage."""
    rng = random.Random(seed)
    out = []
    for title, text in passages:
        found = sentences(text, min_words)
        for s in rng.sample(found, min(per_passage, len(found))):
            rest = text.replace(s, " ")
            if rng.random() < keep or not rest.split():
                rest = text
            out.append((s, passage_text(title, rest)))
    return out
