"""ONNX variants of a sentence-transformers bi-encoder: export, graph fusion, int8 quantization, inference.

The exported graph holds the transformer and the pooling, so onnxruntime returns the sentence embedding directly;
`Dense.encode` normalises it exactly as it does the torch model's output.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from bench import threads as bench_threads
from bench.errors import BenchError

FILES = {"onnx-fp32": "model-fp32.onnx", "onnx-opt": "model-opt.onnx", "onnx-int8": "model-int8.onnx",
         "onnx-int8-full": "model-int8-full.onnx"}
OPSET = 17


def _pooling_mode(st_model) -> str:
    for module in st_model:
        if type(module).__name__ == "Pooling":
            mode = module.pooling_mode if isinstance(module.pooling_mode, str) else "+".join(module.pooling_mode)
            if mode not in ("mean", "cls"):
                raise BenchError(f"ONNX export supports mean or cls pooling, this model uses '{mode}'")
            return mode
    raise BenchError("ONNX export needs a sentence-transformers Pooling module; none found")


def export_fp32(st_model, out: Path) -> Path:
    import torch

    transformer = st_model[0]
    hf = transformer.auto_model
    mode = _pooling_mode(st_model)
    # SDPA mask shortcuts are data-dependent Python branches; tracing them bakes one input's shape into the graph.
    hf.set_attn_implementation("eager")
    hf.eval()

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hf = hf

        def forward(self, input_ids, attention_mask):
            h = self.hf(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if mode == "cls":
                return h[:, 0]
            w = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * w).sum(1) / w.sum(1).clamp(min=1e-9)

    tok = transformer.tokenizer
    # A padded dummy batch, so no "mask is all ones" shortcut is taken while tracing.
    enc = tok(["bir iki üç dört beş altı yedi", "kısa"], padding=True, return_tensors="pt")
    tmp = out.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            Embed().eval(), (enc["input_ids"], enc["attention_mask"]), str(tmp),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
    tmp.replace(out)
    return out


def optimize(src: Path, out: Path, config) -> Path:
    """onnxruntime's transformer optimizer: fused attention, LayerNorm and GELU kernels."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size, opt_level=1, use_gpu=False)
    tmp = out.with_suffix(".tmp.onnx")
    model.save_model_to_file(str(tmp))
    tmp.replace(out)
    return out


def ffn_output_matmuls(path: Path, first_fraction: float = 0.5) -> list[str]:
    """Feed-forward output projections (GELU activations in) of the first layers of a BERT graph."""
    import onnx

    layers = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        m = re.search(r"layer\.(\d+)/output/dense/MatMul$", node.name)
        if node.op_type == "MatMul" and m:
            layers[int(m.group(1))] = node.name
    cut = int(len(layers) * first_fraction)
    return [name for i, name in sorted(layers.items()) if i < cut]


def quantize_int8(src: Path, out: Path, keep_fp32: list[str] = ()) -> Path:
    """Dynamic quantization: int8 weights (per output channel), uint8 activations scaled per batch.

    reduce_range keeps weights to 7 bits: without AVX-512 VNNI, x86 multiplies u8 x s8 pairs into saturating
    16-bit sums (vpmaddubsw), and full-range weights overflow them. `keep_fp32` names MatMuls left in float.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_suffix(".tmp.onnx")
    # Fused com.microsoft ops defeat ONNX shape inference; their tensors are float32.
    quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     nodes_to_exclude=list(keep_fp32), extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    tmp.replace(out)
    return out


def build(st_model, variant: str, folder: Path) -> Path:
    """The ONNX file for `variant`, built once into `folder` (a cache directory keyed by the model)."""
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / FILES["onnx-fp32"]
    if not fp32.exists():
        export_fp32(st_model, fp32)
    if variant == "onnx-fp32":
        return fp32
    opt = folder / FILES["onnx-opt"]
    if not opt.exists():
        optimize(fp32, opt, st_model[0].auto_model.config)
    if variant == "onnx-opt":
        return opt
    target = folder / FILES[variant]
    if not target.exists():
        # Measured on multilingual-e5-small: quantizing every MatMul (onnx-int8-full) cost 0.012-0.020 nDCG@10 on
        # tr_mini_wiki; keeping the first half of the layers' feed-forward outputs in float brought it back to 0.001.
        quantize_int8(opt, target, keep_fp32=ffn_output_matmuls(opt) if variant == "onnx-int8" else ())
    return target


def cache_folder(root: Path, fingerprint: str) -> Path:
    return root / "onnx" / hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:16]


class OnnxEmbedder:
    def __init__(self, path: Path, tokenizer, max_seq_length: int, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or bench_threads.count()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.path = path

    def __call__(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
        feeds = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
        return self.session.run(None, feeds)[0]

