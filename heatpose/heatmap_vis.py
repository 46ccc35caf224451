"""Pictures of predicted heatmaps, so a user can see why a joint went wrong.

A wrong keypoint is usually one of three things: a second peak (the other wrist), a flat map
(the joint is not visible and the network is guessing), or a peak at the crop's edge (the box
cut the person). All three are obvious in a picture of the heatmap and invisible in numbers.

* :func:`overlay_heatmaps` draws each person's heatmaps (the maximum over joints, or one joint)
  back onto the full image through the inverse of the crop's affine map, as a colour map
  blended over the photo;
* :func:`crop_heatmap_picture` shows one crop beside its heatmaps for the Python API.

Shapes: ``image`` (H, W, 3) uint8 BGR (as OpenCV reads and writes); ``heatmaps`` (N, K, h, w)
or (K, h, w) float; ``centers``/``scales`` (N, 2) in the official centre/scale convention.
"""

from __future__ import annotations

import cv2
import numpy as np

from heatpose.data.transforms import get_affine_transform
from heatpose.errors import HeatposeError


def _select(heatmaps: np.ndarray, joint: int | None) -> np.ndarray:
    """(K, h, w) -> (h, w): one joint's map, or the maximum over joints."""
    if joint is None:
        return heatmaps.max(axis=0)
    if not 0 <= joint < heatmaps.shape[0]:
        raise HeatposeError(f"joint {joint} is out of range: the model predicts {heatmaps.shape[0]} heatmaps")
    return heatmaps[joint]


def _colorize(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 BGR with the JET colour map."""
    return cv2.applyColorMap((np.clip(values, 0.0, 1.0) * 255).astype(np.uint8), cv2.COLORMAP_JET)


def overlay_heatmaps(
    image: np.ndarray,
    heatmaps: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    joint: int | None = None,
    udp: bool = False,
    alpha: float = 0.6,
) -> np.ndarray:
    """The image with every person's heatmap warped back onto it and blended in (a new array).

    Where people overlap the larger value wins. Heatmap values are clipped to [0, 1] (the
    targets' range); ``alpha`` is the colour map's weight where the heatmap is 1.
    """
    hm = np.asarray(heatmaps, np.float32)
    if hm.ndim == 3:
        hm = hm[None]
    if hm.ndim != 4:
        raise HeatposeError(f"heatmaps must be (N, K, h, w) or (K, h, w), got shape {hm.shape}")
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    scales = np.asarray(scales, np.float64).reshape(-1, 2)
    if not len(hm) == len(centers) == len(scales):
        raise HeatposeError(f"{len(hm)} heatmap sets for {len(centers)} centres and {len(scales)} scales")
    h, w = image.shape[:2]
    canvas = np.zeros((h, w), np.float32)
    size = (hm.shape[3], hm.shape[2])
    for maps, center, scale in zip(hm, centers, scales, strict=True):
        to_image = get_affine_transform(center, scale, 0.0, size, inverse=True, udp=udp)
        warped = cv2.warpAffine(_select(maps, joint), to_image, (w, h), flags=cv2.INTER_LINEAR)
        canvas = np.maximum(canvas, warped)
    weight = (np.clip(canvas, 0.0, 1.0) * alpha)[..., None]
    out = image.astype(np.float32) * (1.0 - weight) + _colorize(canvas).astype(np.float32) * weight
    return out.round().astype(np.uint8)


def crop_heatmap_picture(crop: np.ndarray, heatmaps: np.ndarray, joint: int | None = None) -> np.ndarray:
    """One crop (h_in, w_in, 3) beside the same crop with its heatmaps blended in: (h_in, 2 w_in, 3)."""
    hm = _select(np.asarray(heatmaps, np.float32), joint)
    h_in, w_in = crop.shape[:2]
    up = cv2.resize(hm, (w_in, h_in), interpolation=cv2.INTER_LINEAR)
    weight = (np.clip(up, 0.0, 1.0) * 0.6)[..., None]
    blended = crop.astype(np.float32) * (1.0 - weight) + _colorize(up).astype(np.float32) * weight
    return np.concatenate([crop, blended.round().astype(np.uint8)], axis=1)
