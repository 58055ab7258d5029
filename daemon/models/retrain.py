"""The retrain job and its promotion: fit a challenger on history minus a recent holdout, score it against the
champion and the baselines on that holdout, and promote it only if it wins; every run leaves a JSON decision report.

Holdout: the most recent ``retrain.holdout_ratio`` of the history read is never trained on. Each scored window
takes its inputs from just before its origin (they may reach back into the training part) and its ``horizon`` targets
from the holdout. Challenger, champion, naive and AR all forecast exactly the same windows.

The champion is scored on data it never trained on too (``champion.py``): as it is when its training ended
before the holdout, else through its recipe fitted on the training part. The report's ``scored_on`` says what
every candidate was trained on and how the champion was scored.

AR is scored and reported beside naive, but the promotion requires beating naive only (``decide`` says why).

The scored challenger is the one promoted: it is not refit on the holdout, so the model that serves is the very
model whose score passed the promotion rule. The holdout is recent, but serving still reads the latest window as input.

An operator's pin (``promcast models rollback``, the store's ``pin.json``) holds every promotion back: the run still
trains, scores and reports, and keeps ``current``. A pin is about what serves; the reports keep telling whether a
fresh model would win, which is what the operator needs to decide when to unpin.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from promcast.daemon.clock import align, origin
from promcast.daemon.logs import get_logger
from promcast.daemon.models.champion import ChampionUnreadable, score_champion, training_period
from promcast.daemon.models.store import PIN_FILE, ModelStore, log_pin
from promcast.daemon.models.training import fit_target, training_series
from promcast.daemon.settings import RetrainSettings, TargetSettings
from promcast.daemon.sources import Source
from promcast.daemon.sources.sharding import Shard
from promcast.daemon.types import SeriesKey
from promcast.forecaster import ArtifactError, Forecaster
from promcast.forecaster.data import regularise
from promcast.forecaster.progress import Stage, quiet
from promcast.forecaster.protocol import error_metrics, inputs_at, origin_stride, rolling_origins, targets_at
from promcast.forecaster.verdict import at_most, below

__all__ = ["ChampionUnreadable", "Holdout", "RetrainBusy", "RetrainResult", "decide", "retrain", "split_holdout"]

log = get_logger("promcast.retrain")


class RetrainBusy(Exception):
    """Another retrain run holds this target's lock."""


@dataclass(frozen=True)
class Holdout:
    cut: pd.Timestamp  # the first held-out step; nothing at or after it is trained on
    inputs: np.ndarray  # (N, window)
    targets: np.ndarray  # (N, horizon)
    series: int


@dataclass(frozen=True)
class RetrainResult:
    decision: str  # "promote" or "keep"
    reason: str
    version: str | None  # the promoted version
    report: dict[str, Any]


def split_holdout(
    history: dict[SeriesKey, pd.Series], target: TargetSettings, end: dt.datetime, rs: RetrainSettings
) -> tuple[dict[SeriesKey, pd.Series], Holdout]:
    """The training part of every series (before the cut) and the holdout windows of every series."""
    cut = pd.Timestamp(align(end - rs.holdout_ratio * target.history, target.step))
    train = {k: s[s.index < cut] for k, s in history.items() if (s.index < cut).any()}
    xs, ys, used = [], [], 0
    for series in history.values():
        reg = regularise(series, target.step, target.max_gap)
        first = int(reg.index.searchsorted(cut))
        every = origin_stride(max(len(reg.values) - first, 1), rs.max_holdout_windows)
        origins = rolling_origins(first, len(reg.values), target.horizon, every, min_history=target.input_length)
        if len(origins) == 0:
            continue
        x, y = inputs_at(reg.values, origins, target.input_length), targets_at(reg.values, origins, target.horizon)
        ok = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)  # drop windows crossing a long gap
        xs.append(x[ok])
        ys.append(y[ok])
        used += bool(ok.any())
    inputs = np.concatenate(xs) if xs else np.empty((0, target.input_length))
    if len(inputs) == 0:
        raise ValueError(_no_window(history, target, pd.Timestamp(end), rs, cut))
    return train, Holdout(cut, inputs, np.concatenate(ys), used)


