"""Speed figures are printed by `bench speed`, never asserted against a clock; here only their sanity."""

from bench.models import registry
from bench.measure import speed


def test_flop_count_of_one_bert_layer():
    # hidden 2, ffn 4, one layer, 3 tokens: 3 * (8*4 + 4*2*4) + 4*9*2 = 3*64 + 72
    assert speed.transformer_flops({"hidden": 2, "ffn": 4, "layers": 1}, 3) == 264


def test_sample_is_deterministic_and_spread():
    texts = [str(i) for i in range(10)]
    assert speed.sample(texts, 5) == ["0", "2", "4", "6", "8"]
    assert speed.sample(texts, 20) == texts


def test_measure_runs_in_a_fresh_process(tiny_registry):
    entries = {e.name: e for e in registry.load_registry(tiny_registry)}
    texts = {"tiny": {"queries": ["Aşı nedir?", "Van Gölü nerede?"] * 6, "passages": ["Aşılar korur."] * 40}}
    for name, variant in (("tiny", "onnx-int8"), ("bm25", "bm25s")):
        f = speed.measure(entries[name], variant, texts, threads=1)["tiny"]
        assert f.threads == 1 and f.load_seconds >= 0 and f.peak_rss_mb > 10
        assert 0 < f.latency_p50_ms <= f.latency_p95_ms and f.throughput_per_s > 0
        assert (f.gflops is None) == (variant == "bm25s")
