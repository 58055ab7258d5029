"""An operator's rollback pins the version it chose: the pin is a file in the store, so it survives a restart; no
retrain of the daemon (the first own model, drift, cron) promotes over it, each says so in one log line; and
`promcast models unpin` releases it, after which the promotion rule decides again."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from structlog.testing import capture_logs

from promcast.daemon.app import Daemon
from promcast.daemon.cli import main
from promcast.daemon.models.store import PIN_FILE, ModelStore
from promcast.daemon.settings import CsvSettings, DemoSettings, Settings, TargetSettings
from promcast.daemon.sources import make_source
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.forecaster import PRETRAINED, Forecaster, TrainConfig
from promcast.forecaster.synthetic import diurnal

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

END = pd.Timestamp("2024-03-01T12:00:00Z")
# AR: fitted in closed form, so each retrain child takes seconds and decides the same way every time.
TARGET = TargetSettings(name="cpu", query="workload_cpu", window=32, history=timedelta(hours=12), model="ar")


def events(lines: list[dict], name: str) -> list[dict]:
    return [x for x in lines if x.get("event") == name]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A recorded diurnal series replayed from near its end: the retrain children read the same file."""
    series = diurnal(2000, "1min", seed=0, end=END)
    csv = tmp_path / "cpu.csv"
    pd.DataFrame({"timestamp": series.index.as_unit("s").asi8, "value": series.to_numpy()}).to_csv(csv, index=False)
    return Settings(
        source="csv",
        csv=CsvSettings(path=csv, start=0.99),
        model_dir=tmp_path / "models",
        listen="127.0.0.1:0",
        log_format="json",
        targets=[TARGET],
    )


def cli(settings: Settings, tmp_path: Path) -> list[str]:
    config = tmp_path / "promcast.yaml"
    config.write_text(json.dumps(settings.model_dump(mode="json")))
    return ["--target", settings.targets[0].name, "--config", str(config)]


def off_level_model() -> Forecaster:
    """An AR fitted on another series (level 1000, in 2020): it loads and serves for the target, and the promotion
    rule would replace it at once, since any challenger fitted on the target beats it by far."""
    rng = np.random.default_rng(0)
    index = pd.date_range("2020-01-01", periods=400, freq="1min", tz="UTC")
    return Forecaster("ar", window=32, horizon=12, step="60s").fit(pd.Series(1000 + rng.normal(size=400), index))


