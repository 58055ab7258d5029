"""A tiny artifact checked into tests/fixtures guards the on-disk format: a change to it is never silent.

If this fails after an intended format change, bump FORMAT_VERSION, teach load() the old format or say why
not, and regenerate with `python -m tests.fixtures.make_fixture`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from forecaster import Forecaster

FIXTURES = Path(__file__).parent / "fixtures"


def test_checked_in_artifact_loads_and_predicts_as_recorded() -> None:
    expected = json.loads((FIXTURES / "gru_v1_expected.json").read_text())
    f = Forecaster.load(FIXTURES / "gru_v1")
    assert f.model_name == "gru" and f.window == 24 and f.horizon == 12
    out = f.predict_next_12(np.asarray(expected["input"]))
    np.testing.assert_allclose(out, expected["forecast"], rtol=1e-5, atol=1e-6)
