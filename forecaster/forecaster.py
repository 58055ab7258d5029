"""The frozen Forecaster: fit on a series, predict the next steps in original units, save and load an artifact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import __version__
from .artifact import ArtifactError, write_artifact
from .catalog import CATALOG
from .data import StepLike, as_series, regularise
from .forwards import repeat_last
from .gate import MODEL, Gate, default_gate
from .intervals import Calibration, calibrate
from .models import ForecastModel, build_model
from .names import DEFAULT_HORIZON, DEFAULT_MODEL, DEFAULT_WINDOW
from .predictor import NotFittedError, Predictor, Restored
from .scalers import WINDOW, Scaler, make_scaler
from .splits import chronological_split, split_windows
from .train import TrainConfig, TrainResult, seed_everything, train
from .verdict import judge

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_WINDOW",
    "FAST_HPARAMS",
    "FAST_TRAINING",
    "Forecaster",
    "NotFittedError",
    "default_training",
    "fast_hparams",
]

# Tiny networks and a few batches, for tests (the evaluation's --fast, the replays' --fast): only the names a
# model's config knows are passed on.
FAST_HPARAMS: dict[str, Any] = {"hidden": 8, "d_model": 8, "heads": 2, "layers": 1, "ff": 16}
FAST_TRAINING = TrainConfig(epochs=3, batch_size=128, patience=2, max_batches=10, progress=False)


def default_training(model: str) -> TrainConfig:
    """The training that suits ``model`` when the caller gives none: its catalog row's changes to TrainConfig()."""
    return TrainConfig(**CATALOG[model].training) if model in CATALOG else TrainConfig()


def fast_hparams(model: str) -> dict[str, Any]:
    """FAST_HPARAMS restricted to the fields of ``model``'s config."""
    fields = {f.name for f in dataclasses.fields(CATALOG[model].config)}
    return {k: v for k, v in FAST_HPARAMS.items() if k in fields}


# Fine-tuning the pretrained model on one series: fewer epochs at a third of the default's learning rate, so that
# the corpus's weights are a start, not erased.
FINE_TUNING = TrainConfig(epochs=30, patience=4, lr=3e-4, loss="mae", max_batches=32, progress=False)


