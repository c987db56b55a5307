"""Can a model tell that no passage answers? Its top score per question, answerable against unanswerable.

- AUROC: the chance that an answerable question's top score is above an unanswerable one's (ties count half),
  over every question of the task: a threshold-free figure of how well the top score separates the two.
- Abstention at a threshold: the questions are split once, seeded and stratified, into a dev half and a test half.
  The threshold is chosen on dev alone, as the highest top score that still answers TARGET_ANSWERED of dev's
  answerable questions (a deployed system must keep answering what it can); the test half then gives the share of
  unanswerable questions abstained on and of answerable ones still answered. Choosing and measuring on the same
  questions would flatter every model.
"""

from __future__ import annotations

import math
import random

import numpy as np

SEED = 0
TARGET_ANSWERED = 0.9


def auroc(positive, negative) -> float | None:
    """P(score of a positive > score of a negative), ties 1/2 (the Mann-Whitney U statistic over all pairs)."""
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def threshold(answerable_scores, target: float = TARGET_ANSWERED) -> float:
    """The highest score t at which at least `target` of these answerable questions have a top score >= t."""
    ranked = sorted(answerable_scores, reverse=True)
    k = max(1, math.ceil(target * len(ranked) - 1e-9))
    return float(ranked[k - 1])


def split(answerable: list[str], unanswerable: list[str], seed: int = SEED) -> tuple[list[str], list[str]]:
    """(dev, test) question ids: each group shuffled from its sorted ids with `seed`, half of each to dev."""
    dev, test = [], []
    for ids in (sorted(answerable), sorted(unanswerable)):
        random.Random(seed).shuffle(ids)
        dev += ids[: len(ids) // 2]
        test += ids[len(ids) // 2:]
    return dev, test


def summary(top: dict[str, float], answerable: list[str], unanswerable: list[str], seed: int = SEED,
            target: float = TARGET_ANSWERED) -> dict | None:
    """The abstention figures a result record keeps (None without both kinds of question)."""
    if not answerable or not unanswerable:
        return None
    dev, test = split(answerable, unanswerable, seed)
    no_answer = set(unanswerable)
    t = threshold([top[q] for q in dev if q not in no_answer], target)
    test_ans = [top[q] for q in test if q not in no_answer]
    test_una = [top[q] for q in test if q in no_answer]
    return {
        "auroc": round(auroc([top[q] for q in answerable], [top[q] for q in unanswerable]), 5),
        "threshold": t,
        "abstained_unanswerable": round(float(np.mean([s < t for s in test_una])), 5) if test_una else None,
        "answered_answerable": round(float(np.mean([s >= t for s in test_ans])), 5) if test_ans else None,
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "n_dev": len(dev),
        "n_test": len(test),
        "seed": seed,
        "target_answered": target,
    }
