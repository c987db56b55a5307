import numpy as np

from bench.models import encoders, registry


def _entry(tiny_registry, name):
    return next(e for e in registry.load_registry(tiny_registry) if e.name == name)


def test_tiny_model_loads_through_user_path_and_encodes(tiny_registry):
    cand = encoders.load(_entry(tiny_registry, "tiny"))
    q = cand.encode(["Bir futbol maçı ne kadar sürer?", "Aşı nedir?"], "query")
    assert q.shape == (2, 32)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert cand.params and cand.params > 0 and cand.disk_bytes > 0


def test_prefixes_change_the_embedding(tiny_registry):
    cand = encoders.load(_entry(tiny_registry, "tiny"))
    text = ["Van Gölü tuzludur."]
    assert not np.allclose(cand.encode(text, "query"), cand.encode(text, "passage"))


def test_second_encode_is_served_from_disk_cache(tiny_registry):
    entry = _entry(tiny_registry, "tiny")
    cand = encoders.load(entry)
    calls = []
    real = cand.embed
    cand.embed = lambda texts, role: calls.append(len(texts)) or real(texts, role)
    texts = ["Diyabet nedir?", "Uyku kaç saat olmalı?", "Diyabet nedir?"]
    first = cand.encode(texts, "query")
    assert sum(calls) == 2  # the duplicate is encoded once
    again = encoders.load(entry)  # a new process would open the same cache
    again.embed = lambda texts, role: calls.append(len(texts)) or real(texts, role)
    second = again.encode(texts, "query")
    assert sum(calls) == 2
    assert np.allclose(first, second)


def test_bm25_ranks_the_paragraph_sharing_stemmed_words():
    from bench.models.lexical import BM25

    scores = BM25().scores(["İlaçları nerede saklamalıyım?"],
                           ["İlaç serin ve kuru yerde saklanmalıdır.", "Futbol doksan dakika sürer."])
    assert scores[0, 0] > 0 and scores[0, 1] == 0


def test_bm25_fast_index_scores_equal_bm25s_own_token_path_bit_for_bit():
    """The index is built from token ids with stems memoised per word; bm25s' own path (lists of stemmed tokens
    from a per-text stemmer) must score every passage the same, to the bit."""
    import Stemmer

    from bench.data.convert import turkish_lower
    from bench.models import lexical
    from bench.models.lexical import BM25

    rng = np.random.default_rng(0)
    words = ("İlaç ilaçları İLAÇLARINIZI serin kuru yerde saklanmalıdır futbol doksan dakika sürer ve bir için "
             "Ankara'nın Rize'de çay yetişir ağrı ateş tablet kullanılır günde iki kez").split()
    docs = ["", "ve bir", "x"] + [" ".join(rng.choice(words, rng.integers(1, 30))) for _ in range(300)]
    queries = ["İlaçları nerede saklamalıyım?", "çay Rize", "futbol maçı kaç dakika", "ve"]
    bm25 = BM25()
    stemmer = Stemmer.Stemmer("turkish")

    def old_tokenize(text):
        return stemmer.stemWords([t for t in lexical._TOKEN.findall(turkish_lower(text))
                                  if t not in lexical.TURKISH_STOPWORDS])

    assert [bm25.tokenize(d) for d in docs + queries] == [old_tokenize(d) for d in docs + queries]
    reference = lexical._bm25s().BM25(k1=1.5, b=0.75, method="lucene")
    reference.index([old_tokenize(d) or ["\u2400"] for d in docs], show_progress=False)
    fast = bm25.index(docs)
    assert set(fast.vocab_dict) == set(reference.vocab_dict)
    got = bm25.scores(queries, [], index=fast)
    want = bm25.scores(queries, [], index=reference)
    assert got.dtype == np.float32 and np.array_equal(got, want) and want[0].any()
