"""The evaluation report: DIR/metrics.json with every figure, and DIR/report.md with the PNGs beside it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from .evaluate import Evaluation, ModelResult, WindowResult
from .measures import DEFINITIONS
from .plots import draw_all

__all__ = ["metrics", "write_report"]


def _model_metrics(ev: Evaluation, label: str, m: ModelResult, naive_mae: float) -> dict[str, Any]:
    origins = ev.task.origins[m.measures["worst"]]
    return {
        "model": m.plan.model,
        "window": m.plan.window,
        "hparams": m.runs[0].forecaster.meta["model"]["hparams"],
        "note": m.plan.note,
        "default": label == ev.config.default_model,
        **m.scores,
        "z_mae_vs_naive": m.scores["z"]["mae"] / naive_mae if naive_mae > 0 else None,
        "measures": {**m.measures, "worst_origins": [str(ev.task.start + int(o) * ev.task.step) for o in origins]},
    }


def _window_metrics(ev: Evaluation, r: WindowResult) -> dict[str, Any]:
    naive = r.models["naive"].scores["z"]["mae"] if "naive" in r.models else float("nan")
    return {"models": {label: _model_metrics(ev, label, m, naive) for label, m in r.models.items()}}


def metrics(ev: Evaluation, command: str = "") -> dict[str, Any]:
    """Every figure of the evaluation as plain JSON-ready values."""
    task, b = ev.task, ev.task.borders
    out: dict[str, Any] = {
        "name": ev.name,
        "command": command,
        "input": {"points": b.n, "start": str(task.start), "step_seconds": task.step.total_seconds()},
        "protocol": {
            **dataclasses.asdict(ev.config.protocol),
            "train_end": b.train_end,
            "val_end": b.val_end,
            "stride": int(task.origins[1] - task.origins[0]) if len(task.origins) > 1 else 1,
            "origins": len(task.origins),
            "first_origin": int(task.origins[0]),
            "season": ev.season,
            "z_mean": task.scaler.shift,
            "z_std": task.scaler.scale,
        },
        "config": {
            "models": list(ev.config.models),
            "windows": list(ev.config.windows),
            "seeds": ev.config.seeds,
            "fast": ev.config.fast,
            "scaler": ev.config.scaler,
            "default_model": ev.config.default_model,
            "training_overrides": dict(ev.config.training),
            "training_caps": dict(ev.config.caps),  # of every network but the default
        },
        "definitions": DEFINITIONS,
        "windows": {str(r.window): _window_metrics(ev, r) for r in ev.results},
    }
    if ev.single_step is not None:
        out["single_step_lstm"] = {**ev.single_step.scores, "fit_seconds": ev.single_step.run.fit_seconds}
    return out


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _summary_table(window: dict[str, Any]) -> list[str]:
    lines = [
        "| model | z-MAE | z-MSE | MAE | MSE | z-MAE ÷ naive | fit s | epochs / s to 5% of best | seed std | "
        "smoothness | lag mean (h1, h12) | peak error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, m in window["models"].items():
        me, conv, stab = m["measures"], m["measures"]["convergence"], m["measures"]["stability"]
        name = f"**{label}** (default)" if m["default"] else label
        lags = me["lag"]["per_h"]
        lines.append(
            f"| {name} | {_fmt(m['z']['mae'])} | {_fmt(m['z']['mse'])} | {m['original']['mae']:.4g} | "
            f"{m['original']['mse']:.4g} | {_fmt(m['z_mae_vs_naive'], 3)} | {_fmt(me['fit_seconds'][0], 2)} | "
            f"{_fmt(conv and conv['epochs'])} / {_fmt(conv and conv['seconds'], 1)} | "
            f"{_fmt(stab and stab['std'])} | {_fmt(me['smoothness']['ratio'], 2)} | "
            f"{me['lag']['mean']:.1f} ({lags[0]}, {lags[-1]}) | {me['peaks']['signed_error']:+.3f} |"
        )
    return lines


def _horizon_table(window: dict[str, Any], metric: str) -> list[str]:
    any_model = next(iter(window["models"].values()))
    steps = range(1, len(any_model["z"][f"{metric}_per_h"]) + 1)
    lines = ["| model | " + " | ".join(f"h{h}" for h in steps) + " |", "|---" * (len(steps) + 1) + "|"]
    for label, m in window["models"].items():
        lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in m["z"][f"{metric}_per_h"]) + " |")
    return lines


def _failure_lines(window: dict[str, Any]) -> list[str]:
    lines = []
    for label, m in window["models"].items():
        me = m["measures"]
        lag, peak = me["lag"]["mean"], me["peaks"]["signed_error"]
        bias = "overshoots" if peak > 0 else "undershoots"
        lines.append(
            f"- **{label}**: worst windows start at {', '.join(me['worst_origins'])}; "
            f"mean lag {lag:.1f} steps (naive's is {(1 + len(me['lag']['per_h'])) / 2:.1f}); "
            f"{bias} peaks by {abs(peak):.3f} z."
        )
    return lines


def _protocol_lines(data: dict[str, Any]) -> list[str]:
    p, inp = data["protocol"], data["input"]
    season = f"{p['season']} steps (one day)" if p["season"] else "none (a day exceeds 2,000 steps): plain naive"
    return [
        f"- Series: {inp['points']} points from {inp['start']}, step {inp['step_seconds']:g} s; every gap bridged "
        "by linear interpolation in time (as BENCHMARK.md).",
        f"- Chronological split: train [0, {p['train_end']}), validation [{p['train_end']}, {p['val_end']}), "
        f"test [{p['val_end']}, {inp['points']}); z-scale = (x − {p['z_mean']:.4g}) / {p['z_std']:.4g} "
        "(train mean and std).",
        f"- {p['origins']} rolling origins from index {p['first_origin']}, one every {p['stride']} steps; each "
        f"forecast sees only data before its origin and predicts the next {p['horizon']} steps. Every model and "
        "baseline is scored on exactly these origins and targets.",
        "- Models are fitted once on train + validation: closed-form models (naive, AR) on every window there, "
        "networks on the train windows with early stopping on the validation windows.",
        f"- Seasonal naive: season {season}. Its input is one season long whatever the window, so that it always "
        "looks one day back; it still forecasts the same origins as every other model.",
        f"- Seeds: {data['config']['seeds']} per network (closed-form models are deterministic); the tables show the "
        "first seed, stability the spread over all of them.",
        _training_line(data["config"]),
    ]


def _training_line(config: dict[str, Any]) -> str:
    """Which training each network had: its own (forecaster.catalog), the flags' overrides, the run's caps."""
    line = "- Training: each model's own"
    if overrides := config["training_overrides"]:
        line += ", with " + ", ".join(f"{k} {v}" for k, v in overrides.items())
    if caps := {k: v for k, v in config["training_caps"].items() if k not in overrides}:
        line += "; every network but the default at most " + ", ".join(f"{k} {v}" for k, v in caps.items())
    return line + "."


def _interval_table(window: dict[str, Any]) -> list[str]:
    lines = ["| model | coverage 0.8 | width 0.8 | coverage 0.95 | width 0.95 |", "|---|---|---|---|---|"]
    for label, m in window["models"].items():
        iv = m["measures"].get("intervals")
        if iv:
            cells = [_fmt(iv[lv][k], 3) for lv in ("0.8", "0.95") for k in ("coverage", "z_width")]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"| {label} | — | — | — | — |")
    return lines


def _window_section(w: str, window: dict[str, Any], files: dict[str, str]) -> list[str]:
    return [
        f"## Window {w}",
        "",
        *_summary_table(window),
        "",
        "z-MAE per horizon step:",
        "",
        *_horizon_table(window, "mae"),
        "",
        "z-MSE per horizon step:",
        "",
        *_horizon_table(window, "mse"),
        "",
        f"![12-step forecasts, window {w}]({files[f'forecasts_{w}']})",
        f"![errors per horizon step, window {w}]({files[f'horizon_{w}']})",
        f"![convergence, window {w}]({files[f'convergence_{w}']})",
        "",
        "Prediction intervals (split-conformal, calibrated on the validation windows): empirical coverage of the",
        "test targets and mean width on the z-scale.",
        "",
        *_interval_table(window),
        "",
        "### Where each model fails",
        "",
        *_failure_lines(window),
        "",
        f"![worst windows, window {w}]({files[f'worst_{w}']})",
        "",
    ]


def _markdown(data: dict[str, Any], files: dict[str, str]) -> str:
    lines = [f"# Evaluation: {data['name']}", ""]
    if data["command"]:
        lines += [f"Produced by `{data['command']}`; every figure is in `metrics.json`.", ""]
    lines += ["## Data and protocol", "", *_protocol_lines(data), ""]
    lines += [f"![series]({files['series']})", f"![sample window]({files['sample']})", ""]
    lines += ["## Measures", "", *(f"- **{k}**: {v}" for k, v in data["definitions"].items()), ""]
    for w, window in data["windows"].items():
        lines += _window_section(w, window, files)
    if "single_step_lstm" in data:
        s = data["single_step_lstm"]
        lines += ["## Single-step LSTM", "", f"1-step z-MAE {s['z']['mae']:.4f}, z-MSE {s['z']['mse']:.4f}, "]
        lines[-1] += f"fitted in {s['fit_seconds']:.1f} s.\n\n![single-step LSTM]({files['single_step']})\n"
    return "\n".join(lines) + "\n"


def write_report(ev: Evaluation, out: str | Path, command: str = "") -> Path:
    """Write the PNGs, DIR/metrics.json and DIR/report.md; returns the report's path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = draw_all(ev, folder)
    data = metrics(ev, command)
    data["figures"] = files
    (folder / "metrics.json").write_text(json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")
    report = folder / "report.md"
    report.write_text(_markdown(data, files))
    return report


def _clean(x: Any) -> Any:
    """JSON-ready copy: numpy scalars as Python numbers, NaN and infinities as null."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