def _no_window(
    history: dict[SeriesKey, pd.Series],
    target: TargetSettings,
    end: pd.Timestamp,
    rs: RetrainSettings,
    cut: pd.Timestamp,
) -> str:
    """Why no holdout window exists, and what gives one: the ``history`` setting, time (a young series), or a gap."""
    step, points = pd.Timedelta(target.step), target.input_length + target.horizon
    head = f"no holdout window of {target.input_length} + {target.horizon} points after {cut}"
    held = int((end - cut) / step) + 1  # grid points at or after the cut
    if held < target.horizon:  # no series, however old, fills a horizon after the cut: the setting limits
        need = math.ceil(target.horizon / rs.holdout_ratio) * step
        return (
            f"{head}: retrain.holdout_ratio {rs.holdout_ratio:g} of history {_span(target.history)} holds {held} "
            f"steps, fewer than the horizon {target.horizon}; read more history: raise the target's history to at "
            f"least {_span(need)}"
        )
    starts = [s.index[0] for s in history.values() if len(s)]
    if not starts:
        return f"{head}: the query returned no samples in the {_span(target.history)} read"
    oldest = min(starts)
    if int((end - oldest) / step) + 1 < points:  # younger than one window: only time helps
        who = "the series" if len(starts) == 1 else f"the oldest of {len(starts)} series"
        return (
            f"{head}: {who} is only {_span(end - oldest)} old (its first sample is at {oldest}) and needs "
            f"{_span(points * step)} of history ({points} steps of {_span(step)}); retrains retry, and one after "
            f"{oldest + points * step} has enough"
        )
    newest = max(s.index[-1] for s in history.values() if len(s))
    if newest < cut + (target.horizon - 1) * step:
        return f"{head}: the newest sample is at {newest}; the series stopped before the holdout"
    return f"{head}: every window there crosses a gap of more than max_gap {target.max_gap} steps"


def _held(target: str, run: str, pin: dict[str, Any], reason: str) -> str:
    """The reason a pinned target keeps its model, and the one log line that says so."""
    log_pin(target, pin, f"promoting run {run}")
    held = f"the operator's pin on {pin['version']} holds" if pin["version"] else f"an unreadable {PIN_FILE} holds"
    return f"{held} (promcast models unpin releases it); the rule would promote: {reason}"


def _span(t: pd.Timedelta | dt.timedelta) -> str:
    """A duration as an operator reads it: 45s, 7m, 5h12m, 3d."""
    s = int(pd.Timedelta(t).total_seconds())
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def _score(f: Forecaster, h: Holdout) -> dict[str, float]:
    inputs = h.inputs[:, -f.input_length :]  # a baseline reads its window; the gated model reads more
    pred = f.predict(inputs)  # in passes of f.block rows: a gated model's memory stays bounded
    if not np.isfinite(pred).all():
        raise ArtifactError("non-finite forecasts on the holdout")
    m = error_metrics(pred, h.targets)
    return {"mae": m["mae"], "mse": m["mse"]}


def _baseline(name: str, target: TargetSettings, train: dict[SeriesKey, pd.Series]) -> Forecaster:
    f = Forecaster(name, window=target.window, horizon=target.horizon, step=target.step, max_gap=target.max_gap)
    return f.fit(training_series(train), step=target.step)


def decide(scores: dict[str, Any], margin: float) -> tuple[str, str]:
    """Promote if the challenger beats naive and beats a usable champion by ``margin`` (relative MAE), or ties naive
    (it serves naive) and beats by ``margin`` a champion that loses to naive.

    AR's score is reported, not required: the promotion picks between champion and challenger and cannot serve AR,
    so an AR bar would keep a stale champion that the challenger beats."""
    ch, naive = scores["challenger"]["mae"], scores["naive"]["mae"]
    champion = scores.get("champion")
    if champion is None:
        if below(ch, naive):
            return "promote", f"no usable champion; challenger MAE {ch:.6g} beats naive MAE {naive:.6g}"
        return "keep", f"challenger MAE {ch:.6g} does not beat naive MAE {naive:.6g}"
    best = champion["mae"]
    gain = (best - ch) / best if best > 0 else -np.inf
    versus = f"challenger MAE {ch:.6g} vs champion MAE {best:.6g}: gain {gain:.2%}"
    if not below(ch, naive):
        # A challenger that ties naive (it serves naive: the verdict after fitting) replaces only a champion that loses
        # to naive by the margin; one that does no better than naive is otherwise kept out.
        if at_most(ch, naive) and gain > margin:
            return "promote", f"challenger MAE {ch:.6g} ties naive MAE {naive:.6g}; {versus} > margin {margin:.2%}"
        return "keep", f"challenger MAE {ch:.6g} does not beat naive MAE {naive:.6g}"
    if gain > margin:
        return "promote", f"{versus} > margin {margin:.2%}"
    return "keep", f"{versus} <= margin {margin:.2%}"


