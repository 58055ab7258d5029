"""Train the pretrained global model that ships in ``forecaster/pretrained/``:

    python -m promcast.forecaster.pretrain --data ../shared/data --corpus ../shared/corpus \
        --out forecaster/pretrained [--seed 0]

``--no-corpus`` in place of ``--corpus DIR`` trains the recipe without the corpus, for comparison.
``--hidden N`` sets the network's hidden units (default: as many as keep it no larger than the default model).

The network is the production default's (``mlp``: window 288, horizon 12, 3 members, the default gate) with
reversible instance normalisation (``norm="meanstd"``) in place of subtracting the last value, so that it is
scale-free: it forecasts a series of any level or unit. It also reads a seasonal feature (``MLPConfig.periods``:
the seasonal-naive forecast of calendar periods, ``PERIODS``, weighted by their autocorrelation in the window), and
pays for those inputs with hidden units (``matched_hidden``: 120 instead of 128), so that it is no larger than the
default. It learns from windows of

- the first 80 % of every trace of ``../shared/data`` but ETTh1, whose licence forbids derivatives (train +
  validation under ../shared/BENCHMARK.md's protocol: the first 70 % trains, the next 10 % stops the training early
  and calibrates the intervals), so that every trace's test part stays unseen;
- the real workload series of the corpus folder (``--corpus``; ``forecaster.corpus``): each split at its NaN
  runs into finite segments, its sources balanced by family so that Bitbrains does not swamp the rest;
- synthetic series of ``forecaster.synthetic`` (diurnal, bursty, drained, drifting, on/off) at 1 minute, 5
  minutes, 30 minutes and 1 hour (the first 87.5 % trains, the rest validates);
- 200 ``mixed`` synthetic series, a random composition of cycles, trend, noise, shifts, spikes and gating for
  each seed, at steps from 30 seconds to 1 hour (the first 80 % trains), fewer windows from each: they teach
  shapes, and held-out traces forecast better with them (``benchmarks.pretrained_unseen``);
- 100 mixups (TSMixup, after Chronos): weighted sums of 2 or 3 segments cut from the training rows of the traces
  above, so that real shapes appear in combinations no single trace has.

Each series is z-scaled by the statistics of its own training part, so that every series weighs alike in the loss;
at most ``MAX_WINDOWS`` windows are drawn from each (``TRACE_WINDOWS`` from a trace beside the corpus), evenly
spaced. ``corpus.json`` lists each series and the
exact rows used; ``MODEL_CARD.md`` says what it is, how it was made and the weights' checksum.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .artifact import WEIGHTS_FILE, write_atomic
from .catalog import MLPConfig
from .corpus import Part, load_corpus, missing
from .forwards import seasonal_width
from .model_card import card
from .names import DEFAULT_HORIZON, DEFAULT_WINDOW
from .protocol import Borders, Protocol
from .synthetic import make_workload

__all__ = [
    "EXCLUDED",
    "MAX_WINDOWS",
    "MIXED",
    "MIXUPS",
    "PERIODS",
    "SYNTHETIC",
    "build_corpus",
    "main",
    "matched_hidden",
    "pretrain",
]

MAX_WINDOWS = 4000  # per series, evenly spaced
TRACE_WINDOWS = 8000  # per benchmark trace: the traces keep their share beside the corpus's windows
EPOCHS = 150  # at most; early stopping on the validation windows decides
# Traces left out of the corpus, and why (the traces folder's README gives each licence).
EXCLUDED = {"ETTh1": "CC BY-ND 4.0: no derivatives, so weights trained on it could not ship"}
SYNTHETIC_POINTS = 6000
SYNTHETIC = [
    (kind, step)
    for kind in ("diurnal", "bursty", "collapse", "drift", "onoff")
    for step in ("1min", "5min", "30min", "1h")
]
# MIXED mixed series (the i-th at step MIXED_STEPS[i % 5], seed seed + 1000 + i) of MIXED_POINTS points, at most
# MIXED_WINDOWS training windows and a quarter as many validation windows from each.
MIXED = 200
MIXED_STEPS = ("30s", "1min", "5min", "30min", "1h")
MIXED_POINTS = 2400
MIXED_WINDOWS = 400
# TSMixup (Chronos): MIXUPS series, each a convex combination (Dirichlet weights) of 2 or 3 segments of
# MIXUP_POINTS points cut at random from the training rows of the corpus's traces, each z-scaled by its own trace.
MIXUPS = 100
MIXUP_POINTS = 2400
# The mlp's candidate seasons (``MLPConfig.periods``), in steps: calendar periods at the common scrape steps, chosen
# from the calendar before any run (an hour at 5 minutes, 1 minute and 30 seconds: 12, 60, 120; a day at 1 hour,
# 30, 15 and 10 minutes: 24, 48, 96, 144; a week at 1 hour: 168). A day at 5 minutes is the window itself.
PERIODS = (12, 24, 48, 60, 96, 120, 144, 168)


def matched_hidden(periods: Sequence[int], window: int = DEFAULT_WINDOW, horizon: int = DEFAULT_HORIZON) -> int:
    """The widest hidden layer that keeps the mlp with these seasonal inputs no larger than the production default
    (the default's size or smaller): the extra inputs are paid for with hidden units."""
    default = MLPConfig()

    def size(hidden: int, fan_in: int) -> int:
        return default.members * (fan_in * hidden + hidden + hidden * horizon + horizon)

    limit = size(default.hidden, window)
    fan_in = window + seasonal_width(periods, horizon)
    return max(h for h in range(1, default.hidden + 1) if size(h, fan_in) <= limit)


def _windows(z: np.ndarray, length: int, horizon: int, start: int, end: int, cap: int) -> tuple[np.ndarray, ...]:
    """At most ``cap`` windows of ``length`` inputs whose targets lie in [start, end), evenly spaced."""
    first = np.arange(max(start, length), end - horizon + 1)  # the first target of each window
    if len(first) == 0:
        return np.empty((0, length)), np.empty((0, horizon))
    if len(first) > cap:
        first = first[np.linspace(0, len(first) - 1, cap).round().astype(int)]
    x = z[first[:, None] - length + np.arange(length)[None, :]]
    y = z[first[:, None] + np.arange(horizon)[None, :]]
    return x, y


def _zscore(values: np.ndarray, train_end: int) -> np.ndarray:
    """``values`` z-scaled by the mean and spread of its first ``train_end`` rows: every series weighs alike."""
    train = values[:train_end]
    return (values - train.mean()) / max(float(train.std()), 1e-8)


def _synthetic(
    name: str, kind: str, points: int, step: str, seed: int, train_share: float, windows: int
) -> tuple[Part, np.ndarray]:
    """One synthetic series of the corpus: its first ``train_share`` trains, the rest validates."""
    values = make_workload(kind, points, step, seed=seed).to_numpy(dtype=np.float64)
    source = f"promcast.forecaster.synthetic.make_workload({kind!r}, {points}, {step!r}, seed={seed})"
    n = len(values)
    return Part(name, source, pd.Timedelta(step).total_seconds(), n, n, int(n * train_share), windows), values


def _mixups(real: list[tuple[str, np.ndarray]], seed: int, count: int) -> list[tuple[Part, np.ndarray]]:
    """``count`` TSMixup series from the traces' z-scaled training rows; each part's source names its segments
    (trace, first and last row) and their weights. No row past a trace's training part is ever used, and a mixup
    gives training windows only."""
    rng = np.random.default_rng(seed + 77)
    long = [(name, z) for name, z in real if len(z) >= MIXUP_POINTS]
    out: list[tuple[Part, np.ndarray]] = []
    for j in range(count if long else 0):
        k = int(rng.integers(2, 4))
        pick = rng.choice(len(long), size=min(k, len(long)), replace=False)
        weights = rng.dirichlet(np.ones(len(pick)))
        values, terms = np.zeros(MIXUP_POINTS), []
        for w, i in zip(weights, pick, strict=True):
            name, z = long[i]
            start = int(rng.integers(0, len(z) - MIXUP_POINTS + 1))
            values += w * z[start : start + MIXUP_POINTS]
            terms.append(f"{w:.3f} x {name}[{start}..{start + MIXUP_POINTS - 1}]")
        # Training windows only: a validation window cut from a mix of training rows would be training data in
        # the early stopping and the interval calibration.
        n = MIXUP_POINTS
        out.append((Part(f"mixup_{j}", " + ".join(terms), 0.0, n, n, n, MIXED_WINDOWS), values))
    return out


def build_corpus(
    data: Path | None,
    input_length: int,
    window: int,
    horizon: int,
    seed: int,
    traces: Sequence[str] | None = None,
    mixed: int = MIXED,
    mixups: int = MIXUPS,
    corpus: Path | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[Part]]:
    """Train windows (``window`` points), validation windows (``input_length`` points), and the parts. ``traces``:
    the traces of ``data`` to use (default: all but ``EXCLUDED``); ``mixed`` and ``mixups``: how many of each
    (``benchmarks/pretrained_unseen.py`` tries other counts); ``corpus``: a folder of ``forecaster.corpus``'s
    files (None: none)."""
    series: list[tuple[Part, np.ndarray]] = []
    real: list[tuple[str, np.ndarray]] = []  # each trace's training rows, z-scaled: what the mixups are cut from
    if data is not None:
        from .evaluation.benchmark import TRACES, load_trace

        for name in traces if traces is not None else [t for t in TRACES if t not in EXCLUDED]:
            reg = load_trace(data, name)
            b = Borders.from_fractions(len(reg.values), Protocol())
            part = Part(
                name,
                f"../shared/data/{name}.csv",
                reg.step.total_seconds(),
                len(reg.values),
                b.val_end,
                b.train_end,
                TRACE_WINDOWS if corpus is not None else MAX_WINDOWS,
            )
            series.append((part, reg.values[: b.val_end]))
            real.append((name, _zscore(reg.values[: b.train_end], b.train_end)))
    if corpus is not None:
        series.extend(load_corpus(corpus, input_length, window, horizon))
    for i, (kind, step) in enumerate(SYNTHETIC):
        series.append(_synthetic(f"{kind}_{step}", kind, SYNTHETIC_POINTS, step, seed + i, 0.875, MAX_WINDOWS))
    for i in range(mixed):
        step = MIXED_STEPS[i % len(MIXED_STEPS)]
        series.append(_synthetic(f"mixed_{i}_{step}", "mixed", MIXED_POINTS, step, seed + 1000 + i, 0.8, MIXED_WINDOWS))
    series.extend(_mixups(real, seed, mixups))
    tx, ty, vx, vy = [], [], [], []
    for part, values in series:
        z = _zscore(values, part.train_end)
        x, y = _windows(z, window, horizon, 0, part.train_end, part.windows)
        tx.append(x)
        ty.append(y)
        x, y = _windows(z, input_length, horizon, part.train_end, part.rows, part.windows // 4)
        vx.append(x)
        vy.append(y)
    return (np.concatenate(tx), np.concatenate(ty)), (np.concatenate(vx), np.concatenate(vy)), [p for p, _ in series]


def pretrain(
    data: Path | None,
    out: Path,
    seed: int = 0,
    epochs: int | None = None,
    traces: Sequence[str] | None = None,
    mixed: int = MIXED,
    mixups: int = MIXUPS,
    periods: Sequence[int] = PERIODS,
    corpus: Path | None = None,
    hidden: int | None = None,
) -> dict[str, Any]:
    """Fit the pretrained model and write its artifact, corpus.json and MODEL_CARD.md into ``out``. ``traces``,
    ``mixed``, ``mixups``: as ``build_corpus`` (``benchmarks/pretrained_unseen.py`` holds traces out); ``periods``:
    the mlp's candidate seasons (``MLPConfig.periods``; () for none), its hidden layer then as wide as keeps it no
    larger than the default (``matched_hidden``) unless ``hidden`` sets it; ``corpus``: as ``build_corpus``."""
    from .forecaster import Forecaster, default_training

    # The default's training (MAE loss, its learning rate), over every window of the corpus each epoch.
    training = dataclasses.replace(
        default_training("mlp"), seed=seed, progress=False, refit=False, max_batches=0, epochs=EPOCHS, patience=6
    )
    if epochs is not None:
        training = dataclasses.replace(training, epochs=epochs)
    # verdict=False: the corpus's validation windows are series after series, not one series in time order, and a
    # model for every user is never to serve naive for all of them (forecaster.verdict.judge).
    seasons: dict[str, Any] = {"periods": tuple(periods), "hidden": matched_hidden(periods)} if periods else {}
    if hidden is not None:
        seasons["hidden"] = hidden
    f = Forecaster("mlp", DEFAULT_WINDOW, DEFAULT_HORIZON, training=training, verdict=False, norm="meanstd", **seasons)
    train_xy, val_xy, parts = build_corpus(
        data, f.input_length, f.window, f.horizon, seed, traces, mixed, mixups, corpus
    )
    t0 = time.perf_counter()
    size = {"series": len(parts), "train_windows": len(train_xy[0]), "validation_windows": len(val_xy[0])}
    command = "python -m promcast.forecaster.pretrain --data DATA " + ("--corpus CORPUS" if corpus else "--no-corpus")
    command += f" --out forecaster/pretrained --seed {seed}" + (f" --hidden {hidden}" if hidden is not None else "")
    f.fit_windows(train_xy, val_xy, {"corpus": size, "command": command})
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    f.save(out / "artifact")
    digest = hashlib.sha256((out / "artifact" / WEIGHTS_FILE).read_bytes()).hexdigest()
    # One part a line: thousands of corpus segments stay a small, diffable file.
    lines = ",\n".join(json.dumps(dataclasses.asdict(p)) for p in parts)
    write_atomic(out / "corpus.json", f"[\n{lines}\n]\n".encode())
    windows = f"at most {MAX_WINDOWS} training windows each ({MIXED_WINDOWS} for a mixed series or a mixup)"
    if corpus is not None:
        windows = (
            f"at most {TRACE_WINDOWS} training windows from a trace, {MAX_WINDOWS} from a synthetic series, "
            f"{MIXED_WINDOWS} from a mixed series or a mixup, and a corpus segment its family's share"
        )
    text = card(f, parts, digest, command, seconds, windows, EXCLUDED)
    write_atomic(out / "MODEL_CARD.md", text.encode())
    return {
        "seconds": seconds,
        "sha256": digest,
        "corpus": size,
        "validation": f.meta["validation"],
        "epochs": f.meta["training"]["epochs_run"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train the pretrained global model of forecaster/pretrained/.")
    p.add_argument(
        "--data",
        type=Path,
        help="folder of the traces, e.g. shared/data beside the clone (without it: synthetic series only)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", type=Path, help="folder of real workload series to learn from (forecaster.corpus)")
    source.add_argument("--no-corpus", action="store_true", help="leave the corpus out (not the shipped recipe)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="default: the mlp's own")
    p.add_argument("--periods", type=int, nargs="*", default=list(PERIODS), help="candidate seasons; none: no feature")
    p.add_argument("--hidden", type=int, help="the mlp's hidden units (default: no larger than the default model)")
    args = p.parse_args(argv)
    corpus = args.corpus
    if corpus is not None and (lacking := missing(corpus)):
        print(f"pretrain: the corpus folder {corpus} lacks {', '.join(lacking)}; see --corpus", file=sys.stderr)
        return 2
    report = pretrain(
        args.data, args.out, args.seed, args.epochs, periods=args.periods, corpus=corpus, hidden=args.hidden
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
