"""The verdict, given once after fitting (``judge``): a gated model that lost to naive on its own validation
windows, overall and in most of their quarters, serves naive (``serves`` in meta.json) until a retrain brings one
that wins. Most quarters, not the mean, so that one flat stretch cannot decline a good model
(docs/how-it-works/fallbacks.md says why).

The tie helpers (``below``, ``at_most``) compare two MAEs one way for the verdict, the promotion and the benchmark.
"""

from __future__ import annotations

import numpy as np

from .gate import MODEL, NAIVE
from .intervals import MIN_WINDOWS

__all__ = ["QUARTERS", "TIE", "at_most", "below", "judge"]

QUARTERS = 4  # consecutive parts of the validation windows; the model must lose to naive in most to be declined


def judge(model_errors: np.ndarray, naive_errors: np.ndarray, floor: float) -> str:
    """What a gated model serves after fitting: NAIVE where its MAE on the validation windows is above naive's, and
    above naive's in more than half of their quarters, with naive's MAE above ``floor`` in every quarter; else MODEL
    (ties, fewer windows than the interval calibration needs, and flat stretches keep the model). ``model_errors``
    and ``naive_errors``: (N,) mean absolute errors of each validation window, in time order, on the z-scale of the
    training data; ``floor``: the gate's."""
    model, naive = np.asarray(model_errors, dtype=float), np.asarray(naive_errors, dtype=float)
    if len(model) < MIN_WINDOWS or not model.mean() > naive.mean():
        return MODEL
    parts = list(zip(np.array_split(model, QUARTERS), np.array_split(naive, QUARTERS), strict=True))
    if not all(n.mean() > floor for _, n in parts):
        return MODEL
    return NAIVE if 2 * sum(m.mean() > n.mean() for m, n in parts) > QUARTERS else MODEL


# Two MAEs this close are one forecast computed apart: a model that serves naive (``judge``) scores naive's MAE up
# to float32 rounding (a few parts in 10^8), and ties naive; it neither beats it nor loses to it.
TIE = 1e-6


def below(ours: float, other: float) -> bool:
    """``ours`` beats ``other`` by more than a tie."""
    return ours < other * (1.0 - TIE)


def at_most(ours: float, other: float) -> bool:
    """``ours`` is no worse than ``other`` beyond a tie."""
    return ours <= other * (1.0 + TIE)
