"""The AR baseline recovers the coefficients of a synthetic AR(2) process."""

from __future__ import annotations

import numpy as np

from promcast.forecaster import Forecaster


def test_ar_recovers_ar2_coefficients() -> None:
    rng = np.random.default_rng(0)
    n, phi1, phi2 = 20_000, 0.6, -0.3
    x = np.zeros(n)
    noise = rng.normal(0, 1, n)
    for t in range(2, n):
        x[t] = phi1 * x[t - 1] + phi2 * x[t - 2] + noise[t]
    f = Forecaster("ar", window=2, horizon=1).fit(x, step="1min")
    # The one-step prediction is phi1 * last + phi2 * previous (+ an intercept near zero).
    probes = rng.normal(0, 1, (50, 2))
    expected = phi1 * probes[:, 1] + phi2 * probes[:, 0]
    np.testing.assert_allclose(f.predict(probes)[:, 0], expected, atol=0.05)


def test_ar_order_uses_only_the_last_points() -> None:
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(0, 1, 2000))
    f = Forecaster("ar", window=10, horizon=12, order=3).fit(x, step="1min")
    a = rng.normal(0, 1, 10)
    b = a.copy()
    b[:7] += 100.0  # only the last three inputs may matter
    np.testing.assert_allclose(f.predict(a[None])[0], f.predict(b[None])[0])
