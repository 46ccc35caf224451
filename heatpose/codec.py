"""The heatmap codec: one object owns encoding targets and decoding predictions.

Encoding is the Simple Baselines target: an unnormalised Gaussian (peak 1) per joint,
centred at the joint's heatmap position, truncated at 3 sigma, with target weight equal to
visibility and 0 when the Gaussian falls entirely off the map. ``subpixel=False`` (default)
rounds the centre to an integer pixel exactly as the official code (``int(x / stride + 0.5)``);
``subpixel=True`` keeps the exact centre so sub-pixel decoders can be unbiased.

Decoding is argmax plus a quarter-pixel step toward the higher neighbour (official), or DARK
(Zhang et al., CVPR 2020: Taylor expansion of the log of the blurred heatmap), then the
inverse of the crop's affine map back to image pixels.

``udp=True`` is Unbiased Data Processing (Huang et al., CVPR 2020): crop and heatmap
coordinates are pixel indices, heatmap = crop x ``(h - 1) / (w - 1)`` per axis, sub-pixel
Gaussian centres, and the crop itself is built the same way
(``transforms.get_affine_transform(udp=True)``), so a flip of the image, of the crop and of
the heatmap all agree and the flip test needs no shift (:func:`flip_back` with ``shift=0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from heatpose.data.transforms import PIXEL_STD


@dataclass(frozen=True)
class HeatmapCodec:
    """Shapes: keypoints (K, 2) in input-crop pixels <-> heatmaps (K, H, W).

    ``input_size`` and ``heatmap_size`` are (width, height), as in the official configs.
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float = 2.0
    subpixel: bool = False
    udp: bool = False

    @property
    def stride(self) -> np.ndarray:
        """Input pixels per heatmap pixel: ``input / heatmap`` (official) or, for UDP, the
        pixel-index ratio ``(input - 1) / (heatmap - 1)``."""
        inp = np.array(self.input_size, np.float64)
        hm = np.array(self.heatmap_size, np.float64)
        return (inp - 1.0) / (hm - 1.0) if self.udp else inp / hm

    @property
    def dark_kernel(self) -> int:
        """Blur kernel for DARK: 11 for sigma 2, 17 for sigma 3 (MMPose's settings), always odd."""
        k = round(6 * self.sigma - 1)
        return k if k % 2 == 1 else k + 1

    # ------------------------------------------------------------------ encode
    def encode(self, joints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) crop-pixel joints, (K,) visibility -> (K, H, W) float32 targets, (K,) weights."""
        w, h = self.heatmap_size
        num = len(joints)
        target = np.zeros((num, h, w), dtype=np.float32)
        weight = (np.asarray(visible) > 0).astype(np.float32)
        tmp = self.sigma * 3
        xs = np.arange(w, dtype=np.float64)
        ys = np.arange(h, dtype=np.float64)
        for j in range(num):
            if weight[j] == 0:
                continue
            mu = np.asarray(joints[j], np.float64) / self.stride
            if not (self.subpixel or self.udp):
                mu = np.trunc(mu + 0.5)  # official int(x + 0.5), which truncates toward zero
            ul = np.trunc(mu - tmp)
            br = np.trunc(mu + tmp + 1)
            if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
                weight[j] = 0
                continue
            if self.subpixel or self.udp:
                gx = np.exp(-((xs - mu[0]) ** 2) / (2 * self.sigma**2))
                gy = np.exp(-((ys - mu[1]) ** 2) / (2 * self.sigma**2))
            else:
                # The official pastes a (6 sigma + 1)^2 patch: zero beyond 3 sigma on each axis.
                gx = np.exp(-((xs - mu[0]) ** 2) / (2 * self.sigma**2)) * (np.abs(xs - mu[0]) <= tmp)
                gy = np.exp(-((ys - mu[1]) ** 2) / (2 * self.sigma**2)) * (np.abs(ys - mu[1]) <= tmp)
            target[j] = np.outer(gy, gx)
        return target, weight

    # ------------------------------------------------------------------ decode
    def decode(
        self, heatmaps: np.ndarray | torch.Tensor, method: str = "argmax"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, H, W) heatmaps -> (N, K, 2) heatmap-pixel coords and (N, K) peak values."""
        hm = _as_numpy(heatmaps)
        coords, maxvals = get_max_preds(hm)
        if method == "argmax":
            coords = quarter_offset(hm, coords)
        elif method == "dark":
            coords = dark_refine(hm, coords, self.dark_kernel)
        else:
            raise ValueError(f"unknown decode method {method!r}")
        return coords, maxvals

    def heatmap_to_image(self, coords: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Official ``transform_preds``: heatmap pixels of each crop -> original image pixels
        (with ``udp``, the pixel-index map of the UDP crop, so heatmap pixel 0 and ``w - 1`` are
        the box's two edges).

        The inverse of the unrotated :func:`get_affine_transform` in closed form, for all N crops
        at once: ``x_image = (x_heatmap - c) * image px per heatmap px + center`` with ``c`` the
        heatmap centre (``w / 2``; ``(w - 1) / 2`` for UDP).
        """
        coords = np.asarray(coords, np.float64)
        centers = np.asarray(centers, np.float64).reshape(-1, 1, 2)
        scales = np.asarray(scales, np.float64).reshape(-1, 2)
        w, h = self.heatmap_size
        if self.udp:
            steps = np.array([w - 1.0, h - 1.0])
            half = 0.5 * steps
            pixels_per_step = scales * PIXEL_STD / steps  # (N, 2): per axis
        else:
            half = 0.5 * np.array([w, h], np.float64)
            pixels_per_step = np.repeat(scales[:, :1] * PIXEL_STD / w, 2, axis=1)  # isotropic
        return (coords - half) * pixels_per_step[:, None, :] + centers

    def decode_to_image(
        self,
        heatmaps: np.ndarray | torch.Tensor,
        centers: np.ndarray,
        scales: np.ndarray,
        method: str = "argmax",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps of N crops -> (N, K, 2) image keypoints and (N, K) scores."""
        coords, maxvals = self.decode(heatmaps, method)
        return self.heatmap_to_image(coords, np.asarray(centers), np.asarray(scales)), maxvals


def _as_numpy(heatmaps: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(heatmaps, torch.Tensor):
        return heatmaps.detach().float().cpu().numpy()
    return np.asarray(heatmaps, dtype=np.float32)


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax per map; coordinates are zeroed where the peak is not positive (official)."""
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)
    coords *= (maxvals > 0.0)[..., None]
    return coords, maxvals.astype(np.float32)


def quarter_offset(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Move each peak a quarter pixel toward its higher neighbour (official post-processing).

    As in the official code, only peaks with ``1 < x < W - 1`` and ``1 < y < H - 1`` move.
    """
    h, w = heatmaps.shape[2:]
    out = coords.copy()
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    ok = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    ni, ki = np.nonzero(ok)
    x, y = px[ni, ki], py[ni, ki]
    hm = heatmaps
    dx = hm[ni, ki, y, x + 1] - hm[ni, ki, y, x - 1]
    dy = hm[ni, ki, y + 1, x] - hm[ni, ki, y - 1, x]
    out[ni, ki, 0] += np.sign(dx) * 0.25
    out[ni, ki, 1] += np.sign(dy) * 0.25
    return out


def _blur_keep_max(heatmap: np.ndarray, kernel: int) -> np.ndarray:
    border = (kernel - 1) // 2
    peak = heatmap.max()
    padded = np.pad(heatmap, border, mode="constant")
    blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
    new_peak = blurred.max()
    return blurred * (peak / new_peak) if new_peak > 0 else blurred


def dark_refine(heatmaps: np.ndarray, coords: np.ndarray, kernel: int) -> np.ndarray:
    """DARK: Newton step on the log of the Gaussian-blurred heatmap at the integer peak.

    On sub-pixel Gaussian targets the error is ~3e-4 heatmap pixels in the interior; within
    ~4 pixels of the map edge the map truncates the Gaussian and the blur's zero padding biases
    the step (errors up to ~0.2 px at 2-4 px from the edge).
    """
    h, w = heatmaps.shape[2:]
    out = coords.copy()
    for i in range(heatmaps.shape[0]):
        for j in range(heatmaps.shape[1]):
            x, y = int(coords[i, j, 0]), int(coords[i, j, 1])
            if not (1 < x < w - 2 and 1 < y < h - 2):
                continue
            hm = np.log(np.maximum(_blur_keep_max(heatmaps[i, j].astype(np.float64), kernel), 1e-10))
            dx = 0.5 * (hm[y, x + 1] - hm[y, x - 1])
            dy = 0.5 * (hm[y + 1, x] - hm[y - 1, x])
            dxx = 0.25 * (hm[y, x + 2] - 2 * hm[y, x] + hm[y, x - 2])
            dyy = 0.25 * (hm[y + 2, x] - 2 * hm[y, x] + hm[y - 2, x])
            dxy = 0.25 * (hm[y + 1, x + 1] - hm[y - 1, x + 1] - hm[y + 1, x - 1] + hm[y - 1, x - 1])
            det = dxx * dyy - dxy**2
            if det == 0:
                continue
            hessian_inv = np.array([[dyy, -dxy], [-dxy, dxx]]) / det
            out[i, j] -= hessian_inv @ np.array([dx, dy])
    return out


def flip_back(heatmaps: torch.Tensor, flip_index: list[int], shift: float = 1.0) -> torch.Tensor:
    """Heatmaps predicted on a mirrored crop -> heatmaps of the original crop.

    Mirrors the width axis, swaps left/right joints and moves the maps ``shift`` heatmap pixels
    right: 1 (or ``True``) is the official ``SHIFT_HEATMAP``; a fraction interpolates linearly
    between no shift and the one-pixel shift, for :func:`exact_flip_shift`.
    """
    shift = float(shift)
    if not 0.0 <= shift <= 1.0:
        raise ValueError(f"flip shift must be within [0, 1] heatmap pixels, got {shift}")
    out = heatmaps.flip(-1)[:, flip_index]
    if shift > 0.0:
        moved = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
        out = moved if shift == 1.0 else torch.lerp(out, moved, shift)
    return out


def exact_flip_shift(input_width: int, heatmap_width: int) -> float:
    """The right shift that aligns a flipped-back heatmap exactly: ``(s - 1) / s`` for stride s.

    With heatmap x = input x / s (the official convention), mirroring the crop sends heatmap x
    to ``(W - 1) / s - x``, while mirroring the map sends it to ``w - 1 - x``: they differ by
    0.75 px at stride 4, not the official 1 px, whose 0.25 px error is the flip bias of Huang
    et al., "The Devil is in the Details" (UDP, CVPR 2020).
    """
    stride = input_width / heatmap_width
    return (input_width - 1) / stride - (heatmap_width - 1)
