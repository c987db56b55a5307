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
