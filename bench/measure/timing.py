"""Inside a speed worker: one loaded variant, timed a round at a time (bench/measure/speed.py runs the workers).

The protocol is one JSON line in, one JSON line out: the first request loads the variant and sets up a timer per
task; then "measure" times one round and "stop" reports the process's peak memory.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time

from bench.measure.flops import useful_flops
from bench.models.stages import stages

LATENCY_PER_ROUND = 40  # the same questions every round, so rounds differ only by the machine's noise
WARMUP = 10  # questions searched once after loading, untimed
ROUND_WARMUP = 2  # questions (and passages) before each round: the other workers ran in between, cooling caches
# A question through a 12-layer cross-encoder over 20 candidates takes seconds on two cores: 40 a round would make
# one pipeline's timing an hour. Fewer questions give a coarser p50 of the same quantity.
RERANK_LATENCY_PER_ROUND, RERANK_WARMUP = 5, 1
THROUGHPUT_PASSAGES = 96  # three batches of 32
BATCH = 32


def sample(texts: list[str], n: int) -> list[str]:
    """An evenly spaced, deterministic sample: the same texts every run, so runs compare."""
    if len(texts) <= n:
        return list(texts)
    step = len(texts) / n
    return [texts[int(i * step)] for i in range(n)]



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


class TaskTimer:
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


def proc_mb(path: str, key: str) -> float | None:
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
    mb = proc_mb("/proc/self/status", "VmHWM")
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


def serve(inp, out) -> int:
    """The worker's side of the protocol: one JSON line in, one JSON line out."""
    from bench.errors import one_line
    from bench.models import encoders

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        request = json.loads(inp.readline())
        candidate, load_seconds = _load(request)
        timers = {name: TaskTimer(candidate, t["queries"], t["passages"]) for name, t in request["tasks"].items()}
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


if __name__ == "__main__":
    # Library chatter on stdout would corrupt the protocol: keep stdout for it, send everything else to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.exit(serve(sys.stdin, protocol))
