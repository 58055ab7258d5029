"""Every benchmark runs at a tiny size and prints its table: a benchmark the docs cite cannot break unseen.

Each case runs a module of benchmarks/ with the flags that shrink it (few series, few cycles, one or two traces,
``--fast`` fits, short durations), in process where that is cheap and leaves no global state behind, else as
``python -m benchmarks.NAME``. It must exit 0, and what it prints is checked against what was asked: one row per
series count, per trace, per level. Cases that read the shared traces skip where ../shared/data is absent; cases
that need Prometheus skip without it (and fail in CI). fracast_peer needs fracast's own environment, so only its
``--help`` runs here.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import SHARED_DATA, shared_data
from .support.prometheus_server import require_prometheus

ROOT = Path(__file__).resolve().parents[1]
TRACE = "nab_ec2_cpu_24ae8d_5m"  # one of the shortest traces: 4,032 points at 5 min
OTHER = "nab_ec2_cpu_53ea38_5m"
NUMBER = r"-?\d+(?:\.\d+)?"
TIMEOUT = 300.0


def rows(out: str, first: str) -> list[list[str]]:
    """The cells of every markdown table row whose first cell is ``first``."""
    found = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            found.append(cells)
    return found


def numeric(cells: list[str]) -> bool:
    return all(re.fullmatch(NUMBER, c) for c in cells)


@dataclass(frozen=True)
class Run:
    out: str
    tmp: Path


Check = Callable[[Run], None]


@dataclass(frozen=True)
class Case:
    module: str
    argv: tuple[str, ...]
    check: Check
    in_process: bool = False
    traces: tuple[str, ...] = ()  # files of ../shared/data the case reads
    prometheus: bool = False


def check_backtest_replay(run: Run) -> None:
    from promcast.daemon.offline.backtest import LEVELS

    assert len(re.findall(r"^## level ", run.out, re.M)) == len(LEVELS)
    assert len(rows(run.out, TRACE)) == len(LEVELS) + 1  # a row per level, and one at equal replica-hours
    assert len(re.findall(r"^level .+: target met on \d of 1 traces$", run.out, re.M)) == len(LEVELS)
    assert set(json.loads((run.tmp / "out.json").read_text())) == {TRACE}


def check_daemon_bench(run: Run) -> None:
    cycle, rss = run.out.split("`promcast run` processes")
    assert len(rows(cycle, "series")) == 1  # the cycles' table, apart from the processes' table
    assert [len(rows(cycle, n)) for n in ("1", "3")] == [1, 1]
    assert all(len(r) == 7 for n in ("1", "3") for r in rows(cycle, n))
    assert all(numeric(r[1:]) for n in ("1", "3") for r in rows(cycle, n))
    assert len(rows(rss, "2")) == 1
    assert numeric(rows(rss, "2")[0][1:])


def check_first_start(run: Run) -> None:
    pattern = rf"^2 series: first forecasts after {NUMBER} s; daemon VmHWM \d+ MiB, VmRSS \d+ MiB$"
    assert re.search(pattern, run.out, re.M)


def check_gate_study(run: Run) -> None:
    from benchmarks.gate_study import VARIANTS

    assert "fitted and cached 1 traces" in run.out
    found = [r for r in (rows(run.out, label) for label in VARIANTS) if r]
    assert len(found) == len(VARIANTS)
    assert all(re.fullmatch(r"\d of 1", r[0][2]) for r in found)


def check_guard_cost(run: Run) -> None:
    pattern = rf"^observe, 10 series, median ms: without the guard {NUMBER}, with it {NUMBER}$"
    assert re.search(pattern, run.out, re.M)


def check_guard_replay(run: Run) -> None:
    (row,) = rows(run.out, TRACE)
    assert row[1] == "60"  # the origins asked for, all scored
    assert json.loads((run.tmp / "out.json").read_text())[TRACE]["origins"] == 60
    assert re.search(r"^guard <= naive on \d of 1 traces", run.out, re.M)


def check_band_replay(run: Run) -> None:
    from benchmarks.band_replay import KINDS, LEVELS

    found = rows(run.out, TRACE)
    assert [r[1] for r in found] == [f"{lv:g}" for lv in LEVELS]  # a row per level
    assert all(r[2] == "60" and numeric(r[3:]) for r in found)  # the origins asked for, all scored
    assert json.loads((run.tmp / "out.json").read_text())[TRACE]["origins"] == 60
    for kind in KINDS:
        assert re.search(rf"^{kind}: coverage in range at both levels on \d of 1 ", run.out, re.M)
    assert len(re.findall(r"^level .+: Winkler at most split-conformal's on \d of 1; ", run.out, re.M)) == len(LEVELS)


def check_nab_bursts(run: Run) -> None:
    from benchmarks.nab_bursts import SWEEP

    assert len(rows(run.out, TRACE)) == 2  # its scores, then its leave-one-out row
    assert [len(rows(run.out, d)) for d in ("promcast", "ksigma", "null")] == [1, 1, 1]
    assert len(rows(run.out, "median")) + len(rows(run.out, "least")) == 2 * len(SWEEP)
    assert re.search(r"^target \(standard profile above k-sigma's\): (met|NOT met)$", run.out, re.M)
    assert re.search(r"^above k-sigma \(standard profile\) on \d of 1 traces$", run.out, re.M)
    chosen = rf"^leave one out: above k-sigma on \d of 1 traces; over the corpus {NUMBER} against {NUMBER}$"
    assert re.search(chosen, run.out, re.M)


def check_outage_soak(run: Run) -> None:
    assert re.search(r"^first forecast after \d+ s", run.out, re.M)
    assert re.search(r"^outage \(simulated\): \S+ to \S+, 2 minutes$", run.out, re.M)
    assert re.search(rf"^first forecast after recovery: \S+, {NUMBER} s of simulated time after it$", run.out, re.M)
    assert re.search(rf"^that cycle: imputed share {NUMBER} of \d+ input points, bridged series \d+$", run.out, re.M)


def check_pretrained_unseen(run: Run) -> None:
    assert [len(rows(run.out, t)) for t in (TRACE, OTHER)] == [1, 1]
    assert all(numeric(rows(run.out, t)[0][1:]) for t in (TRACE, OTHER))
    assert re.search(r"^held out: below naive on \d of 2, below fracast on \d of 2$", run.out, re.M)


def check_zero_shot(run: Run) -> None:
    first, second = rows(run.out, TRACE)  # the accuracy table, then the intervals
    assert len(first) == 8
    assert len(second) == 3
    assert re.search(rf"NumPy runtime, one thread: predict_next_12 p50 {NUMBER} ms", run.out)


def check_zero_shot_experts(run: Run) -> None:
    from benchmarks.pretrained_zero_shot import EXPERTS

    (row,) = rows(run.out, TRACE)
    assert numeric(row[1:])
    assert len(row) == len(EXPERTS) + 3
    summaries = re.findall(r"^(\w+): geometric mean of MAE / naive .* of 1$", run.out, re.M)
    assert summaries == [*EXPERTS, "best"]


def check_zero_shot_blocks(run: Run) -> None:
    found = re.findall(rf"^round (\d) block 64: p50 {NUMBER} ms, batch {NUMBER} ms$", run.out, re.M)
    assert found == ["1", "2", "3"]


def check_serving_install(run: Run) -> None:
    assert re.search(r"^install: serving \d+ MiB, with the train extra \d+ MiB$", run.out, re.M)
    assert "1 series of 8 h at 1 min" in run.out
    modes = re.findall(r"^  (.+?)\s+first forecasts\s+\d+\.\d s; daemon VmRSS", run.out, re.M)
    assert modes == ["serving, no torch", "with torch", "train first"]


def check_soak(run: Run) -> None:
    assert len(re.findall(r"^\s+\d+ cycles: RSS ", run.out, re.M)) == 10  # a line per tenth of the cycles
    assert re.search(r"^20 cycles x 2 series in .*, 0 failed$", run.out, re.M)
    assert re.search(r"^PASS ", run.out, re.M)


def check_fracast_help(run: Run) -> None:
    assert "--traces" in run.out


DATA = str(SHARED_DATA)
SHIPPED = str(ROOT / "forecaster" / "pretrained" / "artifact")  # the shipped model, named as a candidate would be
REPLAY = ("--data", DATA, "--traces", TRACE, "--fast", "--origins", "60", "--json", "{tmp}/out.json")  # both replays
CASES = [
    pytest.param(
        Case(
            "backtest_replay",
            ("--data", DATA, "--traces", TRACE, "--fast", "--json", "{tmp}/out.json"),
            check_backtest_replay,
            in_process=True,
            traces=(TRACE,),
        ),
        id="backtest_replay",
    ),
    pytest.param(
        Case(
            "daemon_bench",
            ("--series", "1", "3", "--cycles", "2", "--rss-series", "2", "--rss-seconds", "4"),
            check_daemon_bench,
            prometheus=True,
        ),
        id="daemon_bench",
        marks=[pytest.mark.prometheus, pytest.mark.slow],
    ),
    pytest.param(
        Case("first_start", ("2",), check_first_start, prometheus=True),
        id="first_start",
        marks=pytest.mark.prometheus,
    ),
    pytest.param(
        Case("gate_study", ("--data", DATA, "--traces", TRACE, "--fast"), check_gate_study, traces=(TRACE,)),
        id="gate_study",
    ),
    pytest.param(
        Case("guard_cost", ("--series", "10", "--cycles", "25"), check_guard_cost, in_process=True),
        id="guard_cost",
    ),
    pytest.param(Case("guard_replay", REPLAY, check_guard_replay, traces=(TRACE,)), id="guard_replay"),
    pytest.param(Case("band_replay", REPLAY, check_band_replay, traces=(TRACE,)), id="band_replay"),
    pytest.param(
        Case(
            "nab_bursts",
            ("--data", DATA, "--traces", TRACE, "--fast"),
            check_nab_bursts,
            in_process=True,
            traces=(TRACE, "nab_anomaly_windows.json"),
        ),
        id="nab_bursts",
    ),
    pytest.param(
        Case("outage_soak", ("--speed", "300", "--outage-minutes", "2", "--series", "1"), check_outage_soak),
        id="outage_soak",
    ),
    pytest.param(
        Case(
            "pretrained_unseen",
            ("--data", DATA, "--traces", TRACE, OTHER, "--epochs", "1", "--mixed", "0", "--mixups", "0", "--no-corpus"),
            check_pretrained_unseen,
            traces=(TRACE, OTHER),
        ),
        id="pretrained_unseen",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        Case(
            "pretrained_zero_shot",
            ("--data", DATA, "--traces", TRACE, "--fast", "--json", "{tmp}/out.json"),
            check_zero_shot,
            traces=(TRACE,),
        ),
        id="pretrained_zero_shot",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        Case(
            "pretrained_zero_shot",
            ("--experts", "--data", DATA, "--traces", TRACE),
            check_zero_shot_experts,
            traces=(TRACE,),
        ),
        id="pretrained_zero_shot-experts",
    ),
    pytest.param(
        Case(
            "pretrained_zero_shot",
            ("--experts", "--data", DATA, "--traces", TRACE, "--artifact", SHIPPED),
            check_zero_shot_experts,
            traces=(TRACE,),
        ),
        id="pretrained_zero_shot-experts-artifact",
    ),
    pytest.param(
        Case("pretrained_zero_shot", ("--blocks", "64"), check_zero_shot_blocks),
        id="pretrained_zero_shot-blocks",
    ),
    pytest.param(
        Case("serving_install", ("1", "8", "--reads", "2"), check_serving_install, prometheus=True),
        id="serving_install",
        marks=[pytest.mark.prometheus, pytest.mark.slow],
    ),
    pytest.param(
        Case("soak", ("--cycles", "20", "--warmup", "10", "--series", "2"), check_soak),
        id="soak",
    ),
    pytest.param(
        Case("fracast_peer", ("--help",), check_fracast_help, in_process=True),
        id="fracast_peer-help",
    ),
]


def run_case(case: Case, tmp: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the benchmark with ``case.argv``, ``{tmp}`` replaced by ``tmp``."""
    argv = [a.replace("{tmp}", str(tmp)) for a in case.argv]
    if case.in_process:
        main = importlib.import_module(f"benchmarks.{case.module}").main
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's --help and its errors
                code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue(), err.getvalue()
    env = {**os.environ, "TMPDIR": str(tmp)}  # what a benchmark leaves in its temporary folders stays in tmp
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{case.module}", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", CASES)
def test_benchmark_runs_at_a_tiny_size(case: Case, tmp_path: Path) -> None:
    for name in case.traces:
        shared_data(name if "." in name else f"{name}.csv")
    if case.prometheus:
        require_prometheus()
    code, out, err = run_case(case, tmp_path)
    assert code == 0, f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
    case.check(Run(out, tmp_path))
