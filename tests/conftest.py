"""Shared fixtures: small seeded series and a fast training configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import structlog

from promcast.forecaster import TrainConfig
from promcast.forecaster.synthetic import bursty, diurnal

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

FAST = TrainConfig(epochs=3, batch_size=128, patience=2, seed=0, progress=False)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture
def fast() -> TrainConfig:
    return FAST


@pytest.fixture
def seasonal() -> pd.Series:
    """Five days at a 10-minute step: a daily cycle of 144 steps with noise."""
    return diurnal(720, "10min", seed=3)


@pytest.fixture
def spiky() -> pd.Series:
    return bursty(720, "10min", seed=4)


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared traces sit beside the repository only on the team's machines")
    return path
