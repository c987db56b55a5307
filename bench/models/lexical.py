"""BM25 with Turkish Snowball stemming (bm25s + PyStemmer): the lexical baseline every dense model must beat."""

from __future__ import annotations

import logging
import re

import numpy as np

from bench.data.convert import turkish_lower

# Function words that carry no topic; Snowball has no Turkish stop list and bm25s none for Turkish.
TURKISH_STOPWORDS = frozenset(
    """acaba ama ancak aslında az bazı belki biri birkaç birşey biz bu çok çünkü da daha de defa diye eğer en gibi
    hem hep hepsi her hiç için ile ise kez ki kim mı mi mu mü nasıl ne neden nerde nerede nereye niçin niye o
    sanki şey siz şu tüm ve veya ya yani bir olan olarak olan olup gibi kadar sonra önce""".split()
)
_TOKEN = re.compile(r"\w\w+", re.UNICODE)


def _bm25s():
    import bm25s

    # bm25s sets its own logger to DEBUG on import; its index messages would cut through the progress bars.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class BM25:
    kind = "lexical"

    def __init__(self, k1: float = 1.5, b: float = 0.75, method: str = "lucene",
                 stemmer: str | None = "turkish", stopwords: bool = True):
        import Stemmer

        self.k1, self.b, self.method = k1, b, method
        self.stemmer = Stemmer.Stemmer(stemmer) if stemmer else None
        self.stopwords = TURKISH_STOPWORDS if stopwords else frozenset()
        # Each distinct word is stemmed once (None: a stopword): Snowball per token was most of an index's build
        # time at 10^6 passages, which repeat the same few hundred thousand words.
        self._stems: dict[str, str | None] = {}

    def _stem(self, token: str) -> str | None:
        stem = None if token in self.stopwords else self.stemmer.stemWord(token) if self.stemmer else token
        self._stems[token] = stem
        return stem

    def tokenize(self, text: str) -> list[str]:
        tokens = _TOKEN.findall(turkish_lower(text))
        stems = self._stems
        try:
            out = [stems[t] for t in tokens]
        except KeyError:
            out = [stems[t] if t in stems else self._stem(t) for t in tokens]
        return [s for s in out if s is not None] if None in out else out

    def index(self, docs: list[str]):
        retriever = _bm25s().BM25(k1=self.k1, b=self.b, method=self.method)
        # Token ids made here, one dict look-up per token, rather than by bm25s from lists of strings (its vocabulary
        # and conversion passes, and the strings of every passage held at once); the scores are the same bits.
        # bm25s drops empty documents from its vocabulary step; a placeholder token keeps row numbers aligned.
        vocab: dict[str, int] = {}
        ids = []
        for d in docs:
            tokens = self.tokenize(d) or ["\u2400"]
            try:
                ids.append([vocab[t] for t in tokens])
            except KeyError:
                ids.append([vocab.setdefault(t, len(vocab)) for t in tokens])
        retriever.index((ids, vocab), show_progress=False)
        return retriever

    def scores(self, queries: list[str], docs: list[str], index=None) -> np.ndarray:
        retriever = index if index is not None else self.index(docs)
        vocab = retriever.vocab_dict
        out = np.zeros((len(queries), retriever.scores["num_docs"]), dtype=np.float32)
        for i, q in enumerate(queries):
            tokens = [t for t in self.tokenize(q) if t in vocab]
            if tokens:
                out[i] = retriever.get_scores(tokens)
        return out
