"""Dense optical flow between consecutive frames (OpenCV DIS by default, Farneback selectable).

Why a classical flow: the paper used FlowNet2-S, a 38M-parameter network; DIS (Kroeger et al.,
ECCV 2016) runs at hundreds of frames per second on a CPU and needs no weights, which keeps the
tracker dependency-free and fast. The tracker asks for one flow per frame pair and never
recomputes it: it moves every queued pose by the newest flow as soon as it exists, so only that
one flow is ever kept, however long the queue L_Q (see tracker.py).

A flow ``f`` from frame ``a`` to frame ``b`` is (H, W, 2) float32: the pixel at (x, y) in ``a``
is at (x + f[y, x, 0], y + f[y, x, 1]) in ``b``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from heatpose.errors import HeatposeError

FLOW_METHODS = ("dis", "farneback")


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def make_flow(method: str = "dis", scale: float = 1.0) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function ``flow(prev_frame, frame) -> (H, W, 2)`` for BGR or grey frames.

    ``scale`` < 1 computes the flow on frames resized by that factor (faster; the vectors are
    scaled back and the field resized to the full frame).
    """
    if method not in FLOW_METHODS:
        raise HeatposeError(f"unknown optical flow {method!r}; known: {', '.join(FLOW_METHODS)}")
    if not 0.05 <= scale <= 1.0:
        raise HeatposeError(f"flow scale must be in [0.05, 1], got {scale!r}")
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

        def raw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return dis.calc(a, b, None)

    else:

        def raw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def flow(prev_frame: np.ndarray, frame: np.ndarray) -> np.ndarray:
        a, b = _gray(prev_frame), _gray(frame)
        if a.shape != b.shape:
            raise HeatposeError(f"frames differ in size: {a.shape} then {b.shape}")
        h, w = a.shape
        if scale == 1.0:
            return raw(a, b).astype(np.float32, copy=False)
        size = (max(round(w * scale), 8), max(round(h * scale), 8))
        small = raw(
            cv2.resize(a, size, interpolation=cv2.INTER_AREA),
            cv2.resize(b, size, interpolation=cv2.INTER_AREA),
        )
        full = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        full[..., 0] *= w / size[0]
        full[..., 1] *= h / size[1]
        return full

    return flow
