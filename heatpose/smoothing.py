"""Temporal smoothing of keypoint tracks: the One-Euro filter (online) and Savitzky-Golay (offline).

Why: per-frame pose estimates jitter by a pixel or two even when a person stands still, and
users who drive an animation or measure a joint angle over time want steady curves without
lag on fast motion. Smoothing runs per track and per joint coordinate, never across tracks.

* :class:`OneEuroFilter` (Casiez, Roussel, Vogel, "1 Euro Filter: A Simple Speed-based Low-pass
  Filter for Noisy Input in Interactive Systems", CHI 2012): an exponential smoother whose
  cutoff frequency rises with the signal's speed, ``cutoff = min_cutoff + beta * |dx/dt|``, so
  slow motion is smoothed hard (low jitter) and fast motion passes with little lag. Time comes
  from the frames' timestamps (seconds), so a variable frame rate is handled; a gap longer
  than ``max_gap`` seconds (the track was lost) or a missing joint restarts that joint's filter.
* :func:`savgol_smooth`: a Savitzky-Golay filter (least-squares polynomial in a sliding window,
  ``scipy.signal.savgol_filter``) over whole runs of consecutive frames, for files processed
  offline, where looking ahead removes the lag entirely.
* :func:`jitter` and :func:`keypoint_error`: the two numbers that choose the defaults (mean
  acceleration magnitude and mean distance to ground truth).

Shapes: a track is a sequence of frames; per frame keypoints are (K, 2) pixels, NaN where a
joint is missing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from heatpose.errors import HeatposeError


def _alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """Smoothing factor of an exponential filter with the given cutoff (Hz) at time step dt (s)."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """One-Euro filter over (K, D) arrays (K joints, D coordinates), one instance per track.

    ``min_cutoff`` (Hz): smoothing at rest, lower = smoother; ``beta``: how fast the cutoff grows
    with speed (px/s), higher = less lag; ``d_cutoff`` (Hz): cutoff of the speed estimate;
    ``max_gap`` (s): a longer pause between two calls restarts the filter (a lost track).
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0
    max_gap: float = 0.5
    _x: np.ndarray | None = field(default=None, init=False, repr=False)
    _dx: np.ndarray | None = field(default=None, init=False, repr=False)
    _t: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_one_euro_params(self.min_cutoff, self.beta, self.d_cutoff)
        if not self.max_gap > 0:
            raise HeatposeError(f"One-Euro max_gap must be > 0 seconds, got {self.max_gap}")

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter the sample ``x`` (K, D) taken at time ``t`` seconds; returns the smoothed (K, D).

        Entries that are NaN in ``x`` stay NaN and restart their own filter at the next value.
        """
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or not (0 < t - self._t <= self.max_gap):
            if self._t is not None and t <= self._t:
                raise HeatposeError(f"One-Euro filter: timestamps must increase, got {t} after {self._t}")
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        fresh = np.isnan(self._x) & ~np.isnan(x)  # joint reappears: restart it
        dx = np.where(fresh, 0.0, (x - self._x) / dt)
        a_d = _alpha(self.d_cutoff, dt)
        dx_hat = np.where(fresh, 0.0, a_d * dx + (1.0 - a_d) * self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = np.where(fresh, x, a * x + (1.0 - a) * self._x)
        self._x, self._dx, self._t = x_hat, np.nan_to_num(dx_hat), float(t)
        return x_hat.copy()


def check_one_euro_params(min_cutoff: float, beta: float, d_cutoff: float) -> None:
    if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0 and math.isfinite(beta)):
        raise HeatposeError(
            f"One-Euro parameters need min_cutoff > 0, d_cutoff > 0, beta >= 0; "
            f"got {min_cutoff}, {d_cutoff}, {beta}"
        )


def one_euro_smooth(
    keypoints: np.ndarray,
    times: Sequence[float] | np.ndarray,
    min_cutoff: float = 1.0,
    beta: float = 0.0,
    d_cutoff: float = 1.0,
    max_gap: float = 0.5,
) -> np.ndarray:
    """Run a fresh :class:`OneEuroFilter` over one track: (T, K, D) at ``times`` (T,) -> (T, K, D)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if len(keypoints) == 0:
        return keypoints.copy()
    f = OneEuroFilter(min_cutoff, beta, d_cutoff, max_gap)
    return np.stack([f(x, float(t)) for x, t in zip(keypoints, times, strict=True)])


def _runs(frames: np.ndarray) -> list[slice]:
    """Slices of consecutive frame indices (a gap of one missing frame or more splits a run)."""
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    bounds = [0, *breaks.tolist(), len(frames)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def savgol_smooth(
    keypoints: np.ndarray, frames: Sequence[int] | np.ndarray, window: int = 9, polyorder: int = 2
) -> np.ndarray:
    """Savitzky-Golay smoothing of one track, (T, K, D) at frame indices (T,) -> (T, K, D).

    Each run of consecutive frames is smoothed on its own (never across a gap); a run shorter
    than the window uses the largest odd window that fits, and runs too short for the
    polynomial are returned unchanged. NaN (missing) joints split runs per joint the same way.
    """
    from scipy.signal import savgol_filter

    if window < 3 or window % 2 == 0 or not 0 <= polyorder < window:
        raise HeatposeError(
            f"Savitzky-Golay needs an odd window >= 3 and 0 <= polyorder < window; got {window}, {polyorder}"
        )
    kp = np.asarray(keypoints, dtype=np.float64)
    frames = np.asarray(frames, dtype=np.int64)
    out = kp.copy()
    flat = kp.reshape(len(kp), -1)
    res = out.reshape(len(kp), -1)
    for c in range(flat.shape[1]):
        ok = ~np.isnan(flat[:, c])
        idx = np.flatnonzero(ok)
        for run in _runs(frames[idx]):
            rows = idx[run]
            n = len(rows)
            w = min(window, n if n % 2 else n - 1)
            if w <= polyorder or w < 3:
                continue
            res[rows, c] = savgol_filter(flat[rows, c], w, polyorder, mode="interp")
    return out


def jitter(keypoints: np.ndarray) -> float:
    """Mean acceleration magnitude in px/frame^2: mean over t, k of ``|x[t+1] - 2 x[t] + x[t-1]|``.

    ``keypoints`` is (T, K, 2) of consecutive frames; NaN entries are left out. NaN when T < 3.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if len(kp) < 3:
        return math.nan
    acc = np.linalg.norm(kp[2:] - 2 * kp[1:-1] + kp[:-2], axis=-1)
    return float(np.nanmean(acc)) if np.isfinite(acc).any() else math.nan


def keypoint_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean Euclidean distance (px) between predicted and GT keypoints, (..., 2) each; NaN skipped."""
    d = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    return float(np.nanmean(d)) if np.isfinite(d).any() else math.nan
