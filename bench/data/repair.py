"""What `bench convert` can repair in question/context data, and how sure it is of each repair.

An answer that is not a verbatim span of its context is re-aligned by the first tier that finds it:

1. exact: the answer is a span as it stands (nothing changes, nothing is recorded);
2. case: Turkish case folding (I <-> ı, İ <-> i; str.lower() would turn İ into i + a combining dot and I into i);
3. normalised: letters and digits only, so whitespace, punctuation and the apostrophe's form (’ ' ‘ `) or its
   absence ("İstanbul'da" / "istanbulda") no longer count;
4. fuzzy: the run of whole context words whose letter-and-digit form is most similar to the answer's scores at
   least the threshold (rapidfuzz ratio, an Indel similarity 0-100; FUZZY_THRESHOLD by default); a suffix after an
   apostrophe may differ ("İstanbul'a" finds "İstanbul'da"). At 90 a one-letter slip is allowed in answers of ten
   letters or more, while a short answer one letter off ("1953" for "1952", "ilik" for "ılık") is refused.

A question without a context (an orphan) is matched to the one context that holds its answer (tiers 1-3): where
several do, the question's BM25 scores decide, and the match is kept only when the best context's share of the best
two scores, s1 / (s1 + s2), reaches ORPHAN_CONFIDENCE (a context that is the only one holding the answer counts
1.0, as long as it shares a word with the question).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FUZZY_THRESHOLD = 90.0
ORPHAN_CONFIDENCE = 0.6
APOSTROPHES = "'’‘`´ʼ"


@dataclass
class Options:
    fuzzy_threshold: float = FUZZY_THRESHOLD
    orphan_confidence: float = ORPHAN_CONFIDENCE
    # Anything with .scores(queries, docs) -> matrix (the CLI passes BM25); without one, orphans are rejected.
    ranker: object = None


@dataclass
class Alignment:
    tier: str  # exact | case | normalised | fuzzy (a question kept on its context alone: tier 'context')
    after: str  # the span of the context the answer now points at
    score: float  # 100 for tiers 1-3; the rapidfuzz score for fuzzy


def _fold(ch: str) -> str:
    """One character in Turkish lower case; a character whose lower case is longer stays itself, so positions keep."""
    if ch == "I":
        return "ı"
    if ch == "İ":
        return "i"
    low = ch.lower()
    return low if len(low) == 1 else ch


def _keyed(text: str, letters_only: bool) -> tuple[str, list[int]]:
    """The folded text (only letters and digits when `letters_only`) and each kept character's original position."""
    out, where = [], []
    for i, ch in enumerate(text):
        if letters_only and not ch.isalnum():
            continue
        out.append(_fold(ch))
        where.append(i)
    return "".join(out), where


def align(answer: str, context: str, fuzzy_threshold: float | None = FUZZY_THRESHOLD) -> Alignment | None:
    """The first tier that finds `answer` in `context` (fuzzy_threshold None: tiers 1-3 only), or None."""
    if not answer.strip():
        return None
    if answer in context:
        return Alignment("exact", answer, 100.0)
    for tier, letters_only in (("case", False), ("normalised", True)):
        key_a = _keyed(answer, letters_only)[0]
        key_c, where = _keyed(context, letters_only)
        at = key_c.find(key_a) if key_a else -1
        if at >= 0:
            return Alignment(tier, context[where[at]: where[at + len(key_a) - 1] + 1], 100.0)
    if fuzzy_threshold is None:
        return None
    return _fuzzy(answer, context, fuzzy_threshold)


_WORD = re.compile(r"\w+(?:[" + APOSTROPHES + r"]\w+)*")


def _fuzzy(answer: str, context: str, threshold: float) -> Alignment | None:
    """The run of whole context words most similar to the answer (rapidfuzz ratio of the letter-and-digit forms).

    Runs of the answer's word count, one fewer or one more; the last word of a run is also tried without its suffix
    after an apostrophe, so "Oğulları" is compared with "Oğulları'dır" as "oğulları". A window of the answer's
    length cut anywhere in the context (rapidfuzz's partial_ratio) would compare "istanbula" with "istanbuld".
    """
    from rapidfuzz import fuzz

    key_a = _keyed(answer, True)[0]
    words = [(m.start(), m.end(), _keyed(m.group(), True)[0],
              _keyed(re.split("[" + APOSTROPHES + "]", m.group())[0], True)[0]) for m in _WORD.finditer(context)]
    n = max(1, len(_WORD.findall(answer)))
    best = None
    for size in sorted({max(1, n - 1), n, n + 1}):
        for i in range(len(words) - size + 1):
            run = words[i: i + size]
            head = "".join(w[2] for w in run[:-1])
            for last in {run[-1][2], run[-1][3]}:
                score = fuzz.ratio(key_a, head + last, score_cutoff=threshold)
                if score and (best is None or score > best[0]):
                    best = (score, run[0][0], run[-1][1])
    if best is None or not key_a:
        return None
    return Alignment("fuzzy", context[best[1]: best[2]], round(best[0], 2))


def check_threshold(value: float, flag: str = "--fuzzy-threshold") -> float:
    from bench.errors import BenchError

    if not 0 < value <= 100:
        raise BenchError(f"{flag}: expected a rapidfuzz similarity above 0 and at most 100, got {value:g}")
    return value


def match_orphans(orphans: list[tuple[str, list[str]]], docs: list[str], options: Options) -> list[tuple]:
    """For each (question, answers): (doc index or None, confidence, why-not). BM25 over every context at once."""
    out = []
    scores = options.ranker.scores([q for q, _ in orphans], docs) if orphans and docs else None
    for n, (question, answers) in enumerate(orphans):
        holding = [i for i, d in enumerate(docs) if any(align(a, d, None) for a in answers if a.strip())]
        if not holding:
            out.append((None, 0.0, "orphan_answer_in_no_context"))
            continue
        ranked = sorted((float(scores[n][i]) for i in holding), reverse=True)
        best = max(holding, key=lambda i: (float(scores[n][i]), -i))
        s1, s2 = ranked[0], (ranked[1] if len(ranked) > 1 else 0.0)
        confidence = round(s1 / (s1 + s2), 4) if s1 > 0 else 0.0
        if confidence < options.orphan_confidence:
            out.append((None, confidence, "orphan_low_confidence"))
        else:
            out.append((best, confidence, None))
    return out


def vouch(questions: list[str], given: list[int], docs: list[str], options: Options) -> list[float | None]:
    """For a question whose answer aligns nowhere in its given context (a paraphrase, not a span): the confidence
    with which BM25 over every context ranks the given one first (s1 / (s1 + s2), as for orphans), or None where
    another context scores higher or the margin is under the stated confidence: then the pairing is in doubt."""
    if not questions or options.ranker is None:
        return [None] * len(questions)
    scores = options.ranker.scores(questions, docs)
    out = []
    for n, at in enumerate(given):
        row = [float(x) for x in scores[n]]
        s1 = row[at]
        s2 = max((x for i, x in enumerate(row) if i != at), default=0.0)
        confidence = round(s1 / (s1 + s2), 4) if s1 > 0 else 0.0
        out.append(confidence if s1 > s2 and confidence >= options.orphan_confidence else None)
    return out
