"""bench.models.engine: passage vectors of any candidate, in this process (the path `bench search` and `bench scale`
share)."""

import numpy as np
import pytest

from bench.errors import BenchError
from bench.models import encoders, engine, registry

TEXTS = [f"Metin {i}: Van Gölü Türkiye'nin en büyük gölüdür ve suyu sodalıdır." * (1 + i % 3) for i in range(40)]


@pytest.fixture
def tiny_entry(tiny_registry):
    return {e.name: e for e in registry.load_registry(tiny_registry)}["tiny"]


def test_local_engine_equals_the_candidates_own_encoding(tiny_entry):
    vecs = engine.encode_passages(tiny_entry, "torch-fp32", TEXTS)
    own = encoders.load(tiny_entry, "torch-fp32").encode(TEXTS, "passage")
    assert vecs.dtype == np.float32 and vecs.shape == (len(TEXTS), 32)
    assert np.array_equal(vecs, own)


def test_lexical_entry_has_no_vectors(tiny_registry):
    bm25 = {e.name: e for e in registry.load_registry(tiny_registry)}["bm25"]
    assert engine.encode_passages(bm25, None, TEXTS[:3]).shape == (3, 0)


def test_unknown_engine_is_refused(tiny_entry):
    with pytest.raises(BenchError, match="unknown engine 'spark'"):
        engine.encode_passages(tiny_entry, "torch-fp32", TEXTS, engine="spark")


def test_unreachable_ray_address_is_one_line_error(tiny_entry):
    pytest.importorskip("ray")
    with pytest.raises(BenchError, match=r"--address 127\.0\.0\.1:9: Ray head node unreachable"):
        engine.encode_passages(tiny_entry, "torch-fp32", TEXTS, engine="ray", address="127.0.0.1:9")
    with pytest.raises(BenchError, match="expected HOST:PORT"):
        engine.encode_passages(tiny_entry, "torch-fp32", TEXTS, engine="ray", address="no-port")


def test_ray_not_installed_is_one_line_error(tiny_entry, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(BenchError, match="Ray is not installed.*--engine local"):
        engine.encode_passages(tiny_entry, "torch-fp32", TEXTS, engine="ray")