@contextmanager
def _locked(store: ModelStore) -> Iterator[None]:
    store.dir.mkdir(parents=True, exist_ok=True)
    with open(store.dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RetrainBusy(f"{store.dir}: another retrain run is in progress") from exc
        yield  # the lock goes with the file descriptor, also when the process is killed


def _scores(
    target: TargetSettings, store: ModelStore, train: dict[SeriesKey, pd.Series], h: Holdout, challenger: Forecaster
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Every candidate's holdout scores (champion None when unusable), who the champion was, and what each
    scored model was trained on."""
    champion_version, champion, champion_on = score_champion(
        store, target, train, h.cut, challenger, lambda f: _score(f, h), h.inputs[-1]
    )
    naive, ar = _baseline("naive", target, train), _baseline("ar", target, train)
    scores = {
        "challenger": _score(challenger, h),
        "champion": champion if isinstance(champion, dict) else None,
        "naive": _score(naive, h),
        "ar": _score(ar, h),
    }
    who = {"champion_version": champion_version, "champion_error": None if isinstance(champion, dict) else champion}
    part = "the training part (before the holdout)"
    scored_on = {
        k: {"fit": part, "training": training_period(m.meta)}
        for k, m in (("challenger", challenger), ("naive", naive), ("ar", ar))
    }
    return scores, who, scored_on | {"champion": champion_on}


def retrain(
    target: TargetSettings,
    source: Source,
    store: ModelStore,
    rs: RetrainSettings,
    dry_run: bool = False,
    shard: Shard | None = None,
    trigger: str = "manual",
    stage: Stage = quiet,
    bars: bool = False,
) -> RetrainResult:
    """One retrain run for ``target``. Raises SourceUnavailable, ValueError (too little data), RetrainBusy, or
    StoreError and ChampionUnreadable (a champion that could not be looked at: nothing is promoted).
    ``stage`` is told each step as it begins; ``bars``: the training's epoch bar (on a terminal)."""
    with _locked(store):
        t0, run = time.perf_counter(), store.new_version()
        end = origin(source.now(), target.step)
        stage(f"reading {target.history.total_seconds() / 3600:g} h of history")
        history = source.fetch(target, end - target.history, end)
        if shard is not None:  # a sharded replica's retrain job sees only its own series
            history = shard.select(history)
        train, h = split_holdout(history, target, end, rs)
        stage(f"fitting the {target.model} challenger")
        challenger = fit_target(target, train, progress=bars)
        stage(f"scoring the challenger, the champion, naive and AR on {len(h.inputs)} holdout windows")
        scores, who, scored_on = _scores(target, store, train, h, challenger)
        decision, reason = decide(scores, rs.margin)
        if scored_on["champion"] is not None:
            reason += f"; champion scored {scored_on['champion']['fit']}"
        with store.pin_lock():  # the pin read and the promotion as one step: a rollback lands before or after it
            pin = store.pin()
            if pin is not None and decision == "promote":
                decision, reason = "keep", _held(target.name, run, pin, reason)
            report = {
                "target": target.name,
                "run": run,
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "decision": decision,
                "reason": reason,
                "margin": rs.margin,
                "dry_run": dry_run,
                "trigger": trigger,  # who started it: the daemon (cron, drift, first) or anyone else (manual)
                "scores": scores,
                "scored_on": scored_on,
                **who,
                "holdout": {"start": h.cut.isoformat(), "end": end.isoformat(), "ratio": rs.holdout_ratio}
                | {"windows": len(h.inputs), "series": h.series},
                "training": challenger.meta.get("training", {}) | {"validation": challenger.meta.get("validation")},
                "serves": challenger.serves,  # "naive": the challenger lost to naive on its validation (the verdict)
                "refit_on_holdout": False,
                "seconds": round(time.perf_counter() - t0, 3),
                "version": run if decision == "promote" and not dry_run else None,
                "pinned": None if pin is None else pin["version"] or "unreadable",  # the operator's pin, if any
            }
            new = " and the new version" if report["version"] is not None else ""
            stage("a dry run: writing nothing" if dry_run else f"writing the decision{new}")
            if report["version"] is not None:
                store.publish(challenger, version=run, decision=report)
            if not dry_run:
                store.write_decision(run, report)
        maes = {k: round(v["mae"], 6) for k, v in scores.items() if v}
        log.info(
            "retrain",
            target=target.name,
            decision=decision,
            reason=reason,
            version=report["version"],
            mae=maes,
            serves=challenger.serves,
        )
        return RetrainResult(decision, reason, report["version"], report)