class Forecaster(Predictor):
    """A forecaster of ``horizon`` future steps from the last ``window`` points of one series.

    ``hparams`` go to the model (see ``forecaster.models``); ``training`` configures the training loop.
    ``gate`` (``forecaster.gate``) weighs the model against naive at each origin by their recent one-step errors;
    ``"default"`` gates every learned model with ``DEFAULT_GATE`` and leaves the baselines plain, ``None`` turns
    it off. A gated forecaster reads ``input_length = window + gate.extra`` points per forecast. ``verdict``:
    a gated model that loses to naive on its own validation windows serves naive (``forecaster.verdict.judge``);
    False serves the network whatever its validation says (studies of the network itself, tests of its runtimes).
    After ``fit`` or ``load`` the model is frozen: prediction never changes it. Prediction (``predict``,
    ``predict_next_12``, intervals) is ``Predictor``'s; to serve without torch, load the artifact with
    ``forecaster.numpy_runtime.load_frozen`` instead.
    """

    runtime = "torch"
    # 2,048 rows a pass keep a gated model's 13 windows a row, and a retrain's holdout, under about 1 GB
    # (benchmarks/serving_install.py measures it).
    block = 2048

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        window: int = DEFAULT_WINDOW,
        horizon: int = DEFAULT_HORIZON,
        scaler: str = "standard",
        *,
        step: StepLike | None = None,
        max_gap: int | None = 5,
        val_ratio: float = 0.2,
        training: TrainConfig | None = None,
        gate: Gate | str | None = "default",
        verdict: bool = True,
        **hparams: Any,
    ) -> None:
        self.model_name, self.window, self.horizon, self.scaler_kind = (
            model,
            int(window),
            int(horizon),
            scaler,
        )
        self.step = pd.Timedelta(step) if step is not None else None
        self.max_gap, self.val_ratio = max_gap, val_ratio
        self.training = training or default_training(model)
        self.hparams, self.verdict = dict(hparams), verdict
        if isinstance(gate, str) and gate != "default":
            raise ValueError(f"gate must be a Gate, None or 'default', got {gate!r}")
        self.gate: Gate | None = default_gate(model) if isinstance(gate, str) else gate
        self._model: ForecastModel = build_model(model, self.window, self.horizon, **hparams)
        if scaler not in ("standard", "minmax"):
            raise ValueError(f"unknown scaler {scaler!r}; choose 'standard' or 'minmax'")
        self._scaler: Scaler | None = None
        self._calibration: Calibration | None = None
        self.meta: dict[str, Any] = {}
        self.train_result: TrainResult | None = None

    # ---- fitting -------------------------------------------------------------------------------
    def fit(self, series: pd.Series | np.ndarray | list[float], step: StepLike | None = None) -> Forecaster:
        """Fit on ``series`` (a Series on a DatetimeIndex, or an array laid on ``step``). Returns self."""
        grid = pd.Timedelta(step) if step is not None else self.step
        reg = regularise(as_series(series, grid), grid, self.max_gap)
        values, need = reg.values, self.window + self.horizon
        usable = int(np.isfinite(values).sum())
        if usable < need:
            raise ValueError(
                f"need at least window + horizon = {self.window} + {self.horizon} = {need} points to fit, got {usable}"
            )
        if np.nanmax(values) == np.nanmin(values):
            raise ValueError(
                f"the series is constant (every value is {np.nanmin(values):g}); there is nothing to learn"
            )
        split = chronological_split(len(values), self.val_ratio)
        self._scaler = make_scaler(self.scaler_kind, values[: split.train_end])
        z = self._scaler.transform(values)
        train_xy = split_windows(z, self.window, self.horizon, 0, split.train_end)
        val_xy = split_windows(z, self.window, self.horizon, split.train_end, split.n)
        if len(train_xy[0]) == 0:  # too short to hold out anything: train on every window
            train_xy, val_xy = split_windows(z, self.window, self.horizon, 0, split.n), (val_xy[0][:0], val_xy[1][:0])
        self._model = self._build_seeded()
        self.train_result = train(self._model, train_xy, val_xy, self.training)
        # Held-out scores and interval calibration, from one prediction made before any refit sees these windows:
        # the forecast as served, gate included (its inputs reach input_length points back).
        val_x, val_y = val_xy
        if self.gate is not None and len(val_x):
            val_x, val_y = split_windows(z, self.input_length, self.horizon, split.train_end, split.n)
        validation = self._held_out(val_x, val_y)
        if self.training.refit and self._model.trainable and len(val_xy[0]):
            self._refit(split_windows(z, self.window, self.horizon, 0, split.n))
        self._freeze()
        self.step = reg.step
        self.meta = self._describe(reg.start, reg.end, len(values), reg.imputed, validation)
        return self

    def fit_windows(
        self,
        train_xy: tuple[np.ndarray, np.ndarray],
        val_xy: tuple[np.ndarray, np.ndarray],
        training_data: dict[str, Any],
        init: Forecaster | None = None,
    ) -> Forecaster:
        """Fit a global model on windows already cut from many series, each scaled by its own statistics.

        ``train_xy``: inputs of ``window`` points and their ``horizon`` targets; ``val_xy``: inputs of
        ``input_length`` points (the gate's recent past included), for early stopping (on their last ``window``
        points) and for the interval calibration of the forecast as served. The artifact has no global scaler
        (``scaling.WINDOW``: each window is scaled by its own mean and spread when forecast) and no step, so that
        it forecasts a series of any level, unit and step; the network should be scale-free (``norm="meanstd"``).
        ``training_data`` describes the corpus in meta.json. ``init``: a fitted model of the same recipe whose weights
        the training starts from (``fine_tune``), instead of the seed's."""
        val_x, val_y = val_xy
        if val_x.shape[1] != self.input_length or train_xy[0].shape[1] != self.window or not len(val_x):
            raise ValueError(f"expected train windows of {self.window} and validation windows of {self.input_length}")
        self._scaler = Scaler(WINDOW, 0.0, 1.0)  # each window scaled by its own mean and spread when forecast
        self._model = self._build_seeded()
        if init is not None:
            self._model.load_state_dict(init._model.state_dict())
        self.train_result = train(self._model, train_xy, (val_x[:, -self.window :], val_y), self.training)
        validation = self._held_out(val_x, val_y)
        self._freeze()
        self.step = None
        now = pd.Timestamp.now(tz="UTC")
        self.meta = self._describe(now, now, len(train_xy[0]) + len(val_x), 0, validation)
        self.meta["training"] = {**self.meta["training"], **training_data}
        del self.meta["training"]["start"], self.meta["training"]["end"]
        return self

    def fine_tune(
        self,
        series: pd.Series | np.ndarray | list[float],
        step: StepLike | None = None,
        training: TrainConfig | None = None,
        val_ratio: float | None = None,
    ) -> Forecaster:
        """A copy of this pretrained model (``Forecaster.load(forecaster.PRETRAINED)``) trained on for a few epochs on
        one series; this one is unchanged.

        The series is z-scaled by its training part, as every series of the pretraining corpus was
        (``forecaster.pretrain``); its last ``val_ratio`` (default: this model's) stops the training early and
        calibrates the intervals.
        The copy keeps the per-window scaling, takes the series' step, and records the pretrained weights it
        started from (``training.fine_tuned_from``): it is the series' own model, no longer ``pretrained``."""
        if not self.pretrained or self._model is None:
            raise ValueError("fine_tune starts from the pretrained model: Forecaster.load(forecaster.PRETRAINED)")
        grid = pd.Timedelta(step) if step is not None else None
        reg = regularise(as_series(series, grid), grid, self.max_gap)
        values, val_ratio = reg.values, self.val_ratio if val_ratio is None else val_ratio
        split = chronological_split(len(values), val_ratio)
        z = make_scaler("standard", values[: split.train_end]).transform(values)
        train_xy = split_windows(z, self.window, self.horizon, 0, split.train_end)
        val_xy = split_windows(z, self.input_length, self.horizon, split.train_end, split.n)
        if not len(train_xy[0]) or not len(val_xy[0]):
            raise ValueError(
                f"fine-tuning needs windows of {self.input_length} + {self.horizon} points in both the training part "
                f"and the last {val_ratio:.0%} of the series; it has {len(values)} points"
            )
        tuned = Forecaster(
            self.model_name,
            self.window,
            self.horizon,
            max_gap=self.max_gap,
            val_ratio=val_ratio,
            training=training or FINE_TUNING,
            gate=self.gate,
            **self._model.hparams(),
        )
        tuned.fit_windows(train_xy, val_xy, {"fine_tuned_from": self.meta.get("weights_sha256")}, init=self)
        tuned.step = reg.step
        tuned.meta["step_seconds"] = reg.step.total_seconds()
        tuned.meta["training"] |= {"start": reg.start.isoformat(), "end": reg.end.isoformat(), "points": len(values)}
        return tuned

    def _held_out(self, val_x: np.ndarray, val_y: np.ndarray) -> dict[str, Any]:
        """The validation metrics of the forecast as served (gate included) on the held-out windows (inputs of
        ``input_length`` points); the verdict on them (``serves``); and the intervals, calibrated on the forecasts of
        what is served. No windows: no metrics and no calibration."""
        self.serves = MODEL  # the network is what the verdict judges
        if not len(val_x):
            self._calibration = None
            return self._validation_metrics(val_x, val_y, None)
        val_pred = self._in_blocks(self._predict_served, val_x)
        validation = self._validation_metrics(val_x, val_y, val_pred)
        self._calibration = calibrate(val_x[:, -self.window :], val_y, self._verdict(val_x, val_y, val_pred))
        return validation

    def _verdict(self, val_x: np.ndarray, val_y: np.ndarray, val_pred: np.ndarray) -> np.ndarray:
        """Set what the fitted model serves (``forecaster.verdict.judge``: a gated model that lost to naive on its
        validation windows, overall and in most of their quarters, serves naive) and return the validation
        forecasts, scaled, of what it serves, which the intervals are calibrated on."""
        if self.gate is None or not self.verdict:
            return val_pred
        naive = repeat_last(val_x, self.horizon)
        errors = np.abs(val_pred - val_y).mean(axis=1), np.abs(naive - val_y).mean(axis=1)
        self.serves = judge(*errors, floor=self.gate.floor)
        return val_pred if self.serves == MODEL else naive

    def _build_seeded(self) -> ForecastModel:
        """A fresh model whose initial weights come from the training seed, not from torch's per-process seed."""
        seed_everything(self.training.seed)
        return build_model(self.model_name, self.window, self.horizon, **self.hparams)

    def _refit(self, all_xy: tuple[np.ndarray, np.ndarray]) -> None:
        """Retrain from scratch on every window for the early-stopped epoch count (same seed)."""
        assert self.train_result is not None
        epochs = self.train_result.best_epoch + 1
        self._model = self._build_seeded()
        empty = (all_xy[0][:0], all_xy[1][:0])
        refit = train(self._model, all_xy, empty, dataclasses.replace(self.training, epochs=epochs))
        self.train_result = dataclasses.replace(self.train_result, refit_seconds=float(sum(refit.epoch_seconds)))

    def _freeze(self) -> None:
        self._model.to("cpu").eval()
        self._model.requires_grad_(False)

    def _describe(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        points: int,
        imputed: int,
        validation: dict[str, Any],
    ) -> dict[str, Any]:
        result = self.train_result
        return {
            "model": {"name": self.model_name, "hparams": self._model.hparams()},
            "window": self.window,
            "horizon": self.horizon,
            "gate": self.gate.to_dict() if self.gate is not None else None,
            "input_length": self.input_length,
            "serves": self.serves,
            "step_seconds": self.step.total_seconds() if self.step is not None else None,
            "max_gap": self.max_gap,
            "scaler": self._scaler.to_dict() if self._scaler else None,
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "training": {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "points": points,
                "imputed": imputed,
                "val_ratio": self.val_ratio,
                "config": dataclasses.asdict(self.training),
                "epochs_run": len(result.train_loss) if result else 0,
                "best_epoch": result.best_epoch if result else -1,
                "seconds": float(sum(result.epoch_seconds) + result.refit_seconds) if result else 0.0,
            },
            "validation": validation,
            "intervals": self._calibration.to_dict() if self._calibration else None,
            "versions": {"promcast": __version__, "torch": torch.__version__, "numpy": np.__version__},
        }

    def _validation_metrics(self, X: np.ndarray, y: np.ndarray, z_pred: np.ndarray | None) -> dict[str, Any]:
        if z_pred is None or self._scaler is None:
            return {"windows": 0}
        truth = self._scaler.inverse(y)
        pred = self._scaler.inverse(z_pred)
        naive = self._scaler.inverse(repeat_last(X, self.horizon))
        err = pred - truth
        return {
            "windows": len(X),
            "mse": float(np.mean(err**2)),
            "mae": float(np.mean(np.abs(err))),
            "naive_mae": float(np.mean(np.abs(naive - truth))),
            "mae_per_step": np.mean(np.abs(err), axis=0).round(6).tolist(),
        }

    # ---- prediction ----------------------------------------------------------------------------
    @torch.inference_mode()
    def _predict_scaled(self, z: np.ndarray) -> np.ndarray:
        return self._model.in_passes(self._model, self._tensor(z)).double().cpu().numpy()  # (N, H)

    @torch.inference_mode()
    def _scout_scaled(self, z: np.ndarray) -> np.ndarray:
        return self._model.in_passes(self._model.scout, self._tensor(z)).double().cpu().numpy()  # (N, H)

    def _tensor(self, z: np.ndarray) -> torch.Tensor:
        # Where the model is: the training device while fit scores validation windows, the CPU once frozen.
        weights = next(itertools.chain(self._model.parameters(), self._model.buffers()), None)
        device = weights.device if weights is not None else torch.device("cpu")
        # A writable float32 copy only where needed: the gate's recent past is a read-only sliding view.
        z = np.require(z, np.float32, ("C", "W"))
        return torch.as_tensor(z, device=device).unsqueeze(-1)  # (N, W, 1)

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the artifact folder atomically; returns its path."""
        self._require_fitted()
        state = {k: v.detach().cpu().numpy() for k, v in self._model.state_dict().items()}
        return write_artifact(path, state, self.meta)

    @classmethod
    def restore(cls, r: Restored, arrays: dict[str, np.ndarray]) -> Forecaster:
        """A fitted Forecaster from an artifact already read: its checked meta.json and its weights."""
        kind = "standard" if r.scaler_kind == WINDOW else r.scaler_kind  # a per-window scaler is never fitted
        try:
            self = cls(r.model, r.window, r.horizon, kind, step=r.step, max_gap=r.max_gap, gate=r.gate, **r.hparams)
            self.scaler_kind = r.scaler_kind
            self._model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{r.path}: meta.json does not describe these weights: {exc}") from exc
        self._scaler, self._calibration, self.serves = r.scaler, r.calibration, r.serves
        self._freeze()
        self.meta = r.meta
        return self