def test_a_rollback_survives_a_restart_and_no_retrain_promotes_over_it_until_unpin(
    settings: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    args = cli(settings, tmp_path)
    store = ModelStore(settings.model_dir, "cpu")
    chosen = store.publish(off_level_model())
    newer = store.publish(Forecaster("ar", window=32, horizon=12, step="60s").fit(diurnal(600, "1min", seed=3)))
    assert main(["models", "rollback", *args, "--to", chosen]) == 0
    assert f"{newer} -> {chosen}" in capfd.readouterr().out
    assert json.loads((store.dir / PIN_FILE).read_text())["version"] == chosen  # a plain file in the store

    # A fresh daemon: the file is all that is left of the rollback.
    daemon = Daemon(settings, make_source(settings), settings.targets)
    with capture_logs() as logs:
        (result,) = daemon.run_once()
    assert result.ok, result.error
    assert result.version == chosen
    (start_up,) = events(logs, "pin_holds")
    assert start_up["pinned"] == chosen

    # The own model's training (what ModelLife.on_own_model starts) and a cron retrain: each child trains and scores,
    # and `current` stays the operator's choice.
    capfd.readouterr()
    daemon.retrain_in_background("cpu", "the pretrained model serves this target", "first").join()
    assert daemon.retrain("cpu", "cron") == 0
    assert store.current_version() == chosen
    held = events(json_lines(capfd.readouterr().err), "pin_holds")
    assert [x["pinned"] for x in held] == [chosen, chosen]
    reports = [store.decision(run) for run in store.decisions()]
    assert [(r["trigger"], r["decision"], r["pinned"], r["version"]) for r in reports if r] == [
        ("first", "keep", chosen, None),
        ("cron", "keep", chosen, None),
    ]
    assert all("the rule would promote" in r["reason"] for r in reports if r)
    assert [x["skipped"] for x in held] == [f"promoting run {r['run']}" for r in reports if r]
    assert store.versions() == [chosen, newer]  # a held challenger is not saved
    daemon.reload_models()
    served = daemon.holders["cpu"].get()
    assert served is not None
    assert served.version == chosen

    # `models list` says so, and how to release it.
    assert main(["models", "list", *args]) == 0
    listing = capfd.readouterr().out
    assert f"pinned: {chosen} by promcast models rollback" in listing
    assert "promcast models unpin --target cpu" in listing

    # Released: the next retrain is the promotion rule's alone again.
    assert main(["models", "unpin", *args]) == 0
    assert f"unpinned cpu: {chosen} stays current" in capfd.readouterr().out
    assert not (store.dir / PIN_FILE).exists()
    assert daemon.retrain("cpu", "cron") == 0
    promoted = store.current_version()
    assert promoted not in (chosen, newer)
    report = store.decision_of(promoted or "")
    assert report is not None
    assert (report["decision"], report["pinned"], report["trigger"]) == ("promote", None, "cron")
    assert not events(json_lines(capfd.readouterr().err), "pin_holds")


def test_a_rollback_to_the_pretrained_model_holds_at_the_next_start(tmp_path: Path, capsys) -> None:
    target = TargetSettings(name="demo", query=DEMO_QUERY, history=timedelta(days=1))  # the pretrained model fits
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models", targets=[target])
    args = cli(settings, tmp_path)
    store = ModelStore(settings.model_dir, "demo")
    pretrained = store.install(PRETRAINED)
    tiny = TrainConfig(epochs=1, max_batches=2, progress=False)
    own = Forecaster("mlp", window=288, horizon=12, step="60s", training=tiny, hidden=4, members=1)
    promoted = store.publish(own.fit(diurnal(900, "1min", seed=1)))
    assert main(["models", "rollback", *args]) == 0  # the one before: the pretrained model
    assert f"{promoted} -> {pretrained}" in capsys.readouterr().out

    daemon = Daemon(settings, DemoSource(DemoSettings(series=2), target.step), [target])
    asked: list[str] = []
    daemon.jobs["demo"].life.on_own_model = lambda name, why: asked.append(name)
    with capture_logs() as logs:
        (result,) = daemon.run_once()
    assert result.ok, result.error
    assert result.version == pretrained
    assert daemon.metrics.snapshot()[1]["demo"].model == "pretrained"
    (held,) = events(logs, "pin_holds")
    assert (held["pinned"], held["by"]) == (pretrained, "promcast models rollback")
    # The own model is still trained and scored (the retrain then keeps the pin, as the test above shows).
    assert asked == ["demo"]
    assert store.current_version() == pretrained


def test_promcast_train_by_hand_keeps_the_pin_and_an_unreadable_pin_still_holds(
    settings: Settings, tmp_path: Path, capsys
) -> None:
    args = cli(settings, tmp_path)
    store = ModelStore(settings.model_dir, "cpu")
    chosen = store.publish(off_level_model())
    store.publish(Forecaster("ar", window=32, horizon=12, step="60s").fit(diurnal(600, "1min", seed=3)))
    assert main(["models", "rollback", *args, "--to", chosen]) == 0
    capsys.readouterr()
    assert main(["train", *args]) == 0  # by hand, or from the timer or CronJob: trigger "manual"
    out = capsys.readouterr().out
    assert out.startswith(f"kept cpu version {chosen}: the operator's pin on {chosen} holds")
    assert "the rule would promote: challenger MAE" in out
    assert store.current_version() == chosen

    (store.dir / PIN_FILE).write_text('{"version": ')  # cut short, by hand or a full disk: it still holds
    assert main(["train", *args]) == 0
    assert capsys.readouterr().out.startswith(f"kept cpu version {chosen}: an unreadable {PIN_FILE} holds")
    assert store.current_version() == chosen
    assert main(["models", "list", *args]) == 0
    assert f"pinned: {store.dir / PIN_FILE} is not a readable pin" in capsys.readouterr().out
    assert main(["models", "unpin", *args]) == 0
    assert not (store.dir / PIN_FILE).exists()
