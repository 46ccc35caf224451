"""Affine person crops, their exact inverse, and the Simple Baselines training augmentation.

A crop is defined as in the official code: ``center`` (px), ``scale`` (box size / 200 px)
and a rotation in degrees; the crop's width covers ``scale[0] * 200`` source pixels and the
map is a similarity (isotropic scale, rotation, translation), so its inverse is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

PIXEL_STD = 200.0  # the official "scale unit"


def box_to_center_scale(
    box: np.ndarray | list[float], aspect_ratio: float, enlarge: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``_box2cs``: pad an (x, y, w, h) box to ``aspect_ratio`` (w/h), enlarge, unit 200 px."""
    x, y, w, h = (float(v) for v in box)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    return center, _padded_scale(w, h, aspect_ratio) * enlarge


def _padded_scale(w: float, h: float, aspect_ratio: float) -> np.ndarray:
    """Grow the short side so that w / h == aspect_ratio; in units of 200 px."""
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32)


def get_affine_transform(
    center: np.ndarray,
    scale: np.ndarray,
    rotation: float,
    output_size: tuple[int, int],
    inverse: bool = False,
    udp: bool = False,
) -> np.ndarray:
    """2x3 matrix mapping source pixels to an ``output_size`` (w, h) crop (or back, ``inverse``).

    Closed form of the official three-point construction: the crop centre is ``center``, the
    source width ``scale[0] * 200`` maps onto the output width, and the source is rotated by
    ``rotation`` degrees (counter-clockwise in image coordinates with y down, as the official).

    ``udp=True`` measures the crop in pixel-index units (Huang et al., CVPR 2020, "The Devil is
    in the Details"): ``center`` goes to the middle pixel index ``((w - 1) / 2, (h - 1) / 2)``
    and the box width ``scale[0] * 200`` (height ``scale[1] * 200``) onto ``w - 1`` (``h - 1``)
    pixel steps, per axis as MMPose's ``get_udp_warp_matrix``. Then mirroring the image about
    ``x -> W - 1 - x`` and cropping about the mirrored centre is exactly the mirrored crop
    ``x -> w - 1 - x``, and so is mirroring a heatmap built with the same convention: training
    flips, test flips and heatmap flips agree without any shift.
    """
    out_w, out_h = output_size
    rad = math.radians(rotation)
    cos, sin = math.cos(rad), math.sin(rad)
    if udp:
        sx = (out_w - 1.0) / (float(scale[0]) * PIXEL_STD)
        sy = (out_h - 1.0) / (float(scale[1]) * PIXEL_STD)
        out_center = np.array([(out_w - 1.0) * 0.5, (out_h - 1.0) * 0.5])
    else:
        sx = sy = out_w / (float(scale[0]) * PIXEL_STD)
        out_center = np.array([out_w * 0.5, out_h * 0.5])
    # dst = diag(sx, sy) @ R(-rot) @ (src - center) + out_center
    a = np.array([[sx * cos, sx * sin], [-sy * sin, sy * cos]], dtype=np.float64)
    t = out_center - a @ np.asarray(center, dtype=np.float64)
    matrix = np.concatenate([a, t[:, None]], axis=1)
    return invert_affine(matrix) if inverse else matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    a_inv = np.linalg.inv(matrix[:, :2])
    return np.concatenate([a_inv, -(a_inv @ matrix[:, 2:])], axis=1)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Transform (..., 2) points with a 2x3 matrix."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def horizontal_flip_matrix(image_width: int) -> np.ndarray:
    """x -> width - 1 - x, the official ``fliplr_joints`` convention."""
    return np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0]])


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of ``outer(inner(x))``."""
    full = np.vstack([inner, [0.0, 0.0, 1.0]])
    return outer @ full


def warp_crop(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])), flags=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Augmentation:
    """The official random scale / rotation / flip, plus optional half-body (HRNet)."""

    scale_factor: float = 0.3
    rot_factor: float = 40.0
    rot_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.0
    half_body_min_joints: int = 8


@dataclass
class CropParams:
    """Everything needed to crop one person, and to map its keypoints into the crop."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flipped: bool
    matrix: np.ndarray  # source image -> crop


def half_body_center_scale(
    joints: np.ndarray,
    visible: np.ndarray,
    upper_body: tuple[int, ...],
    aspect_ratio: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray] | None:
    """HRNet's half-body crop: the box of the upper or lower visible joints, x1.5."""
    upper = [j for j in range(len(joints)) if visible[j] > 0 and j in upper_body]
    lower = [j for j in range(len(joints)) if visible[j] > 0 and j not in upper_body]
    chosen = upper if (rng.random() < 0.5 and len(upper) > 2) else lower
    if len(chosen) < 2:
        chosen = upper
    if len(chosen) < 2:
        return None
    pts = joints[chosen]
    center = pts.mean(axis=0).astype(np.float32)
    left_top, right_bottom = pts.min(axis=0), pts.max(axis=0)
    w, h = right_bottom - left_top
    return center, _padded_scale(float(w), float(h), aspect_ratio) * 1.5


def sample_crop(
    center: np.ndarray,
    scale: np.ndarray,
    image_width: int,
    output_size: tuple[int, int],
    aug: Augmentation | None,
    rng: np.random.Generator | None,
    joints: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    upper_body: tuple[int, ...] = (),
    udp: bool = False,
) -> CropParams:
    """Draw the augmentation for one sample (or none, for ``aug=None``) and build its matrix.

    The horizontal flip is folded into the affine matrix, which is the same as the official
    "flip the image, mirror the centre, then warp", with one resampling instead of two.
    ``udp`` selects the pixel-index crop of :func:`get_affine_transform`.
    """
    center = np.asarray(center, dtype=np.float32).copy()
    scale = np.asarray(scale, dtype=np.float32).copy()
    rotation, flipped = 0.0, False
    if aug is not None:
        if rng is None:
            raise ValueError("training augmentation needs a random generator")
        aspect = output_size[0] / output_size[1]
        if (
            aug.half_body_prob > 0
            and joints is not None
            and visible is not None
            and int((visible > 0).sum()) > aug.half_body_min_joints
            and rng.random() < aug.half_body_prob
        ):
            half = half_body_center_scale(joints, visible, upper_body, aspect, rng)
            if half is not None:
                center, scale = half
        sf, rf = aug.scale_factor, aug.rot_factor
        scale = scale * float(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
        if rng.random() <= aug.rot_prob:
            rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
        flipped = bool(aug.flip and rng.random() <= 0.5)
    if flipped:
        center[0] = image_width - center[0] - 1
        matrix = compose_affine(
            get_affine_transform(center, scale, rotation, output_size, udp=udp),
            horizontal_flip_matrix(image_width),
        )
    else:
        matrix = get_affine_transform(center, scale, rotation, output_size, udp=udp)
    return CropParams(center=center, scale=scale, rotation=rotation, flipped=flipped, matrix=matrix)


def transform_keypoints(
    keypoints: np.ndarray, params: CropParams, flip_index: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Map (K, 3) image keypoints into the crop: (K, 2) coords and (K,) visibility in {0, 1}.

    Flipped samples swap left/right joints so index j still means joint j of the schema.
    """
    coords = apply_affine(keypoints[:, :2], params.matrix).astype(np.float32)
    visible = (keypoints[:, 2] > 0).astype(np.float32)
    if params.flipped:
        coords, visible = coords[flip_index], visible[flip_index]
    coords *= visible[:, None]
    return coords, visible
