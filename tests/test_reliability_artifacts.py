"""Corrupt artifacts: 100+ generated corruptions are each refused with ArtifactError, and a running daemon
keeps serving its old model through every one; nothing on the load path ever unpickles.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from promcast.daemon.app import Daemon
from promcast.daemon.models.store import ModelStore
from promcast.daemon.settings import DemoSettings, Settings, TargetSettings
from promcast.daemon.sources.demo import DEMO_QUERY, DemoSource
from promcast.forecaster import ArtifactError, Forecaster, TrainConfig
from promcast.forecaster.artifact import META_FILE, WEIGHTS_FILE, _meta_digest
from promcast.forecaster.synthetic import make_workload

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

WINDOW, STEP = 8, timedelta(minutes=1)
TINY = TrainConfig(epochs=1, max_batches=2, progress=False)
Corruption = tuple[str, Callable[[Path, Path], None]]  # (description, spoil(artifact A, artifact B))

# Meta edits: wrong types and wrong values of the fields load relies on.
EDITS: list[tuple[str, Any]] = [
    ("window", "8"), ("window", 9), ("window", -1), ("window", None), ("horizon", 11), ("horizon", "12"),
    ("model", "mlp"), ("model", None), ("model.name", "gru"), ("model.name", "no-such-model"), ("model.name", 7),
    ("model.hparams", []), ("model.hparams", None), ("model.hparams.hidden", 5), ("model.hparams.hidden", "4"),
    ("model.hparams.bogus", 1), ("scaler", None), ("scaler", "standard"), ("scaler.scale", 0),
    ("scaler.scale", -1.0), ("scaler.scale", "NaN"), ("scaler.shift", "x"), ("scaler.kind", "robust"),
    ("step_seconds", "x"), ("step_seconds", None), ("intervals", 5), ("intervals", {"widths": "wide"}),
    ("format_version", 3), ("format_version", 0), ("format_version", "2"), ("format_version", None),
    ("weights_sha256", 0), ("tensors", {}), ("tensors", None),
    ("gate", "x"), ("gate", None), ("gate", {"steps": 3}), ("gate.steps", 0), ("gate.steps", "12"), ("gate.median", 1),
    ("gate.stride", 2.0), ("gate.eta", -1.0), ("gate.floor", 0), ("input_length", 9), ("input_length", "31"),
    ("serves", "ar"), ("serves", None), ("serves", True),
]  # fmt: skip


def _fit(hidden: int) -> Forecaster:
    series = make_workload("diurnal", 300, STEP, 0)
    return Forecaster("mlp", window=WINDOW, step=STEP, training=TINY, hidden=hidden, members=1, verdict=False).fit(
        series
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pair")
    return _fit(4).save(root / "a"), _fit(6).save(root / "b")


def _meta(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / META_FILE).read_text()))


def _write_meta(path: Path, meta: dict[str, Any], reseal: bool) -> None:
    """Write meta.json; ``reseal`` recomputes its checksum, as a careless hand edit of a legacy file would be."""
    if reseal:
        meta["meta_sha256"] = _meta_digest(meta)
    (path / META_FILE).write_text(json.dumps(meta))


def _edit(field: str, value: Any, reseal: bool) -> Callable[[Path, Path], None]:
    def spoil(a: Path, _b: Path) -> None:
        meta = _meta(a)
        *parents, leaf = field.split(".")
        node = meta
        for p in parents:
            node = node[p]
        node[leaf] = value
        _write_meta(a, meta, reseal)

    return spoil


def _truncate(name: str, at: int) -> Callable[[Path, Path], None]:
    def spoil(a: Path, _b: Path) -> None:
        blob = (a / name).read_bytes()
        (a / name).write_bytes(blob[: at % len(blob)])

    return spoil


def _flip(name: str, at: int, mask: int) -> Callable[[Path, Path], None]:
    def spoil(a: Path, _b: Path) -> None:
        blob = bytearray((a / name).read_bytes())
        spots = [i for i, c in enumerate(blob) if not chr(c).isspace()] if name == META_FILE else range(len(blob))
        blob[spots[at % len(spots)]] ^= mask  # meta whitespace is no content: a flip there changes nothing
        (a / name).write_bytes(bytes(blob))

    return spoil


def _swap_weights(reseal: bool) -> Callable[[Path, Path], None]:
    def spoil(a: Path, b: Path) -> None:
        shutil.copyfile(b / WEIGHTS_FILE, a / WEIGHTS_FILE)
        if reseal:  # checksums agree: only the shapes against meta.json's hyperparameters can tell
            meta = _meta(a)
            meta["weights_sha256"] = _meta(b)["weights_sha256"]
            _write_meta(a, meta, reseal=True)

    return spoil


def _missing(name: str) -> Callable[[Path, Path], None]:
    def spoil(a: Path, _b: Path) -> None:
        if name == "both":
            for p in a.iterdir():
                p.unlink()
        elif name == "meta-is-a-folder":
            (a / META_FILE).unlink()
            (a / META_FILE).mkdir()
        else:
            (a / name).unlink()

    return spoil


def _pickled_weights(a: Path, _b: Path) -> None:
    """A pickle planted under the weights' name, with every checksum made to agree with it."""
    blob = pickle.dumps({"net.0.weight": np.ones((4, 7), dtype=np.float32)})
    (a / WEIGHTS_FILE).write_bytes(blob)
    meta = _meta(a)
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    _write_meta(a, meta, reseal=True)


