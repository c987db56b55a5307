"""What a retrieval task is once loaded: passages, questions and their relevant passages (qrels)."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("brand", "ingredient", "complaint", "unanswerable")


def passages_of(corpus: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(ids, texts) of a corpus {id: {title, text}}, each text as the evaluation encodes it."""
    return list(corpus), [passage_text(d.get("title", ""), d["text"]) for d in corpus.values()]


def passage_text(title: str, text: str) -> str:
    """The text a model reads for a passage: its title (a medicine's name and section, an article's title), a
    newline, then its text. Evaluation, training, search and trimming all encode passages this one way."""
    return f"{title}\n{text}" if title else text


@dataclass
class RetrievalData:
    name: str
    corpus: dict[str, dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    rejects: list[dict] = field(default_factory=list)
    # Questions no passage answers (query id -> text): scored only to see whether a model can tell it has no answer.
    unanswerable: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # query id -> kind (KINDS), where the task gives them

    def doc_text(self, did: str) -> str:
        d = self.corpus[did]
        return passage_text(d.get("title", ""), d["text"])

    def sample(self, n: int, seed: int = 0) -> "RetrievalData":
        """The same task with at most n of its questions (the whole corpus): a fixed seeded draw over sorted ids, so
        every run and every entry with the same n scores the same questions, and paired tests line up."""
        import random

        qids = sorted(self.queries)
        if n >= len(qids):
            return self
        keep = set(random.Random(seed).sample(qids, n))
        no_answer = sorted(self.unanswerable)
        keep |= set(random.Random(seed).sample(no_answer, min(n, len(no_answer))))
        return RetrievalData(self.name, self.corpus, {q: t for q, t in self.queries.items() if q in keep},
                             {q: r for q, r in self.qrels.items() if q in keep}, self.rejects,
                             {q: t for q, t in self.unanswerable.items() if q in keep},
                             {q: k for q, k in self.kinds.items() if q in keep})
