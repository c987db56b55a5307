"""Speed and size of candidate variants: load time, query latency at batch 1, passage throughput at batch 32,
peak memory, achieved GFLOP/s against the machine's own measured GEMM peak (fp32, or int8 for quantized variants).

On a shared machine one timing moves 10-30% from run to run, so:
- each variant runs in its own long-lived worker process (bench/measure/timing.py), so load time and peak memory
  stay its own;
- the workers of a batch are all loaded first, then timed in interleaved rounds (A B C A B C ...): a slow spell of
  the machine hits every variant a little instead of one variant entirely;
- each figure is the median over rounds, reported with its spread (half the interquartile range of the round
  figures, in % of the median: "p50 12.3 ms ± 2%");
- the GEMM peaks that GFLOP/s are set against (bench/measure/peaks.py) are timed in the same rounds, so both see
  the same machine;
- results are cached (bench/measure/speed_cache.py) under the machine, the code, the model, the variant, the
  rounds and the timed texts, so a re-run with nothing changed measures nothing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np

from bench import threads as bench_threads
from bench.measure import speed_cache
from bench.measure.peaks import PeakTimer, peaks_key
from bench.measure.stats import spread_pct
from bench.measure.timing import entry_to_wire, proc_mb

ROUNDS = 5
MAX_WORKERS = 6  # variants alive at once; the default registry's largest use about 2 GB each
MIN_FREE_MB = 2048  # no further worker starts while less memory than this is available


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


class Worker:
    """One variant loaded in its own process; `round()` times it once on every task."""

    def __init__(self, job: Job, threads: int):
        self.job = job
        self.rounds: list[dict] = []
        self._err = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # never a full pipe
        # The worker imports this very `bench`, not whichever one the interpreter would find from its directory.
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, bench_threads.VARIABLE: str(threads), "OMP_NUM_THREADS": str(threads),
               "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.measure.timing"], stdin=subprocess.PIPE,
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


_SPEED_FIELDS = {f.name for f in fields(Speed)}


def _from_cache(value: dict) -> dict[str, Speed]:
    return {task: Speed(**{k: v for k, v in figs.items() if k in _SPEED_FIELDS}) for task, figs in value.items()}




def available_mb() -> float:
    mb = proc_mb("/proc/meminfo", "MemAvailable")
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
    keys = [speed_cache.key(job, threads, rounds) for job in jobs]
    todo = []
    for i, job in enumerate(jobs):
        hit = None if remeasure else speed_cache.read(keys[i])
        if hit is not None:
            outcomes[i] = Outcome(figures=_from_cache(hit), cached=True)
            log(f"speed: cached {job.label}")
        else:
            todo.append(i)
    peaks_at = peaks_key(threads, rounds)
    peaks = None if remeasure else speed_cache.read(peaks_at)
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
                speed_cache.write(keys[i], {t: asdict(s) for t, s in figures.items()}, jobs[i].label)
                outcomes[i] = Outcome(figures=figures)
        finally:
            for _, worker in batch:
                worker.kill()  # an interrupted run leaves no worker behind
        if peak:
            peaks, peak = peak.result(), None
            speed_cache.write(peaks_at, peaks, f"GEMM peaks at {threads} threads")
            peaks["cached"] = False
    return outcomes, {"cached": True, **peaks}


def measure(entry, variant: str, texts: dict[str, dict], threads: int, rounds: int = ROUNDS,
            remeasure: bool = False) -> dict[str, Speed]:
    """One variant on its own (no interleaving partner); raises RuntimeError when the worker fails."""
    (outcome,), _ = measure_all([Job(entry, variant, texts)], threads, rounds, remeasure, log=lambda _: None)
    if outcome.error:
        raise RuntimeError(f"speed measurement failed: {outcome.error}")
    return outcome.figures
