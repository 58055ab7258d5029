"""First-start training runs in a child process: the daemon stays lean, and a failed fit is reported, not fatal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.models.training import longest_history
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.daemon.types import SeriesKey
from promcast.forecaster import Forecaster

from .support.http import samples

_SPEC: dict = {
    "name": "demo",
    "query": DEMO_QUERY,
    "step_seconds": 60,
    "window": 24,
    "history": "P1D",
    "epochs": 2,
    "model": "mlp",
    "hparams": {"hidden": 8, "members": 1},
}


def _target(**changes: object) -> TargetSettings:
    return TargetSettings(**{**_SPEC, **changes})


class NewMetric(DemoSource):
    """A metric that began 20 steps ago: too little history for one window of 24 inputs and 12 targets."""

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        return {k: v.iloc[-20:] for k, v in super().fetch(target, start, end).items()}


def _daemon(tmp_path: Path, target: TargetSettings, source: type[DemoSource] = DemoSource) -> Daemon:
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models")
    return Daemon(settings, source(DemoSettings(series=2), target.step), [target])


def _errors(daemon: Daemon, stage: str) -> float:
    text = daemon.metrics.exposition().decode()
    return sum(v for labels, v in samples(text, "promcast_errors_total") if labels["stage"] == stage)


def test_first_start_trains_in_a_child_and_the_daemon_never_imports_torch(tmp_path: Path) -> None:
    # A fresh interpreter that imports only the daemon, so that nothing else brings torch into sys.modules.
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from promcast.daemon.app import Daemon
        from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
        from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
        target = TargetSettings(**json.loads({json.dumps(_SPEC)!r}))
        settings = Settings(listen="127.0.0.1:0", model_dir=Path({str(tmp_path)!r}) / "models")
        daemon = Daemon(settings, DemoSource(DemoSettings(series=2), target.step), [target])
        first, second = daemon.run_once()[0], daemon.run_once()[0]
        print(json.dumps({{"ok": first.ok and second.ok, "version": first.version, "series": len(second.keys),
                           "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["ok"]
    assert answer["version"]
    assert answer["series"] == 2
    # The child trains; the daemon serves the default model through NumPy (forecaster.numpy_runtime): about 180 MB of
    # torch, and torch.optim's 71 MB more, never load in the daemon's process.
    assert answer["torch"] == [], f"the daemon process imported {answer['torch'][:5]}"
    store = ModelStore(tmp_path / "models", "demo")
    assert store.current_version() == answer["version"]
    assert Forecaster.load(store.current_path()).window == 24


def test_a_fit_the_child_refuses_is_a_counted_train_error_and_nothing_is_published(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, _target(), NewMetric)
    result = daemon.run_once()[0]
    assert not result.ok
    assert str(result.error).startswith("no model: cannot train the first model: ValueError: ")
    assert _errors(daemon, "train") == 1
    assert ModelStore(tmp_path / "models", "demo").current_version() is None


def test_a_child_that_dies_is_a_counted_error_and_the_next_cycle_tries_again(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, _target())
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "demo").write_text("not a folder")  # the child cannot create the store
    assert not daemon.run_once()[0].ok
    assert _errors(daemon, "train") == 1
    (tmp_path / "models" / "demo").unlink()
    result = daemon.run_once()[0]
    assert result.ok
    assert result.version is not None


class Recorded:
    """A Source over fixed series that records how many samples each answer held."""

    def __init__(self, data: dict[SeriesKey, pd.Series]) -> None:
        self.data, self.answers = data, []

    def now(self) -> datetime:
        return datetime(2026, 1, 2, tzinfo=UTC)

    def fetch(self, target: TargetSettings, start: datetime, end: datetime) -> dict[SeriesKey, pd.Series]:
        out = {k: s[(s.index >= start) & (s.index <= end)] for k, s in self.data.items()}
        out = {k: s for k, s in out.items() if len(s)}
        self.answers.append(sum(len(s) for s in out.values()))
        return out


def test_first_start_reads_the_longest_series_in_chunks_that_respect_the_budget() -> None:
    end = datetime(2026, 1, 2, tzinfo=UTC)
    index = pd.date_range(end=end, periods=1440, freq="1min")
    data: dict[SeriesKey, pd.Series] = {
        (("pod", f"p{i:02d}"),): pd.Series(np.arange(1440.0), index=index).iloc[300 + i :] for i in range(1, 40)
    }
    longest = pd.Series(np.arange(1440.0), index=index).drop(index[700:705])  # a short gap, still the longest
    data[(("pod", "p99"),)] = longest
    source = Recorded(data)
    got = longest_history(source, _target(), end, budget=2000)
    assert list(got) == [(("pod", "p99"),)]
    pd.testing.assert_series_equal(got[(("pod", "p99"),)], longest, check_freq=False)
    # 40 series: chunks of 2000 // 40 = 50 steps, so no answer holds more than 40 x 50 samples.
    assert max(source.answers) <= 2000
    assert len(source.answers) > 2 * 1440 // 50


def test_first_start_trains_on_this_replicas_series_only() -> None:
    end = datetime(2026, 1, 2, tzinfo=UTC)
    index = pd.date_range(end=end, periods=1440, freq="1min")
    full = pd.Series(np.arange(1440.0), index=index)
    source = Recorded({(("pod", "a"),): full, (("pod", "b"),): full.iloc[-100:]})
    mine = lambda d: {k: v for k, v in d.items() if k == (("pod", "b"),)}  # noqa: E731
    got = longest_history(source, _target(), end, mine)
    assert list(got) == [(("pod", "b"),)]
    assert len(got[(("pod", "b"),)]) == 100
