"""features_v2 against values computed by hand from the formulas of DATA §1.5 (with ``math``, float64)."""

from __future__ import annotations

import math

import numpy as np
import torch

from healda_core.obs.context import features_v2

TK_SAT = 1704067200  # 2024-01-01T00:00Z
TK_CONV = 1704088800  # 2024-01-01T06:00Z
NAN = float("nan")


def _f(a: float, k: int) -> list[float]:
    return [math.sin(j * a) for j in range(1, k + 1)] + [math.cos(j * a) for j in range(1, k + 1)]


def _run(rows: list[dict]) -> np.ndarray:
    col = lambda k, dt=torch.float32: torch.tensor([r[k] for r in rows], dtype=dt)
    return features_v2(col("tk", torch.int64), col("time_ns", torch.int64), col("lon"), col("lat"), col("h"),
                       col("p"), col("scan"), col("satzen"), col("solzen")).numpy()


def test_satellite_row():
    # obs 1.5 h after the frame time, at lon 45E: sod = 5400 s, LST = 1.5 + 3 = 4.5 h, dt = 0.0625 day
    row = dict(tk=TK_SAT, time_ns=(TK_SAT + 5400) * 10**9, lon=45.0, lat=30.0, h=NAN, p=NAN, scan=10.0,
               satzen=20.0, solzen=60.0)
    lst, dt = 4.5, 0.0625
    expect = (_f(2 * math.pi * lst / 24, 2) + [dt, dt * dt, math.sin(dt), math.cos(dt)]
              + [0.5, math.cos(math.radians(30))]
              + _f(2 * math.pi * 10 / 50, 3) + _f(2 * math.pi * 20 / 90, 4) + _f(2 * math.pi * 60 / 180, 3)
              + [0.0] * 20)
    got = _run([row])[0]
    assert got.shape == (50,)
    np.testing.assert_allclose(got, expect, rtol=0, atol=2e-6)
    assert np.all(got[30:] == 0.0)


def test_conventional_row_negative_lon_and_dt():
    # obs 2 h before 06Z at lon -90: sod = 14400, LST = (4 - 6) mod 24 = 22 h, dt = -7200/86400
    row = dict(tk=TK_CONV, time_ns=(TK_CONV - 7200) * 10**9, lon=-90.0, lat=-45.0, h=1500.0, p=850.0,
               scan=NAN, satzen=NAN, solzen=NAN)
    lst, dt = 22.0, -7200 / 86400
    expect = (_f(2 * math.pi * lst / 24, 2) + [dt, dt * dt, math.sin(dt), math.cos(dt)]
              + [math.sin(math.radians(-45)), math.cos(math.radians(-45))] + [0.0] * 20
              + _f(2 * math.pi * 1500 / 60000, 5) + _f(2 * math.pi * 850 / 1100, 5))
    got = _run([row])[0]
    np.testing.assert_allclose(got, expect, rtol=0, atol=2e-6)
    assert np.all(got[10:30] == 0.0)  # no NaN leaks from the satellite angles of a conv row


def test_clipping_and_nan_switch():
    rows = [
        dict(tk=TK_CONV, time_ns=TK_CONV * 10**9, lon=0.0, lat=0.0, h=70000.0, p=1200.0, scan=NAN, satzen=NAN,
             solzen=NAN),
        # satellite row with a NaN angle: features_v2 does not NaN-guard the satellite branch
        dict(tk=TK_SAT, time_ns=TK_SAT * 10**9, lon=0.0, lat=0.0, h=NAN, p=NAN, scan=NAN, satzen=0.0, solzen=0.0),
    ]
    got = _run(rows)
    np.testing.assert_allclose(got[0, 30:50], _f(2 * math.pi, 5) * 2, atol=2e-6)  # clip(h/60000) = clip(p/1100) = 1
    assert np.isnan(got[1, 10:16]).all() and np.isfinite(got[1, 16:30]).all()
    # LST at lon 0 is the UTC hour: 6 h for the 06Z row, 0 h for the 00Z row
    np.testing.assert_allclose(got[:, 0:4], [_f(2 * math.pi * 6 / 24, 2), _f(0.0, 2)], atol=2e-6)
