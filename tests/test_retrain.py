"""The retrain job without Prometheus: holdout split, the gate, reports, the store, the CLI, and SIGKILL safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promcast.daemon.cli import main
from promcast.daemon.models.retrain import RetrainBusy, _locked, decide, retrain, split_holdout
from promcast.daemon.models.retrain_runner import child_env
from promcast.daemon.models.serving import validate_for_target
from promcast.daemon.models.store import ModelStore, holdout_maes
from promcast.daemon.settings import ConfigError, RetrainSettings, TargetSettings, load_settings
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster
from promcast.forecaster.synthetic import diurnal

END = pd.Timestamp("2024-03-01T12:00:00Z")
WINDOW = 32
TARGET = TargetSettings(
    name="cpu",
    query="workload_cpu",
    window=WINDOW,
    history=timedelta(hours=12),
    model="ar",  # closed-form and deterministic; on this series the tiny networks do not beat naive
)
A: SeriesKey = (("instance", "a"),)
B: SeriesKey = (("instance", "b"),)


class FakeSource:
    """Two diurnal series ending at END, cut to the asked range like Prometheus does."""

    def __init__(self) -> None:
        a = diurnal(2000, "1min", seed=0, end=END)
        self.data = {A: a, B: 0.5 * a + 10.0}

    def now(self) -> datetime:
        return END.to_pydatetime() + timedelta(seconds=5)

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        return {k: s[(s.index >= start) & (s.index <= end)] for k, s in self.data.items()}


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models", "cpu", keep=3)


def scores(challenger: float, naive: float, champion: float | None) -> dict:
    return {
        "challenger": {"mae": challenger},
        "naive": {"mae": naive},
        "champion": None if champion is None else {"mae": champion},
    }


@pytest.mark.parametrize(
    ("s", "want", "why"),
    [
        (scores(1.0, 2.0, None), "promote", "no usable champion"),
        (scores(2.0, 2.0, None), "keep", "does not beat naive"),
        (scores(0.5, 0.4, 10.0), "keep", "does not beat naive"),  # beating the champion is not enough
        (scores(2.0 - 1e-9, 2.0, None), "keep", "does not beat naive"),  # naive's MAE up to rounding: a tie
        (scores(2.0 + 1e-9, 2.0, 2.5), "promote", "ties naive"),  # it serves naive; the champion loses to naive
        (scores(2.0, 2.0, 2.01), "keep", "does not beat naive"),  # that champion is within the margin of naive
        (scores(0.97, 2.0, 1.0), "promote", "gain 3.00% > margin 2.00%"),
        (scores(0.99, 2.0, 1.0), "keep", "gain 1.00% <= margin 2.00%"),
        (scores(1.10, 2.0, 1.0), "keep", "gain -10.00%"),
    ],
)
def test_the_gate(s: dict, want: str, why: str) -> None:
    decision, reason = decide(s, margin=0.02)
    assert decision == want
    assert why in reason


def test_holdout_is_the_most_recent_part_and_never_trained_on() -> None:
    source, rs = FakeSource(), RetrainSettings(holdout_ratio=0.25, max_holdout_windows=1000)
    end = source.now()
    history = source.fetch(TARGET, end - TARGET.history, end)
    train, h = split_holdout(history, TARGET, end, rs)
    assert h.cut == pd.Timestamp("2024-03-01T09:00:00Z")  # 12 h of history, the last quarter held out
    assert all(s.index.max() < h.cut for s in train.values())
    # Every scored target lies at or after the cut; its inputs are the window just before it.
    a = history[A]
    first_targets = a[a.index >= h.cut].to_numpy()
    assert h.series == 2
    assert h.inputs.shape == (len(h.targets), WINDOW)
    assert h.targets.shape[1] == 12
    np.testing.assert_allclose(h.targets[0], first_targets[:12])
    np.testing.assert_allclose(h.inputs[0], a[a.index < h.cut].to_numpy()[-WINDOW:])


def test_promotes_into_an_empty_store_then_keeps_a_challenger_short_of_the_margin(store: ModelStore) -> None:
    rs = RetrainSettings()
    first = retrain(TARGET, FakeSource(), store, rs)
    assert first.decision == "promote"
    assert store.current_version() == first.version
    report = store.decision_of(first.version)
    assert report is not None
    assert report["champion_error"] == "no current model"
    assert set(report["scores"]) == {"challenger", "champion", "naive", "ar"}
    assert report["scores"]["champion"] is None
    assert report["holdout"]["windows"] > 0
    assert report["refit_on_holdout"] is False

    second = retrain(TARGET, FakeSource(), store, RetrainSettings(margin=0.5))
    assert second.decision == "keep"
    assert second.version is None
    assert store.current_version() == first.version
    assert store.versions() == [first.version]
    latest = store.latest_decision()
    assert latest is not None
    assert latest["decision"] == "keep"
    assert latest["champion_version"] == first.version
    maes = holdout_maes(store, first.version)
    assert maes["champion"] == latest["scores"]["champion"]["mae"]
    assert maes["challenger"] == latest["scores"]["challenger"]["mae"]


def test_dry_run_writes_nothing_and_a_held_lock_refuses_a_second_run(store: ModelStore) -> None:
    result = retrain(TARGET, FakeSource(), store, RetrainSettings(), dry_run=True)
    assert result.decision == "promote"
    assert result.version is None
    assert store.versions() == []
    assert store.decisions() == []
    with _locked(store), pytest.raises(RetrainBusy):
        retrain(TARGET, FakeSource(), store, RetrainSettings())


def test_an_unusable_champion_is_named_and_replaced(store: ModelStore) -> None:
    wrong = Forecaster("ar", window=WINDOW + 1, horizon=12, step="60s").fit(diurnal(300, "1min", seed=1))
    old = store.publish(wrong)
    result = retrain(TARGET, FakeSource(), store, RetrainSettings())
    assert result.decision == "promote"
    assert "no usable champion" in result.reason
    assert "unusable" in result.report["champion_error"]
    assert result.report["champion_version"] == old


def write_config(tmp_path: Path, **extra: object) -> Path:
    config = {"targets": [TARGET.model_dump(mode="json")], "model_dir": str(tmp_path / "models"), **extra}
    path = tmp_path / "promcast.yaml"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--target", "nope"], "no target 'nope'"),
        (["models", "list", "--target", "nope"], "no target 'nope'"),
        (["train", "--target", "cpu", "--margin", "1.5"], "margin"),
    ],
)
def test_bad_settings_exit_2(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert main([*argv, "--config", str(write_config(tmp_path))]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_cron_is_a_config_error(tmp_path: Path) -> None:
    bad = TARGET.model_dump(mode="json") | {"retrain_cron": "every day"}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"targets": [bad]}))
    with pytest.raises(ConfigError, match="retrain_cron"):
        load_settings(path)


def test_train_without_prometheus_fails_with_exit_1(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, prometheus={"url": "http://127.0.0.1:9", "retries": 0, "timeout_seconds": 1})
    assert main(["train", "--target", "cpu", "--config", str(config)]) == 1
    assert capsys.readouterr().out.startswith("failed cpu:")


def test_models_list_and_rollback(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    st = ModelStore(tmp_path / "models", "cpu")
    args = ["--target", "cpu", "--config", str(config)]
    assert main(["models", "rollback", *args]) == 1  # nothing to roll back to
    first = retrain(TARGET, FakeSource(), st, RetrainSettings()).version
    second = st.publish(Forecaster("ar", window=WINDOW, horizon=12, step="60s").fit(diurnal(300, "1min", seed=1)))
    capsys.readouterr()
    assert main(["models", "list", *args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["current"]) for r in rows] == [(second, True), (first, False)]
    assert rows[1]["holdout_mae"] > 0
    assert rows[1]["validation_mae"] > 0
    assert rows[0]["holdout_mae"] is None
    assert main(["models", "rollback", *args]) == 0
    assert st.current_version() == first
    assert main(["models", "rollback", *args, "--to", "nope"]) == 1
    assert st.current_version() == first
    assert main(["models", "rollback", *args, "--to", second]) == 0
    assert st.current_version() == second


def test_prune_keeps_the_newest_and_the_current(store: ModelStore) -> None:
    f = Forecaster("naive", window=WINDOW, horizon=12, step="60s").fit(diurnal(100, "1min", seed=1))
    made = [store.publish(f) for _ in range(5)]
    assert store.versions() == made[-3:]
    store.promote(made[2])  # the oldest one kept
    newer = [store.save(f), store.save(f)]
    assert store.prune() == [made[3]]
    assert store.versions() == [made[2], made[4], *newer]


def test_the_child_process_sees_the_daemons_settings_secrets_included(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PROMCAST_PROMETHEUS__BEARER_TOKEN", "s3cret")
    settings = load_settings(write_config(tmp_path, retrain={"margin": 0.1}))
    for key, value in child_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PROMCAST_PROMETHEUS__BEARER_TOKEN")
    again = load_settings()
    assert again.prometheus.bearer_token is not None
    assert again.prometheus.bearer_token.get_secret_value() == "s3cret"
    assert again.targets == settings.targets
    assert again.retrain.margin == 0.1
    assert again.model_dir == settings.model_dir


# A writer that publishes in a loop in forked children, each killed with SIGKILL after a random delay.
# Forking from one process that imported torch once keeps 50 kills well under a minute.
KILLER = """
import os, random, signal, sys, time
import torch
torch.set_num_threads(1)  # no thread pool in the parent: forking is safe
from pathlib import Path
from promcast.daemon.models.store import ModelStore, holdout_maes
from promcast.forecaster import Forecaster
f, store = Forecaster.load(sys.argv[1]), ModelStore(Path(sys.argv[2]), "cpu", keep=3)
rng = random.Random(int(sys.argv[3]))
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        while True:
            store.publish(f, decision={"decision": "promote"})
    time.sleep(rng.uniform(0.0, 0.15))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("killed", flush=True)
