"""What `promcast models list` and a retrain that finds no holdout tell an operator: the pretrained model named as
such, one unit per MAE column, and a too-short history explained by what limits it (the series' age, or the
``history`` setting), with what would help."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from promcast.daemon.cli import main
from promcast.daemon.models.retrain import split_holdout
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import CsvSettings, RetrainSettings, Settings, TargetSettings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import PRETRAINED, Forecaster, TrainConfig
from promcast.forecaster.synthetic import diurnal

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

END = pd.Timestamp("2024-03-01T12:00:00Z")
KEY: SeriesKey = (("instance", "a"),)
MAE_COLUMNS = ("holdout_mae", "validation_mae", "scale_free_mae")


def write_config(tmp_path: Path, settings: Settings) -> list[str]:
    config = tmp_path / "promcast.yaml"
    config.write_text(json.dumps(settings.model_dump(mode="json")))
    return ["--target", settings.targets[0].name, "--config", str(config)]


def parse_table(text: str) -> list[dict[str, str]]:
    """The table's rows as {column: cell}, cut at the header's column starts (a cell may hold a space)."""
    lines = text.splitlines()
    header = lines[0]
    starts = [(m.group(), m.start()) for m in re.finditer(r"\S+", header)]
    rows = []
    for line in lines[1:]:
        if not line.startswith((" ", "*", "!")) or line.startswith("! "):
            break  # the lines under the table
        cells = {"mark": line[: starts[0][1]].strip()}
        for i, (name, start) in enumerate(starts):
            end = starts[i + 1][1] if i + 1 < len(starts) else None
            cells[name] = line[start:end].strip()
        rows.append(cells)
    return rows


def test_models_list_names_the_pretrained_model_and_keeps_one_unit_per_column(tmp_path: Path, capsys) -> None:
    target = TargetSettings(name="demo", query="q", history=timedelta(days=1))  # the pretrained model fits it
    settings = Settings(model_dir=tmp_path / "models", targets=[target])
    args = write_config(tmp_path, settings)
    store = ModelStore(settings.model_dir, "demo")
    pretrained = store.install(PRETRAINED)
    tiny = TrainConfig(epochs=1, max_batches=2, progress=False)
    own = Forecaster("mlp", window=288, horizon=12, step="60s", training=tiny, hidden=4, members=1)
    report = {"scores": {"challenger": {"mae": 1.25}}, "reason": "beat the pretrained champion"}
    trained = store.publish(own.fit(diurnal(900, "1min", seed=1)), decision=report)
    # The expectation, read from the artifacts themselves: the pretrained model's validation MAE is on z-scored
    # corpus series (forecaster/pretrain.py), the own model's in the target's units.
    corpus_mae = json.loads((PRETRAINED / "meta.json").read_text())["validation"]["mae"]
    own_mae = json.loads((store.versions_dir / trained / "meta.json").read_text())["validation"]["mae"]
    capsys.readouterr()

    assert main(["models", "list", *args]) == 0
    out = capsys.readouterr().out
    rows = {r["version"]: r for r in parse_table(out)}
    assert rows[pretrained]["model"] == "pretrained (mlp)"
    assert rows[trained]["model"] == "mlp"
    assert (rows[trained]["mark"], rows[pretrained]["mark"]) == ("*", "")
    mae = {v: tuple(rows[v][c] for c in MAE_COLUMNS) for v in rows}
    assert mae[pretrained] == ("-", "-", f"{corpus_mae:.6g}")
    assert mae[trained] == ("1.25", f"{own_mae:.6g}", "-")
    assert "scale_free_mae: validation MAE in standard deviations of each series" in out
    assert "pinned" not in out

    assert main(["models", "list", *args, "--json"]) == 0
    by_version = {r["version"]: r for r in json.loads(capsys.readouterr().out)}
    got = by_version[pretrained]
    assert (got["model"], got["architecture"], got["validation_mae"]) == ("pretrained", "mlp", None)
    assert got["scale_free_mae"] == corpus_mae
    got = by_version[trained]
    assert (got["model"], got["validation_mae"], got["scale_free_mae"], got["holdout_mae"]) == (
        "mlp",
        own_mae,
        None,
        1.25,
    )


def test_a_series_minutes_old_is_told_its_age_and_when_it_has_enough(tmp_path: Path, capsys) -> None:
    # 101 points of 1 minute, replayed from 99 % of the file: the source's now is the 100th point, 99 minutes in.
    series = diurnal(101, "1min", seed=0, end=END)
    csv = tmp_path / "young.csv"
    pd.DataFrame({"timestamp": series.index.as_unit("s").asi8, "value": series.to_numpy()}).to_csv(csv, index=False)
    target = TargetSettings(name="cpu", query="q", window=288, history=timedelta(hours=12), model="ar")
    settings = Settings(source="csv", csv=CsvSettings(path=csv, start=0.99), model_dir=tmp_path / "m", targets=[target])
    assert main(["train", *write_config(tmp_path, settings)]) == 1
    out = capsys.readouterr().out
    # A window of AR(288) is 288 inputs and 12 targets: 300 points of 1 minute, 5 hours from the first sample.
    first = series.index[0]
    assert out.startswith("failed cpu: no holdout window of 288 + 12 points after")
    assert "the series is only 1h39m old" in out
    assert "needs 5h of history (300 steps of 1m)" in out
    assert f"one after {first + timedelta(hours=5)} has enough" in out
    assert "read more history" not in out


def test_a_history_setting_too_short_for_a_holdout_names_the_setting_and_a_value_that_works() -> None:
    # window 8 (AR reads 8) and horizon 12 fit in 30 minutes, but a 15 % holdout of them is 4.5 steps.
    short = TargetSettings(name="cpu", query="q", window=8, history=timedelta(minutes=30), model="ar")
    history = {KEY: diurnal(600, "1min", seed=0, end=END)}  # ten hours: the series is old enough
    end = END.to_pydatetime()
    with pytest.raises(ValueError, match="no holdout window") as info:
        split_holdout(history, short, end, RetrainSettings())
    message = str(info.value)
    assert "retrain.holdout_ratio 0.15 of history 30m holds 6 steps, fewer than the horizon 12" in message
    assert "read more history: raise the target's history to at least 1h20m" in message  # 12 / 0.15 = 80 steps
    assert " old" not in message
    # The advice is enough: 80 minutes of history give a holdout window.
    enough = short.model_copy(update={"history": timedelta(minutes=80)})
    _, holdout = split_holdout(history, enough, end, RetrainSettings())
    assert len(holdout.inputs) > 0
