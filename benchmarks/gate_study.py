"""Variants of the recent-skill gate on the 17 shared traces, run by hand: the variants that did not make the default.

    .venv/bin/python -m benchmarks.gate_study [--data DIR] [--traces NAME ...] [--fast]

Under BENCHMARK.md's protocol, on every trace, it fits the production default's network once with the gate off
(``forecaster.gate``), and AR on the peers' window, then forecasts every test origin and the ``LEAD`` points
before the test part, one origin per step. Each variant of the gating rule is then scored from those cached
forecasts at the protocol's origins, using only what lies before each origin, exactly as the gate would. The
first rows reproduce ``python -m promcast.forecaster.evaluation.benchmark`` (the network alone, ``--gate none``, to four
decimals; the gated rows within 0.001 of its geometric mean: the study does not apply the validation verdict,
which serves naive on ``bitbrains_vm234_cpu_5m`` in the benchmark). Prints one table; asserts nothing. Needs
the traces (default: shared/data beside the clone). ``--traces`` and ``--fast`` (a tiny network, a few
epochs) make a smoke test of the code, not figures to cite.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from promcast.forecaster.evaluation.benchmark import NO_SEASON_AR_WINDOW, TRACES, default_data_dir, load_trace
from promcast.forecaster.evaluation.fitting import fit_and_forecast, plan_model
from promcast.forecaster.evaluation.peers import best_peer, peers_of
from promcast.forecaster.gate import DEFAULT_GATE, median_level
from promcast.forecaster.names import DEFAULT_MODEL, DEFAULT_WINDOW
from promcast.forecaster.protocol import Protocol, inputs_at, make_task, season_for, targets_at, window_for

H = 12
LEAD = 64  # cached origins before the test part: the farthest a variant looks back


@dataclass
class Cache:
    """z-scale forecasts (A, H) at origins ``first .. first + A - 1`` (stride 1), and the z-scaled series."""

    z: np.ndarray
    first: int
    origins: np.ndarray  # the protocol's scored origins
    net: np.ndarray  # the ensemble's forecasts
    scout: np.ndarray  # its first member's
    ar: np.ndarray

    def at(self, forecasts: np.ndarray, lag: int) -> np.ndarray:
        """(N, H): the forecasts made ``lag`` steps before each scored origin."""
        return forecasts[self.origins - lag - self.first]

    def truth(self) -> np.ndarray:
        return targets_at(self.z, self.origins, H)


def build(data: Path, name: str, fast: bool = False) -> Cache:
    reg = load_trace(data, name)
    season, window = season_for(reg.step), window_for(reg.step)
    task = make_task(reg.values, reg.start, reg.step, Protocol(), None, DEFAULT_WINDOW + LEAD)
    first = task.borders.val_end - LEAD - H
    every = np.arange(first, task.borders.n - H + 1)
    net_run = fit_and_forecast(plan_model(DEFAULT_MODEL, DEFAULT_WINDOW, season, fast, gate=None), task, {})
    f = net_run.forecaster
    x = f._scaler.transform(inputs_at(task.values, every, DEFAULT_WINDOW))  # type: ignore[union-attr]
    with torch.inference_mode():
        scout = f._model.scout(torch.as_tensor(x, dtype=torch.float32).unsqueeze(-1)).double().numpy()
    net = f.predict(inputs_at(task.values, every, DEFAULT_WINDOW))
    ar_window = NO_SEASON_AR_WINDOW if season is None else window
    ar_f = fit_and_forecast(plan_model("ar", ar_window, season), task, {}).forecaster
    ar = ar_f.predict(inputs_at(task.values, every, ar_window))
    z = task.scaler.transform(task.values)
    to_z = task.scaler.transform
    return Cache(z, first, task.origins, to_z(net), to_z(f._scaler.inverse(scout)), to_z(ar))  # type: ignore[union-attr]


Rule = Callable[[Cache], np.ndarray]  # -> (N, H) forecasts at the scored origins


def _naive(c: Cache, lag: int = 0) -> np.ndarray:
    return c.z[c.origins - lag - 1]  # (N,): the last value before origin - lag


def _guesses(c: Cache, experts: dict[str, np.ndarray | None], lags: np.ndarray) -> dict[str, np.ndarray]:
    """(K, N) one-step forecasts per expert of the scored targets origin - lag (None: naive)."""
    return {
        name: np.stack([_naive(c, lag) if fc is None else c.at(fc, lag)[:, 0] for lag in lags])
        for name, fc in experts.items()
    }


def _actual(c: Cache, lags: np.ndarray) -> np.ndarray:
    return np.stack([c.z[c.origins - lag] for lag in lags])  # (K, N)


def _errors(c: Cache, experts: dict[str, np.ndarray | None], lags: np.ndarray) -> dict[str, np.ndarray]:
    """(K, N) one-step errors per expert at the scored targets origin - lag (None: naive)."""
    return {k: np.abs(g - _actual(c, lags)) for k, g in _guesses(c, experts, lags).items()}


def _median_at(c: Cache, lag: int) -> np.ndarray:
    """(N,): the window's median (the gate's median_level) of the window that ends ``lag`` steps before each origin."""
    return median_level(inputs_at(c.z, c.origins - lag, DEFAULT_WINDOW))


# The experts that carry the margin against the one that leads (the network, or the network-and-naive mix).
HANDICAPPED = ("naive", "median")


def _mix(scores: dict[str, np.ndarray], eta: float, floor: float, margin: float) -> dict[str, np.ndarray]:
    """Exponential weights on the scores relative to the best; naive's (and the median's) carries the margin (the
    gate's rule)."""
    s = np.stack(list(scores.values()))  # (E, N)
    handicap = np.array([margin if k in HANDICAPPED else 0.0 for k in scores])[:, None]
    w = np.exp(-eta * (s / (s.min(axis=0) + floor) - 1 + handicap))
    w /= w.sum(axis=0)
    return dict(zip(scores, w, strict=True))


def gated(
    steps: int = DEFAULT_GATE.steps,
    stride: int = DEFAULT_GATE.stride,
    eta: float = DEFAULT_GATE.eta,
    margin: float = DEFAULT_GATE.margin,
    agg: str = "mean",
    decay: float = 1.0,
    extra: tuple[str, ...] = (),
    veto: tuple[int, ...] = (),
    median: bool = DEFAULT_GATE.median,
) -> Rule:
    """The gate's rule, with one thing changed: the aggregate of the errors, a recency decay, more experts (AR, the
    mean of the last 12 points), a veto (the geometric mean with a second gate on the lags in ``veto``), or
    without the window's median as the expert that the network-and-naive mix is weighed against last (``median``:
    the mix's one-step forecasts at its weights against each recent window's median, with the margin)."""
    lags = 1 + stride * np.arange(steps)

    def rule(c: Cache) -> np.ndarray:
        flat12 = np.stack([c.z[c.origins - 1 - j] for j in range(12)]).mean(axis=0)
        forecasts = {"net": c.at(c.net, 0), "naive": np.repeat(_naive(c)[:, None], H, axis=1)}
        experts: dict[str, np.ndarray | None] = {"net": c.scout, "naive": None}
        if "ar" in extra:
            forecasts["ar"], experts["ar"] = c.at(c.ar, 0), c.ar
        errors = _errors(c, experts, lags)
        if "mean12" in extra:
            past = [np.stack([c.z[c.origins - lag - 1 - j] for j in range(12)]).mean(axis=0) for lag in lags]
            errors["mean12"] = np.abs(np.stack(past) - np.stack([c.z[c.origins - lag] for lag in lags]))
            forecasts["mean12"] = np.repeat(flat12[:, None], H, axis=1)
        weights = decay ** np.arange(len(lags))[:, None]
        weights = weights / weights.sum()
        aggregate = {
            "mean": lambda e: (weights * e).sum(axis=0),
            "median": lambda e: np.median(e, axis=0),
            "rms": lambda e: np.sqrt((weights * e**2).sum(axis=0)),
        }[agg]
        w = _mix({k: aggregate(e) for k, e in errors.items()}, eta, DEFAULT_GATE.floor, margin)
        if veto:
            short = _errors(c, {"net": c.scout, "naive": None}, np.array(veto))
            ws = _mix({k: e.mean(axis=0) for k, e in short.items()}, eta, DEFAULT_GATE.floor, margin)["net"]
            w["net"] = np.sqrt(w["net"] * ws)
            w["naive"] = 1 - w["net"]
        mix = np.sum([w[k][:, None] * forecasts[k] for k in forecasts], axis=0)
        if not median:
            return mix
        guesses = _guesses(c, {"net": c.scout, "naive": None}, lags)
        if set(forecasts) != {"net", "naive"}:
            raise ValueError("the median expert follows the two-expert gate only")
        actual = _actual(c, lags)
        mixed = w["net"][None, :] * guesses["net"] + w["naive"][None, :] * guesses["naive"]
        level = np.stack([_median_at(c, int(lag)) for lag in lags])
        w2 = _mix(
            {"mix": aggregate(np.abs(mixed - actual)), "median": aggregate(np.abs(level - actual))},
            eta,
            DEFAULT_GATE.floor,
            margin,
        )
        return w2["mix"][:, None] * mix + w2["median"][:, None] * _median_at(c, 0)[:, None]

    return rule


VARIANTS: dict[str, Rule] = {
    "the network alone (no gate)": lambda c: c.at(c.net, 0),
    "the shipped gate: the last 12 steps, mean, eta 10, margin 0.5, the median expert": gated(),
    "without the median expert (the gate until 3 December)": gated(median=False),
    "margin 0 (naive takes over as soon as it scores better)": gated(margin=0.0),
    "margin 0.25": gated(margin=0.25),
    "margin 1": gated(margin=1.0),
    "margin 2": gated(margin=2.0),
    "margin 0, 12 lags 2 steps apart (the first version)": gated(stride=2, margin=0.0),
    "12 lags 2 steps apart": gated(stride=2),
    "24 lags (twice the scout's cost)": gated(steps=24),
    "6 lags 4 steps apart": gated(steps=6, stride=4),
    "eta 3 (softer)": gated(eta=3.0),
    "eta 30 (harder)": gated(eta=30.0),
    "median of the errors": gated(agg="median"),
    "root mean square of the errors": gated(agg="rms"),
    "recency decay 0.8 per lag": gated(decay=0.8),
    "AR as a third expert (no median expert)": gated(extra=("ar",), median=False),
    "the mean of the last 12 points as a third expert (no median expert)": gated(extra=("mean12",), median=False),
    "a veto from lags 1 and 2 (no median expert)": gated(veto=(1, 2), median=False),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gate_study", description=__doc__)
    p.add_argument("--data", type=Path, default=None, help="the traces (default: shared/data beside the clone)")
    p.add_argument("--traces", nargs="+", choices=TRACES, default=list(TRACES), help="default: all 17")
    p.add_argument("--fast", action="store_true", help="tiny network and few epochs (a smoke test)")
    args = p.parse_args(argv)
    data = args.data or default_data_dir()
    missing = [t for t in args.traces if not (data / f"{t}.csv").is_file()]
    if missing:
        print(f"gate_study: the shared traces are not in {data} (missing {', '.join(missing)})")
        return 2
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    caches = {t: build(data, t, args.fast) for t in args.traces}
    print(f"fitted and cached {len(caches)} traces in {time.perf_counter() - t0:.0f} s\n")
    print("| variant | geo. mean ÷ naive | below naive | below every peer | worst ÷ best peer |")
    print("|---|---|---|---|---|")
    for label, rule in VARIANTS.items():
        ratios, below, wins, worst = [], 0, 0, (0.0, "")
        for t, c in caches.items():
            mae = float(np.mean(np.abs(rule(c) - c.truth())))
            naive, (_, best) = peers_of(t)["naive"], best_peer(t)
            ratios.append(mae / naive)
            below, wins = below + (mae < naive), wins + (mae < best)
            worst = max(worst, (mae / best, t))
        geo = float(np.exp(np.mean(np.log(ratios))))
        n = len(caches)
        print(f"| {label} | {geo:.3f} | {below} of {n} | {wins} of {n} | {worst[0]:.3f} ({worst[1]}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
