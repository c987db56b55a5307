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

    def tokenize(self, text: str) -> list[str]:
        tokens = [t for t in _TOKEN.findall(turkish_lower(text)) if t not in self.stopwords]
        return self.stemmer.stemWords(tokens) if self.stemmer else tokens

    def index(self, docs: list[str]):
        retriever = _bm25s().BM25(k1=self.k1, b=self.b, method=self.method)
        # bm25s drops empty documents from its vocabulary step; a placeholder token keeps row numbers aligned.
        retriever.index([self.tokenize(d) or ["\u2400"] for d in docs], show_progress=False)
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
