"""Which machine timed each row: rows are grouped by the speed of the machine that timed them, and a p50 is
compared only within one group."""

from __future__ import annotations

from bench.measure.results import ResultRecord
from bench.reports.cells import num

# GEMM peaks within 10% of each other: the same speed of machine. Cloud machines share a CPU label ("AMD EPYC") and
# SIMD level yet have timed 1.6x apart here; the peaks measured beside every timing are what tells them apart.
SAME_MACHINE = 1.10


def _machine_key(r: ResultRecord) -> tuple:
    return (r.cpu, r.simd, r.threads)


def same_machine(a: ResultRecord, b: ResultRecord) -> bool:
    """Whether two rows' timings compare: the same CPU label, SIMD level and threads, and GEMM peaks that agree."""
    if _machine_key(a) != _machine_key(b):
        return False
    pa, pb = a.peak_gflops or 0.0, b.peak_gflops or 0.0
    return max(pa, pb) <= SAME_MACHINE * min(pa, pb) if pa and pb else pa == pb  # an unmeasured peak: unknown


def machine_groups(ok: list[ResultRecord]) -> list[list[ResultRecord]]:
    """Timed rows grouped by the speed of the machine that timed them, slowest first."""
    groups: list[list[ResultRecord]] = []
    timed = [r for r in ok if r.latency_p50_ms is not None]
    for r in sorted(timed, key=lambda r: (str(_machine_key(r)), r.peak_gflops or 0.0)):
        if groups and same_machine(groups[-1][0], r):
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _range(values: list, digits: int) -> str:
    lo, hi = min(values, default=None), max(values, default=None)
    return num(lo, digits) if lo == hi else f"{num(lo, digits)}–{num(hi, digits)}"


def _machine_text(rows: list[ResultRecord], threads: str = "threads") -> str:
    r = rows[0]
    fp32 = _range([x.peak_gflops for x in rows if x.peak_gflops], 1)
    int8 = _range([x.peak_int8_gops for x in rows if x.peak_int8_gops], 1)
    return (f"{r.cpu}, SIMD {r.simd or 'n/a'}, {r.threads} {threads}, GEMM peaks at those threads: fp32 {fp32} GFLOP/s "
            f"(torch), int8 {int8} GOP/s (onnxruntime dynamic quantization)")


def machine_letters(ok: list[ResultRecord]) -> dict[int, str]:
    """id(row) -> the letter of its timing machine, where the rows were timed on more than one; else empty."""
    groups = machine_groups(ok)
    if len(groups) < 2:
        return {}
    return {id(r): chr(ord("A") + i) for i, rows in enumerate(groups) for r in rows}


def machine_tag(letters: dict[int, str], r: ResultRecord) -> str:
    """' (B)' after a p50 timed on machine B, where machine_letters gave the rows letters."""
    return f" ({letters[id(r)]})" if id(r) in letters else ""


def machine_line(ok: list[ResultRecord]) -> str:
    # Untimed rows still name the machine they were scored on (int8 quality can differ between CPUs).
    groups = machine_groups(ok) or [[r for r in ok if r.threads]]
    if not groups[0]:
        return ""
    r = groups[0][0]
    if not any(x.peak_gflops or x.peak_int8_gops for x in groups[0]):  # scored with --no-speed: no peaks to name
        return f"Not timed (quality only). Scored on: {r.cpu}, SIMD {r.simd or 'n/a'}, {r.threads} threads. {r.libs}."
    rounds = f"medians of {r.speed_rounds} interleaved rounds" if r.speed_rounds else "one pass"
    if len(groups) == 1:
        return f"Timings: {_machine_text(groups[0], 'threads for every runtime')}; {rounds}. {r.libs}."
    return (f"Timings come from {len(groups)} machines of different speed: "
            + "; ".join(f"{chr(ord('A') + i)}: {_machine_text(rows)}" for i, rows in enumerate(groups))
            + ". Compare p50 and passages/s only between rows of one machine (a leaderboard puts its letter after "
            "each p50; its Pareto front and latency budgets take each row's figures as measured). "
            f"{rounds[0].upper() + rounds[1:]}; {r.libs}.")