def corruptions() -> list[Corruption]:
    rng = np.random.default_rng(8)
    out: list[Corruption] = []
    for name in (WEIGHTS_FILE, META_FILE):
        for _ in range(15):
            at = int(rng.integers(0, 1 << 30))
            out.append((f"truncate {name} at {at}", _truncate(name, at)))
        for _ in range(20):
            at, mask = int(rng.integers(0, 1 << 30)), int(rng.integers(1, 256))
            out.append((f"flip {name} byte {at} ^ {mask:#x}", _flip(name, at, mask)))
    for field, value in EDITS:
        for reseal in (False, True):
            out.append((f"meta {field}={value!r} resealed={reseal}", _edit(field, value, reseal)))
    for what in (WEIGHTS_FILE, META_FILE, "both", "meta-is-a-folder"):
        out.append((f"missing {what}", _missing(what)))
    out += [("swap weights from b", _swap_weights(False)), ("swap weights from b, resealed", _swap_weights(True))]
    out.append(("pickle planted as the weights", _pickled_weights))
    return out


CORRUPTIONS = corruptions()


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def call(*_: Any, **__: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} was called on the load path")

        return call

    for mod, name in ((pickle, "load"), (pickle, "loads"), (torch, "load"), (torch.serialization, "load")):
        monkeypatch.setattr(mod, name, refuse(f"{mod.__name__}.{name}"))
    yield calls
    assert not calls, calls


def test_every_corruption_is_refused_with_artifact_error(pair, tmp_path, no_unpickling) -> None:
    a, b = pair
    pristine = Forecaster.load(a)
    assert pristine.predict(np.ones((1, pristine.input_length))).shape == (1, 12)  # the pristine one loads
    silent, other = [], []
    for i, (what, spoil) in enumerate(CORRUPTIONS):
        victim = shutil.copytree(a, tmp_path / f"c{i}")
        spoil(victim, b)
        try:
            Forecaster.load(victim)
            silent.append(what)
        except ArtifactError:
            pass
        except Exception as exc:  # the point: report any other type
            other.append(f"{what}: {type(exc).__name__}: {exc}")
    print(f"\n{len(CORRUPTIONS)} corruptions: {len(CORRUPTIONS) - len(silent) - len(other)} refused with ArtifactError")
    assert len(CORRUPTIONS) >= 100
    assert not silent, f"loaded silently: {silent}"
    assert not other, f"raised another type: {other}"


def test_a_running_daemon_keeps_its_model_through_every_corrupt_current(pair, tmp_path, no_unpickling) -> None:
    a, b = pair
    target = TargetSettings(
        name="demo", query=DEMO_QUERY, step_seconds=60, window=WINDOW, history=timedelta(hours=2), model="mlp"
    )
    settings = Settings(listen="127.0.0.1:0", model_dir=tmp_path / "models")
    store = ModelStore(settings.model_dir, "demo", keep=1000)
    good = store.publish(Forecaster.load(a))
    daemon = Daemon(settings, DemoSource(DemoSettings(speed=60.0), target.step), [target], model_poll_seconds=3600)
    daemon.start()  # loads `good` on its first cycle, with unpickling refused
    try:
        assert daemon.run_once()[0].ok
        holder = daemon.holders["demo"]
        assert holder.get() is not None
        assert holder.get().version == good
        for i, (what, spoil) in enumerate(CORRUPTIONS):
            version = f"{good}-bad{i:03d}"
            shutil.copytree(a, store.versions_dir / version)
            spoil(store.versions_dir / version, b)
            store.promote(version)
            daemon.reload_models()
            served = holder.get()
            assert served is not None, what
            assert served.version == good, what
        rejected = daemon.registry.get_sample_value(
            "promcast_model_swaps_total", {"target": "demo", "result": "rejected"}
        )
        print(f"\ndaemon: {rejected:.0f} corrupt `current` artifacts rejected, still serving {good}")
        assert rejected == len(CORRUPTIONS)
        result = daemon.run_once()[0]
        assert result.ok
        assert result.version == good
    finally:
        daemon.shutdown()
