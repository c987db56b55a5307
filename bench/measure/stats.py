"""How sure a leaderboard can be: bootstrap intervals and paired tests over the per-question nDCG@10.

Every row of a task is scored on the same questions, so rows are compared question by question (paired), which
removes the variance of question difficulty that unpaired comparisons would have to absorb.

- Interval of a row's mean: percentile bootstrap over questions. The resamples depend only on the number of
  questions and the seed, so every row of a task is resampled on the same question sets (a paired bootstrap).
- Difference between two rows: a paired randomization (sign-flip) test of the mean difference, the test Smucker,
  Allan & Carterette (CIKM 2007) found most reliable for IR evaluation; it assumes nothing about the shape of the
  score distribution, which for nDCG@10 on one-answer questions is lumpy (mostly 1, 0.63, 0.5 ... or 0).
- alpha 0.05 per comparison, no multiple-comparison correction: the report says so next to the marks.

All of it is deterministic for a fixed seed and vectorised: one matrix product per row or pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_RESAMPLES = 2000
SEED = 0
ALPHA = 0.05


@lru_cache(maxsize=4)
def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each of n questions is drawn in each bootstrap resample, as a (n_resamples, n) matrix."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    rows = np.repeat(np.arange(n_resamples), n)
    counts = np.bincount(rows * n + idx.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)
    counts = counts.astype(np.float64)
    counts.flags.writeable = False
    return counts


@lru_cache(maxsize=4)
def _signs(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Random +1/-1 per question and resample: under 'no difference' each paired difference may flip its sign."""
    signs = np.random.default_rng(seed).integers(0, 2, size=(n_resamples, n)) * 2.0 - 1.0
    signs.flags.writeable = False
    return signs


def _bootstrap_cis(v: np.ndarray, n_resamples: int, seed: int, alpha: float) -> np.ndarray:
    """Columns of v (questions x rows) -> (2, rows) percentile intervals of their means, one matrix product."""
    means = _resample_counts(v.shape[0], n_resamples, seed) @ v / v.shape[0]
    return np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=0)


def _sign_flip(d: np.ndarray, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of paired differences d (questions x pairs) -> mean differences and two-sided p-values."""
    observed = d.mean(axis=0)
    flipped = np.abs(_signs(d.shape[0], n_resamples, seed) @ d) / d.shape[0]
    # The tolerance keeps the observed arrangement (and exact ties) counted despite float summation order.
    extreme = np.count_nonzero(flipped >= np.abs(observed) - 1e-12, axis=0)
    # +1 on both sides counts the observed arrangement itself, so p is never 0 (Phipson & Smyth 2010).
    return observed, (extreme + 1) / (n_resamples + 1)


def bootstrap_ci(values, n_resamples: int = N_RESAMPLES, seed: int = SEED, alpha: float = ALPHA) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` at level 1 - alpha."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    low, high = _bootstrap_cis(v[:, None], n_resamples, seed, alpha)[:, 0]
    return float(low), float(high)


def randomization_test(a, b, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Paired sign-flip test of mean(a - b) = 0: (mean difference, two-sided p-value)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        raise ValueError("randomization_test needs at least one pair")
    diff, p = _sign_flip(d[:, None], n_resamples, seed)
    return float(diff[0]), float(p[0])


@dataclass(frozen=True)
class Paired:
    """Row a against row b over the questions both were scored on."""

    diff: float  # mean nDCG@10 of a minus b
    p_value: float | None  # None: at least one row has no per-question scores, so nothing was tested
    n: int  # questions compared

    @property
    def tested(self) -> bool:
        return self.p_value is not None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    @property
    def better(self) -> bool:
        """a is significantly better than b."""
        return self.significant and self.diff > 0

    @property
    def worse(self) -> bool:
        """a is significantly worse than b."""
        return self.significant and self.diff < 0


def compare(a: dict[str, float] | None, b: dict[str, float] | None, fallback_diff: float = 0.0) -> Paired:
    """Paired test of per-question scores keyed by question id; only ids both have are paired."""
    shared = sorted(set(a) & set(b)) if a and b else []
    if not shared:
        return Paired(fallback_diff, None, 0)
    diff, p = randomization_test([a[q] for q in shared], [b[q] for q in shared])
    return Paired(diff, p, len(shared))


def compare_many(rows: list[dict[str, float] | None], ref: dict[str, float] | None,
                 fallback_diffs: list[float]) -> list[Paired]:
    """compare(row, ref) for each row; rows scored on exactly ref's questions share one matrix product."""
    same = [i for i, r in enumerate(rows) if r and ref and r.keys() == ref.keys()]
    done = {}
    if same:
        ids = sorted(ref)
        d = np.array([[rows[i][q] for q in ids] for i in same]).T - np.array([ref[q] for q in ids])[:, None]
        diffs, ps = _sign_flip(d, N_RESAMPLES, SEED)
        done = {i: Paired(float(x), float(p), len(ids)) for i, x, p in zip(same, diffs, ps)}
    return [done[i] if i in done else compare(r, ref, f) for i, (r, f) in enumerate(zip(rows, fallback_diffs))]


def intervals(per_queries: list[dict[str, float] | None]) -> list[tuple[float, float] | None]:
    """95% bootstrap interval of each row's nDCG@10 (None without per-question scores), rows on the same
    questions in one matrix product: the same resampled question sets for all of them (a paired bootstrap)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, pq in enumerate(per_queries):
        if pq:
            groups.setdefault(tuple(sorted(pq)), []).append(i)
    out: list[tuple[float, float] | None] = [None] * len(per_queries)
    for ids, members in groups.items():
        v = np.array([[per_queries[i][q] for q in ids] for i in members], dtype=np.float64).T
        for i, (low, high) in zip(members, _bootstrap_cis(v, N_RESAMPLES, SEED, ALPHA).T):
            out[i] = (round(float(low), 5), round(float(high), 5))
    return out


def interval(per_query: dict[str, float] | None) -> tuple[float, float] | None:
    """95% bootstrap interval of one row's nDCG@10, or None for a record without per-question scores."""
    return intervals([per_query])[0]


def spread_pct(values: list[float]) -> float:
    """Half the interquartile range in % of the median: robust to one disturbed round, like the median itself."""
    med = float(np.median(values)) if values else 0.0
    if not math.isfinite(med) or med <= 0:
        return 0.0
    q1, q3 = np.percentile(values, [25, 75])
    return round(50 * float(q3 - q1) / med, 1)
