"""ONNX variants must give the torch model's embeddings, whatever the batch size and text length."""

import numpy as np
import pytest

from bench.models import encoders, registry

pytestmark = pytest.mark.slow  # real-model conversion, exports or training: `pytest -m 'not slow'` skips them

TEXTS = [
    "Kısa.",
    "Bir futbol maçı ne kadar sürer?",
    "Van Gölü Türkiye'nin en büyük gölüdür ve suyu sodalı olduğu için tuzludur; kıyısında Ahlat vardır. " * 3,
    "Aşı",
    "Şeker hastalığında pankreas yeterli insülin üretemez ve kan şekeri yükselir, bu da birçok organa zarar verir.",
]


def _entry(tiny_registry):
    return next(e for e in registry.load_registry(tiny_registry) if e.name == "tiny")


@pytest.mark.parametrize("variant, min_cos", [("onnx-fp32", 0.99999), ("onnx-opt", 0.9999), ("onnx-int8", 0.95),
                                             ("onnx-int8-full", 0.95)])
def test_onnx_variant_matches_torch(tiny_registry, variant, min_cos):
    entry = _entry(tiny_registry)
    torch_c = encoders.load(entry, "torch-fp32")
    onnx_c = encoders.load(entry, variant)
    assert onnx_c.variant == variant and onnx_c.params == torch_c.params
    for batch in ([TEXTS[0]], TEXTS[:2], TEXTS):  # shapes other than the ones traced at export
        ref = torch_c.embed(torch_c.prepare(batch, "passage"), "passage")
        got = onnx_c.embed(onnx_c.prepare(batch, "passage"), "passage")
        ref /= np.linalg.norm(ref, axis=1, keepdims=True)
        got /= np.linalg.norm(got, axis=1, keepdims=True)
        assert (ref * got).sum(1).min() >= min_cos


def test_int8_file_is_smaller(tiny_registry):
    entry = _entry(tiny_registry)
    assert encoders.load(entry, "onnx-int8").disk_bytes < encoders.load(entry, "onnx-fp32").disk_bytes


def test_export_happens_once(tiny_registry):
    entry = _entry(tiny_registry)
    assert not encoders.built(entry, "onnx-int8")
    encoders.load(entry, "onnx-int8")
    assert encoders.built(entry, "onnx-int8")


def test_int8_keeps_early_feed_forward_outputs_in_float(tiny_registry):
    import onnx

    from bench.models import onnx_runtime
    from bench.paths import cache_dir

    entry = _entry(tiny_registry)
    encoders.load(entry, "onnx-int8")
    encoders.load(entry, "onnx-int8-full")
    folder = next((cache_dir() / "onnx").iterdir())
    kept = onnx_runtime.ffn_output_matmuls(folder / "model-opt.onnx")
    assert kept == ["/hf/encoder/layer.0/output/dense/MatMul"]  # 2 layers: the first one's stays float

    def float_matmuls(name):
        graph = onnx.load(str(folder / name), load_external_data=False).graph
        return {n.name for n in graph.node if n.op_type == "MatMul"}

    assert kept[0] in float_matmuls("model-int8.onnx")
    assert kept[0] not in float_matmuls("model-int8-full.onnx")