"""


def test_sigkill_at_random_points_of_a_write_always_leaves_a_loadable_current(tmp_path: Path) -> None:
    f = Forecaster("ar", window=WINDOW, horizon=12, step="60s").fit(diurnal(300, "1min", seed=1))
    f.save(tmp_path / "seed")
    st = ModelStore(tmp_path / "models", "cpu", keep=3)
    st.publish(f)
    cmd = [sys.executable, "-c", KILLER, str(tmp_path / "seed"), str(tmp_path / "models"), "7"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdin is not None
    assert proc.stdout is not None
    versions, leftovers = set(), 0
    try:
        for _ in range(50):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == "killed\n"
            current = st.current_path()  # never a dangling link, never a half-written folder
            validate_for_target(Forecaster.load(current), TARGET)
            versions.add(current.name)
            leftovers += any(p.name.startswith(".") for d in (st.dir, st.versions_dir) for p in d.iterdir())
    finally:
        proc.kill()
        proc.wait()
    assert len(versions) > 10, "the writer made progress between kills"
    assert leftovers > 0, "some kills landed in the middle of a write"
    assert len(st.versions()) <= 3 + 2  # pruning kept up, a kill may leave one or two extra


def test_the_daemon_counts_the_retrains_it_did_not_start_once_each(store: ModelStore) -> None:
    from promcast.daemon.app import Daemon
    from promcast.daemon.settings import Settings

    source, rs = FakeSource(), RetrainSettings()
    retrain(TARGET, source, store, rs)  # before the daemon started: never counted
    settings = Settings(listen="127.0.0.1:0", model_dir=store.dir.parent, targets=[TARGET])
    daemon = Daemon(settings, source, [TARGET])

    def manual() -> float | None:
        daemon.reload_models(only_changed=True)  # the model poll
        return daemon.registry.get_sample_value("promcast_retrains_total", {"target": "cpu", "reason": "manual"})

    assert manual() == 0
    assert retrain(TARGET, source, store, rs).report["trigger"] == "manual"  # promcast train by hand, or a timer
    assert manual() == 1
    assert manual() == 1  # counted once
    retrain(TARGET, source, store, rs, trigger="cron")  # one the daemon started: counted when it started it
    assert manual() == 1
    retrain(TARGET, source, store, rs, dry_run=True)  # a dry run writes no report
    retrain(TARGET, source, store, rs)
    assert manual() == 2
