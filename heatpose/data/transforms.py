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


# Half-body rules by name: (probability of preferring the upper body, min visible upper joints,
# min visible lower joints). HRNet draws ``randn() < 0.5``, i.e. Phi(0.5) = 0.6915 (not 0.5).
HALF_BODY_RULES: dict[str, tuple[float, int, int]] = {
    "heatpose": (0.5, 3, 2),  # upper needs > 2 joints, lower >= 2; upper with >= 2 as the fallback
    "hrnet": (0.5 * (1.0 + math.erf(0.5 / math.sqrt(2.0))), 3, 3),  # JointsDataset.half_body_transform
    "mmpose": (0.7, 2, 3),  # MMPose 1.x RandomHalfBody defaults
}


@dataclass(frozen=True)
class Augmentation:
    """The official random scale / rotation / flip, plus optional half-body (HRNet / MMPose).

    Half body applies to people with more than ``half_body_min_joints`` visible joints, with
    probability ``half_body_prob``; ``half_body_rule`` picks upper or lower body (see
    :func:`choose_half_body`), its thresholds overridable (``None``: the rule's own).
    """

    scale_factor: float = 0.3
    rot_factor: float = 40.0
    rot_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.0
    half_body_min_joints: int = 8
    half_body_rule: str = "heatpose"
    half_body_upper_prob: float | None = None
    half_body_min_upper: int | None = None
    half_body_min_lower: int | None = None

    def half_body_thresholds(self) -> tuple[float, int, int]:
        """(upper preference probability, min upper joints, min lower joints) in effect."""
        if self.half_body_rule not in HALF_BODY_RULES:
            raise ValueError(f"unknown half-body rule {self.half_body_rule!r}: {', '.join(HALF_BODY_RULES)}")
        p, upper, lower = HALF_BODY_RULES[self.half_body_rule]
        return (
            p if self.half_body_upper_prob is None else self.half_body_upper_prob,
            upper if self.half_body_min_upper is None else self.half_body_min_upper,
            lower if self.half_body_min_lower is None else self.half_body_min_lower,
        )


def choose_half_body(
    rule: str, num_upper: int, num_lower: int, prefer_upper: bool, min_upper: int, min_lower: int
) -> str | None:
    """ "upper", "lower" or None (no half-body crop) for one person, as each reference decides.

    * ``hrnet`` (``JointsDataset.half_body_transform``): upper if preferred and >= ``min_upper``
      visible, else lower if >= ``min_lower``, else upper; None when the choice has < 2 joints.
    * ``mmpose`` (1.x ``RandomHalfBody``): None if both halves are short of their minimum; the
      only half that meets its minimum; else the preferred half.
    * ``heatpose`` (before the rules had names): upper if preferred and >= ``min_upper``, else
      lower, falling back to upper when lower has < ``min_lower``; None below 2 joints.

    All rules return None rather than a half with fewer than 2 visible joints (a zero-size
    box); with the references' own thresholds this changes nothing.
    """
    if rule == "mmpose":
        upper_ok, lower_ok = num_upper >= min_upper, num_lower >= min_lower
        if not upper_ok and not lower_ok:
            return None
        chosen = "upper" if (upper_ok and (prefer_upper or not lower_ok)) else "lower"
    elif rule == "hrnet":
        if prefer_upper and num_upper >= min_upper:
            chosen = "upper"
        else:
            chosen = "lower" if num_lower >= min_lower else "upper"
    elif rule == "heatpose":
        chosen = "upper" if (prefer_upper and num_upper >= min_upper) else "lower"
        if chosen == "lower" and num_lower < min_lower:
            chosen = "upper"
    else:
        raise ValueError(f"unknown half-body rule {rule!r}")
    return chosen if (num_upper if chosen == "upper" else num_lower) >= 2 else None


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
    aug: Augmentation | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Half-body crop: the box of the chosen half's visible joints, padded to the aspect ratio, x1.5.

    ``joints`` (K, 2), ``visible`` (K,). The half is chosen by ``aug``'s rule
    (:func:`choose_half_body`); one uniform draw decides the preference.
    """
    aug = aug or Augmentation()
    upper_prob, min_upper, min_lower = aug.half_body_thresholds()
    upper = [j for j in range(len(joints)) if visible[j] > 0 and j in upper_body]
    lower = [j for j in range(len(joints)) if visible[j] > 0 and j not in upper_body]
    prefer_upper = rng.random() < upper_prob
    chosen = choose_half_body(aug.half_body_rule, len(upper), len(lower), prefer_upper, min_upper, min_lower)
    if chosen is None:
        return None
    pts = joints[upper if chosen == "upper" else lower]
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
            half = half_body_center_scale(joints, visible, upper_body, aspect, rng, aug)
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
