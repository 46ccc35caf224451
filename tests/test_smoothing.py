"""Temporal smoothing: One-Euro against a hand computation, jitter reduction, Savitzky-Golay runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heatpose.errors import HeatposeError
from heatpose.smoothing import OneEuroFilter, jitter, keypoint_error, one_euro_smooth, savgol_smooth


def _hand_one_euro(xs, ts, min_cutoff, beta, d_cutoff):
    """The CHI 2012 paper's algorithm written out for scalars."""

    def alpha(cutoff, dt):
        tau = 1 / (2 * math.pi * cutoff)
        return 1 / (1 + tau / dt)

    out, x_prev, dx_prev, t_prev = [], None, 0.0, None
    for x, t in zip(xs, ts, strict=True):
        if x_prev is None:
            x_hat = x
        else:
            dt = t - t_prev
            dx = (x - x_prev) / dt
            dx_hat = alpha(d_cutoff, dt) * dx + (1 - alpha(d_cutoff, dt)) * dx_prev
            cutoff = min_cutoff + beta * abs(dx_hat)
            x_hat = alpha(cutoff, dt) * x + (1 - alpha(cutoff, dt)) * x_prev
            dx_prev = dx_hat
        out.append(x_hat)
        x_prev, t_prev = x_hat, t
    return out


def test_one_euro_matches_hand_computation_on_1d_signal():
    xs = [0.0, 1.0, 3.0, 2.5, 2.7, 6.0]
    ts = [0.0, 0.1, 0.2, 0.35, 0.4, 0.5]  # uneven steps: time comes from timestamps
    expected = _hand_one_euro(xs, ts, min_cutoff=1.0, beta=0.5, d_cutoff=1.2)
    got = one_euro_smooth(np.array(xs)[:, None, None], ts, min_cutoff=1.0, beta=0.5, d_cutoff=1.2)
    np.testing.assert_allclose(got[:, 0, 0], expected, rtol=0, atol=1e-12)
    # first value at t=0.1 written out: a_d = 1/(1 + 1/(2 pi 1.2)/0.1), dx_hat = 10 a_d, ...
    a_d = 1 / (1 + (1 / (2 * math.pi * 1.2)) / 0.1)
    cutoff = 1.0 + 0.5 * 10 * a_d
    assert got[1, 0, 0] == pytest.approx(1 / (1 + (1 / (2 * math.pi * cutoff)) / 0.1), abs=1e-12)


def test_one_euro_reduces_jitter_on_noisy_track():
    rng = np.random.default_rng(0)
    t = np.arange(120) / 30.0
    truth = np.stack([100 + 40 * np.sin(t), 80 + 10 * t], axis=-1)[:, None, :]  # (T, 1, 2)
    noisy = truth + rng.normal(0, 1.5, truth.shape)
    smooth = one_euro_smooth(noisy, t, min_cutoff=1.0, beta=0.05)
    assert jitter(smooth) < 0.35 * jitter(noisy)
    assert keypoint_error(smooth[10:], truth[10:]) < keypoint_error(noisy[10:], truth[10:])


def test_one_euro_restarts_after_a_gap_and_for_missing_joints():
    f = OneEuroFilter(min_cutoff=0.5, beta=0.0, max_gap=0.2)
    f(np.array([[0.0, 0.0]]), 0.0)
    assert f(np.array([[10.0, 10.0]]), 0.1)[0, 0] < 10.0  # smoothed
    np.testing.assert_array_equal(f(np.array([[50.0, 50.0]]), 1.0), [[50.0, 50.0]])  # gap: restart
    out = f(np.array([[np.nan, 1.0]]), 1.05)
    assert math.isnan(out[0, 0])
    np.testing.assert_array_equal(f(np.array([[7.0, 1.0]]), 1.1)[0, 0], 7.0)  # joint back: restart
    with pytest.raises(HeatposeError, match="timestamps must increase"):
        f(np.array([[1.0, 1.0]]), 1.1)
    with pytest.raises(HeatposeError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)


def test_savgol_keeps_lines_and_never_crosses_gaps():
    frames = np.array([0, 1, 2, 3, 4, 5, 6, 10, 11, 12])
    line = np.stack([frames * 2.0, frames * -1.0], axis=-1)[:, None, :]
    np.testing.assert_allclose(savgol_smooth(line, frames, window=5, polyorder=1), line, atol=1e-9)
    rng = np.random.default_rng(1)
    noisy = line + rng.normal(0, 1, line.shape)
    out = savgol_smooth(noisy, frames, window=5, polyorder=2)
    # the 3-frame run after the gap is smoothed with a window of 3 >= polyorder + 1 -> exact fit
    np.testing.assert_allclose(out[7:], noisy[7:], atol=1e-9)
    assert not np.allclose(out[:7], noisy[:7])
    with pytest.raises(HeatposeError, match="odd window"):
        savgol_smooth(line, frames, window=4)


def test_jitter_of_constant_velocity_is_zero():
    kp = np.stack([np.arange(5.0), np.arange(5.0) * 2], axis=-1)[:, None, :]
    assert jitter(kp) == pytest.approx(0.0)
    assert math.isnan(jitter(kp[:2]))
