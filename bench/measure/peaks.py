"""The machine's fp32 and int8 GEMM peaks, which a variant's achieved GFLOP/s is a fraction of."""

from __future__ import annotations

import logging
import tempfile
import time

import numpy as np

from bench import provenance
from bench.measure.stats import spread_pct

PEAK_N = 1536  # GEMM size of the peak: the hidden x FFN scale of the base-size encoders
PEAK_REPS = 3  # multiplies per round; the fastest counts (a peak is the least disturbed figure)


class _Gemm:
    """fp32: torch.mm. int8: onnxruntime's dynamic quantization of one MatMul, quantized with the same options
    as the int8 variants (fused to DynamicQuantizeMatMul), so the int8 rows are set against what they run."""

    def __init__(self, threads: int, n: int):
        import torch

        torch.set_num_threads(threads)
        rng = np.random.default_rng(0)
        self.a = torch.from_numpy(rng.standard_normal((n, n), dtype=np.float32))
        self.b = torch.from_numpy(rng.standard_normal((n, n), dtype=np.float32))
        self.feed = {"a": self.a.numpy()}
        self.session = self._int8_session(threads, n, rng.standard_normal((n, n), dtype=np.float32))
        self.ops = 2 * n ** 3
        self.fp32(), self.int8()  # warm-up

    @staticmethod
    def _int8_session(threads: int, n: int, w: np.ndarray):
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graph = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"])], "gemm",
                                  [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
                                  [numpy_helper.from_array(w, "w")])
        with tempfile.TemporaryDirectory() as d:
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), f"{d}/fp32.onnx")
            quiet = logging.getLogger().level
            logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice is for CNNs
            try:
                quantize_dynamic(f"{d}/fp32.onnx", f"{d}/int8.onnx", weight_type=QuantType.QInt8, per_channel=True,
                                 reduce_range=True)
            finally:
                logging.getLogger().setLevel(quiet)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            return ort.InferenceSession(f"{d}/int8.onnx", opts, providers=["CPUExecutionProvider"])

    def fp32(self) -> float:
        import torch

        start = time.perf_counter()
        torch.mm(self.a, self.b)
        return time.perf_counter() - start

    def int8(self) -> float:
        start = time.perf_counter()
        self.session.run(None, self.feed)
        return time.perf_counter() - start


class PeakTimer:
    """The machine's fp32 and int8 GEMM peaks, timed in the same rounds as the variants, so a variant's share of
    the peak is a ratio of figures taken under the same conditions. Per round the fastest of a few multiplies
    (a peak is the least disturbed figure), then the median over rounds."""

    def __init__(self, threads: int):
        self.gemm = _Gemm(threads, PEAK_N)
        self.per_round = {"fp32": [], "int8": []}

    def round(self) -> None:
        for kind, figures in self.per_round.items():
            figures.append(self.gemm.ops / min(getattr(self.gemm, kind)() for _ in range(PEAK_REPS)) / 1e9)

    def result(self) -> dict:
        fp32, int8 = self.per_round["fp32"], self.per_round["int8"]
        return {"peak_gflops": round(float(np.median(fp32)), 1), "peak_int8_gops": round(float(np.median(int8)), 1),
                "peak_spread_pct": spread_pct(fp32), "peak_int8_spread_pct": spread_pct(int8)}


def peaks_key(threads: int, rounds: int) -> str:
    return provenance.sha256_text("peaks", provenance.machine_fingerprint(threads),
                                  provenance.code_fingerprint("bench.measure.peaks"), str(PEAK_N), str(rounds))


def machine(threads: int, peaks: dict) -> dict:
    """The machine the timings come from (as every record names it), with the GEMM peaks `measure_all` returned."""
    return {**provenance.machine_info(threads), "peak_gflops": peaks["peak_gflops"],
            "peak_int8_gops": peaks["peak_int8_gops"], "peaks_cached": peaks["cached"]}
