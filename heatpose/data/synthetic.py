"""A zero-download keypoint dataset: procedurally drawn articulated people in COCO format.

Why: tests, tutorials, ablations and benchmarks need a pose dataset that exists without a
download, is byte-for-byte reproducible from a seed, and is hard enough that a heatmap network
has to learn body parts (clutter, distractor sticks, occlusion, truncation, rotation) while
staying learnable by a small network in minutes.

What is drawn
    Each image has a cluttered background (gradient, low-frequency noise, rectangles, circles,
    lines, polygons, noise blobs, striped patches and limb-like distractor sticks) and 1-3 people
    drawn back to front (smaller people first, mostly). A person is a torso, neck, head, ears,
    upper/lower arms, hands, thighs, shins and feet; limbs are shaded, anti-aliased capsules
    with a dark rim (the contour that keeps an arm visible over a shirt of its own colour).
    Proportions, limb thickness, clothing colours and textures (solid / stripes / noise), pose
    (standing, walking, arms raised, waving, crouching, seated), facing, head tilt/yaw and a
    global rotation (mostly within +-30 degrees) are random. Sometimes a foreground occluder
    (box, pole, blob) is drawn over the people. Mild colour jitter, blur and noise, then JPEG
    quality 95.

Left/right cue (decidable from pixels, and consistent with horizontal flips)
    Left and right follow from which way a person faces, as in real photos. 80% face the camera:
    a face (eyes, nose, mouth) under a hair cap, a V-neck and a row of buttons, and their left
    side on the image right. The rest are seen from behind: hair over the whole head, no face,
    a dark collar, and their left side on the image left. Every marking is left/right symmetric
    on purpose: a one-sided marking (say, bands on the left limbs only) turns into a right-side
    marking under flip augmentation and flip testing, so a network could not learn it and flip
    testing would swap joints. Limb textures (solid, noise, stripes) are per person and the same
    on both sides.

Keypoints and visibility flags (COCO convention)
    Coordinates are float pixels, pixel (i, j) centred at (i, j) (the cv2 / Simple Baselines
    convention). Body joints sit on the limb axes at the joint centres, ``head_top`` just inside
    the top of the head, ``upper_neck`` at the chin end of the neck, ``thorax`` between the
    shoulders, ``pelvis`` between the hips; eyes, nose and ears sit at the drawn features.
    - 0: the joint is outside the image; then x = y = 0.
    - 1: inside the image but its pixel is covered by a person drawn later or by an occluder. The
      nose and eyes of a person seen from behind are also 1, labelled where they would be, because
      COCO labels occluded-but-inferable points.
    - 2: otherwise. A person's own parts never hide its joints (arms are drawn over the torso).

Files written by :func:`write_synthetic_dataset`
    ``images/<split>/000000000001.jpg``..., ``annotations/person_keypoints_<split>.json`` (official
    COCO keypoint format: ``bbox`` is the box of the person's whole drawn silhouette inside the
    image, ``area`` and the RLE ``segmentation`` are its visible part) and, for ``layout="mpii"``,
    ``annotations/mpii_<split>.json``: the official Simple Baselines MPII list format. Like the
    official file it is 1-based (MATLAB): ``joints``, ``center`` and ``headbox`` are the COCO
    coordinates + 1, and the official reader subtracts 1. ``scale`` is the larger side of the
    person's whole (unclipped) extent / 200, ``center`` that extent's centre, ``joints_vis`` is 1
    for every joint inside the image (visible or occluded, as MPII's "annotated"), and joints
    outside the image are ``[-1, -1]``.

Image ``i`` of a split comes from ``np.random.default_rng([seed, crc32(split_name), i])``, so
any image can be regenerated on its own (:func:`render_synthetic_image`), splits written with
the same seed never share images, and the ``coco`` and ``mpii`` layouts of one seed draw the
same pixels. Same seed, same machine: byte-identical files (other CPUs / OpenCV builds may
round a few pixels differently). How hard the data is is set by the ``_P_*`` / ``_*_RANGE``
constants below ("difficulty knobs").
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_bytes, atomic_write_json
from heatpose.keypoints import COCO17, MPII16, KeypointSchema

LAYOUTS: dict[str, KeypointSchema] = {"coco": COCO17, "mpii": MPII16}

# Every joint the body model knows: the COCO-17 joints, then the four MPII-only ones.
BODY_JOINTS: tuple[str, ...] = (*COCO17.joint_names, "pelvis", "thorax", "upper_neck", "head_top")
_J = {name: i for i, name in enumerate(BODY_JOINTS)}
_HIDDEN_WHEN_BACK = (_J["nose"], _J["left_eye"], _J["right_eye"])

# Difficulty knobs: what a network trained on this data has to cope with. Calibrated so that the
# laptop config (configs/synthetic/res18_128x96_*) is neither at its ceiling nor hopeless after
# 15 minutes of CPU training; docs/results.md records what each setting measured.
_PEOPLE_PER_IMAGE = {1: 0.5, 2: 0.3, 3: 0.2}
_HEIGHT_RANGE = (0.4, 0.9)  # person standing height / image height
_P_FRONT = 0.8  # faces the camera; else seen from behind
_P_UPRIGHT = 0.97  # rotated N(0, 10) deg clipped to +-30; else uniform in +-90
_P_OCCLUDER = 0.1  # images with 1-2 foreground occluders
_CLUTTER_SHAPES = (4, 12)  # [low, high) background shapes per image
_DISTRACTOR_STICKS = (0, 3)  # [low, high) limb-like sticks per image
_MIN_VISIBLE_AREA = 0.5  # each person keeps this fraction of its in-image silhouette visible
_MIN_VISIBLE_JOINTS = 0.7  # ... and this fraction of its in-image joints visible
_MIN_JOINTS_IN_FRAME = 0.6  # fraction of a person's joints inside the image
_RIM_PX = 1.5  # width of the dark contour drawn along every limb
_SKIN = np.array(
    [[0.71, 0.82, 0.96], [0.55, 0.69, 0.87], [0.42, 0.57, 0.76], [0.30, 0.42, 0.60], [0.20, 0.29, 0.43]],
    np.float32,
)  # BGR


# ----------------------------------------------------------------------------- drawing


class _Layer:
    """A colour image and its coverage; people are drawn into their own layer, then composited."""

    def __init__(self, color: np.ndarray, alpha: np.ndarray, noise: np.ndarray, light: float) -> None:
        self.color, self.alpha, self.noise, self.light = color, alpha, noise, light
        self.h, self.w = alpha.shape

    @classmethod
    def empty(cls, h: int, w: int, noise: np.ndarray, light: float) -> _Layer:
        return cls(np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32), noise, light)

    def window(self, bounds: tuple[float, float, float, float]):
        """The pixel window covering ``bounds`` (x0, y0, x1, y1) and its x / y coordinates."""
        x0, y0, x1, y1 = bounds
        ix0, iy0 = max(math.floor(x0) - 1, 0), max(math.floor(y0) - 1, 0)
        ix1, iy1 = min(math.ceil(x1) + 2, self.w), min(math.ceil(y1) + 2, self.h)
        if ix0 >= ix1 or iy0 >= iy1:
            return None
        xs = np.arange(ix0, ix1, dtype=np.float32)[None, :]
        ys = np.arange(iy0, iy1, dtype=np.float32)[:, None]
        return (slice(iy0, iy1), slice(ix0, ix1)), xs, ys

    def paint(self, sl: tuple[slice, slice], a: np.ndarray, col: np.ndarray) -> None:
        a3 = a[..., None]
        self.color[sl] = self.color[sl] * (1.0 - a3) + col * a3
        self.alpha[sl] = self.alpha[sl] + a * (1.0 - self.alpha[sl])


@dataclass
class _Style:
    """How a part is coloured: base colour and texture."""

    color: np.ndarray
    texture: str = "solid"  # solid | noise | stripes
    stripe_color: np.ndarray | None = None
    stripe_period: float = 6.0
    stripe_phase: float = 0.0


def _contrast(color: np.ndarray) -> np.ndarray:
    """A stripe colour that stands out against ``color``."""
    lum = float(color @ np.array([0.114, 0.587, 0.299], np.float32))
    return np.full(3, 0.08 if lum > 0.45 else 0.95, np.float32)


def _textured(layer: _Layer, sl, style: _Style, shade: np.ndarray, along: np.ndarray) -> np.ndarray:
    col = np.broadcast_to(style.color, (*shade.shape, 3)) * shade[..., None]
    if style.texture == "noise":
        col = col * (1.0 + 0.22 * layer.noise[sl])[..., None]
    elif style.texture == "stripes" and style.stripe_color is not None:
        phase = along * (2 * np.pi / style.stripe_period) + style.stripe_phase
        s = np.clip(np.sin(phase) * 3 + 0.5, 0, 1)[..., None]
        col = col * (1 - s) + style.stripe_color * shade[..., None] * s
    return col


def _draw_capsule(layer: _Layer, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, style: _Style) -> None:
    """A shaded, tapered, anti-aliased capsule (stripes run across it)."""
    r = max(r0, r1)
    lo, hi = np.minimum(p0, p1) - r, np.maximum(p0, p1) + r
    win = layer.window((lo[0], lo[1], hi[0], hi[1]))
    if win is None:
        return
    sl, xs, ys = win
    d = p1 - p0
    length = max(float(np.hypot(d[0], d[1])), 1e-3)
    ux, uy = float(d[0]) / length, float(d[1]) / length
    dx, dy = xs - float(p0[0]), ys - float(p0[1])
    along = dx * ux + dy * uy
    across = dy * ux - dx * uy
    t = np.clip(along / length, 0.0, 1.0)
    dist = np.hypot(along - t * length, across)
    rad = r0 + (r1 - r0) * t
    a = np.clip(rad - dist + 0.5, 0.0, 1.0)
    if not a.any():
        return
    n = np.clip(across / rad, -1.0, 1.0)
    # A dark rim about a pixel wide: the occluding contour that separates a limb from a torso
    # (or limb) of the same colour drawn behind it, as shading and shadow do in photographs.
    rim = np.clip(dist - rad + _RIM_PX, 0.0, 1.0)
    shade = (1.08 - 0.35 * n * n + 0.12 * layer.light * n) * (1.0 - 0.45 * rim)
    layer.paint(sl, a, _textured(layer, sl, style, shade, along))


def _ellipse_frame(layer: _Layer, c: np.ndarray, ax: float, ay: float, angle: float):
    """Window, normalised ellipse coordinates (u right, v down) and coverage of a rotated ellipse."""
    r = max(ax, ay)
    win = layer.window((c[0] - r, c[1] - r, c[0] + r, c[1] + r))
    if win is None:
        return None
    sl, xs, ys = win
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = xs - float(c[0]), ys - float(c[1])
    u = (dx * ca + dy * sa) / ax
    v = (dy * ca - dx * sa) / ay
    rho = np.sqrt(u * u + v * v)
    a = np.clip((1.0 - rho) * min(ax, ay) + 0.5, 0.0, 1.0)
    if not a.any():
        return None
    return sl, u, v, rho, a


def _draw_ellipse(layer: _Layer, c: np.ndarray, ax: float, ay: float, angle: float, style: _Style) -> None:
    frame = _ellipse_frame(layer, c, ax, ay, angle)
    if frame is None:
        return
    sl, u, v, rho, a = frame
    shade = 1.05 - 0.25 * rho * rho + 0.1 * layer.light * np.clip(u, -1, 1)
    layer.paint(sl, a, _textured(layer, sl, style, shade, v * ay))


def _draw_head(
    layer: _Layer,
    c: np.ndarray,
    ax: float,
    ay: float,
    angle: float,
    skin: np.ndarray,
    hair: np.ndarray,
    front: bool,
    hairstyle: float,
) -> None:
    """The head ellipse: skin with a hair cap when facing the camera, all hair when seen from behind."""
    frame = _ellipse_frame(layer, c, ax, ay, angle)
    if frame is None:
        return
    sl, u, v, rho, a = frame
    shade = (1.05 - 0.25 * rho * rho + 0.1 * layer.light * np.clip(u, -1, 1))[..., None]
    hairline = -0.55 + hairstyle + 0.55 * u * u if front else 0.75
    h = np.clip((hairline - v) * ay, 0.0, 1.0)[..., None]
    col = (skin * (1 - h) + hair * h) * shade
    layer.paint(sl, a, col)


def _draw_polygon(layer: _Layer, pts: np.ndarray, style: _Style, frame: tuple[np.ndarray, ...]) -> None:
    """A convex anti-aliased polygon (the torso), shaded across ``frame``'s axis."""
    win = layer.window((*pts.min(0), *pts.max(0)))
    if win is None:
        return
    sl, xs, ys = win
    mask = np.zeros((sl[0].stop - sl[0].start, sl[1].stop - sl[1].start), np.uint8)
    shifted = np.round((pts - [sl[1].start, sl[0].start]) * 16).astype(np.int32)
    cv2.fillConvexPoly(mask, shifted, 255, cv2.LINE_AA, 4)
    a = mask.astype(np.float32) / 255.0
    if not a.any():
        return
    origin, ex, ey, half_w, _ = frame
    dx, dy = xs - float(origin[0]), ys - float(origin[1])
    n = np.clip((dx * ex[0] + dy * ex[1]) / half_w, -1.3, 1.3)
    along = dx * ey[0] + dy * ey[1]
    shade = 1.08 - 0.25 * n * n + 0.12 * layer.light * n
    col = _textured(layer, sl, style, shade, along)
    layer.paint(sl, a, col)


# ----------------------------------------------------------------------------- people


@dataclass
class _Person:
    """One drawn person: joints in image pixels, draw calls in z-order, extents."""

    joints: np.ndarray  # (len(BODY_JOINTS), 2)
    front: bool
    ops: list[Callable[[_Layer], None]]
    extent: tuple[float, float, float, float]  # x0, y0, x1, y1 of all parts, unclipped
    headbox: tuple[float, float, float, float]


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0.2, 1.0) * 255, rng.uniform(0.25, 1.0) * 255]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32) / 255.0


def _sample_limbs(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Joint angles in degrees per side: arm abduction/elbow, leg abduction/knee, foreshortening."""
    modes = {"stand": 0.36, "walk": 0.16, "arms_up": 0.1, "wave": 0.14, "crouch": 0.12, "sit": 0.12}
    mode = rng.choice(list(modes), p=list(modes.values()))
    waving = "left" if rng.random() < 0.5 else "right"
    pose: dict[str, dict[str, float]] = {}
    for side in ("left", "right"):
        arm = {"a": rng.uniform(5, 40), "b": rng.uniform(-35, 35), "fa": 1.0, "ff": 1.0}
        if mode == "walk":
            arm.update(a=rng.uniform(-5, 30), b=rng.uniform(-70, 10))
        elif mode == "arms_up":
            arm.update(a=rng.uniform(95, 175), b=rng.uniform(-45, 45))
        elif mode == "wave" and side == waving:  # upper arm out, forearm up
            arm.update(a=rng.uniform(50, 110), b=rng.uniform(40, 110))
        if rng.random() < 0.2:  # forearm across the body
            arm.update(a=rng.uniform(10, 45), b=rng.uniform(-150, -90))
        if rng.random() < 0.3:  # pointing towards / away from the camera
            arm.update(fa=rng.uniform(0.6, 1.0), ff=rng.uniform(0.6, 1.0))
        leg = {"h": rng.uniform(-4, 12), "k": rng.uniform(-8, 8), "ft": 1.0, "fs": rng.uniform(0.92, 1.0)}
        if mode == "walk":
            leg.update(h=rng.uniform(-8, 16), k=rng.uniform(-25, 25), ft=rng.uniform(0.75, 1.0))
        elif mode == "crouch":
            h = rng.uniform(25, 60)
            leg.update(h=h, k=-h + rng.uniform(-20, 10), ft=rng.uniform(0.45, 0.8))
        elif mode == "sit":
            h = rng.uniform(5, 40)
            leg.update(h=h, k=-h + rng.uniform(-10, 15), ft=rng.uniform(0.15, 0.4))
        pose[side] = {**{f"arm_{k}": v for k, v in arm.items()}, **{f"leg_{k}": v for k, v in leg.items()}}
    return pose


def _sample_person(rng: np.random.Generator, height: float, anchor: np.ndarray) -> _Person:
    """A random person of standing height ``height`` px with its pelvis at ``anchor``."""
    H = height
    front = bool(rng.random() < _P_FRONT)
    lx = 1.0 if front else -1.0  # body-frame x sign of the person's left side

    def jit(lo: float = 0.9, hi: float = 1.1) -> float:
        return float(rng.uniform(lo, hi))

    torso_len, sh_w, hip_w, neck_len = (f * H * jit() for f in (0.30, 0.115, 0.065, 0.045))
    seg = {"ua": 0.165 * H * jit(), "fa": 0.155 * H * jit(), "th": 0.245 * H * jit(), "sh": 0.24 * H * jit()}
    thick = jit(0.8, 1.25)
    rad = {"ua": 0.038 * H * thick, "fa": 0.031 * H * thick, "th": 0.056 * H * thick, "sh": 0.042 * H * thick}
    rx, ry = 0.05 * H * jit(), 0.066 * H * jit()
    pose = _sample_limbs(rng)

    upright = rng.random() < _P_UPRIGHT
    theta = float(np.clip(rng.normal(0, 10), -30, 30) if upright else rng.uniform(-90, 90))
    R = _rot(math.radians(theta))

    def T(p) -> np.ndarray:
        return anchor + R @ np.asarray(p, np.float64)

    def unit(deg: float, sgn: float) -> np.ndarray:
        r = math.radians(deg)
        return np.array([sgn * math.sin(r), math.cos(r)])

    b: dict[str, np.ndarray] = {"pelvis": np.zeros(2), "thorax": np.array([0.0, -torso_len])}
    extras: dict[str, np.ndarray] = {}
    for side, sgn in (("left", lx), ("right", -lx)):
        p = pose[side]
        sh = np.array([sgn * sh_w, -torso_len + 0.03 * H])
        elbow = sh + seg["ua"] * p["arm_fa"] * unit(p["arm_a"], sgn)
        fdir = unit(p["arm_a"] + p["arm_b"], sgn)
        wrist = elbow + seg["fa"] * p["arm_ff"] * fdir
        hip = np.array([sgn * hip_w, 0.0])
        knee = hip + seg["th"] * p["leg_ft"] * unit(p["leg_h"], sgn)
        sdir = unit(p["leg_h"] + p["leg_k"], sgn)
        ankle = knee + seg["sh"] * p["leg_fs"] * sdir
        b.update({f"{side}_shoulder": sh, f"{side}_elbow": elbow, f"{side}_wrist": wrist})
        b.update({f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle})
        extras[f"{side}_hand"] = wrist + fdir * 0.04 * H
        extras[f"{side}_foot"] = ankle + sdir * 0.025 * H + np.array([sgn * 0.015 * H, 0.0])

    tilt_n, tilt_h = math.radians(rng.normal(0, 6)), math.radians(rng.normal(0, 8))
    b["upper_neck"] = b["thorax"] + neck_len * np.array([math.sin(tilt_n), -math.cos(tilt_n)])
    up_h = np.array([math.sin(tilt_h), -math.cos(tilt_h)])
    head_c = b["upper_neck"] + up_h * ry * 0.8
    b["head_top"] = head_c + up_h * (ry - max(0.08 * ry, 1.0))  # just inside, even on tiny heads
    extras["head_c"] = head_c
    eu, ev = np.array([math.cos(tilt_h), math.sin(tilt_h)]), -up_h  # head frame: right, down

    def head_pt(u: float, v: float) -> np.ndarray:
        return head_c + u * rx * eu + v * ry * ev

    yaw = float(rng.uniform(-0.3, 0.3)) if front else 0.0
    for side, sgn in (("left", lx), ("right", -lx)):
        b[f"{side}_eye"] = head_pt(0.9 * math.sin(sgn * 0.42 + yaw), -0.08)
        b[f"{side}_ear"] = head_pt(sgn * 1.0, 0.08)
    b["nose"] = head_pt(0.9 * math.sin(yaw), 0.3)

    joints = np.stack([T(b[name]) for name in BODY_JOINTS])
    img = {k: T(v) for k, v in b.items()}
    img.update({k: T(v) for k, v in extras.items()})
    head_angle = math.radians(theta) + tilt_h
    look = _Look.sample(rng, H)
    ops, bounds = _person_ops(img, rad, H, rx, ry, head_angle, front, look, rng)
    ext = np.array(bounds)
    extent = (*ext[:, :2].min(0).tolist(), *ext[:, 2:].max(0).tolist())
    hx = math.hypot(rx * math.cos(head_angle), ry * math.sin(head_angle))
    hy = math.hypot(rx * math.sin(head_angle), ry * math.cos(head_angle))
    hc = T(head_c)
    return _Person(
        joints=joints,
        front=front,
        ops=ops,
        extent=extent,
        headbox=(float(hc[0] - hx), float(hc[1] - hy), float(hc[0] + hx), float(hc[1] + hy)),
    )


@dataclass
class _Look:
    """A person's colours and textures."""

    skin: np.ndarray
    hair: np.ndarray
    shirt: _Style
    pants: _Style
    shoes: np.ndarray
    sleeves: int  # 0 none, 1 short, 2 long
    shorts: bool
    hairstyle: float
    limb_texture: str = "solid"
    stripe_phase: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, H: float) -> _Look:
        skin = _SKIN[rng.integers(len(_SKIN))] * np.float32(rng.uniform(0.9, 1.1))
        hair = (
            np.float32(rng.uniform(0.05, 0.45))
            * np.array([0.8, 0.9, 1.1], np.float32)
            * rng.uniform(0.8, 1.2, 3).astype(np.float32)
        )
        texture = str(rng.choice(["solid", "stripes", "noise"], p=[0.4, 0.3, 0.3]))
        shirt = _Style(_random_color(rng), texture, _random_color(rng), float(rng.uniform(0.03, 0.06) * H))
        pants = _Style(_random_color(rng), str(rng.choice(["solid", "noise"], p=[0.6, 0.4])))
        return cls(
            skin=np.clip(skin, 0, 1),
            hair=np.clip(hair, 0, 1),
            shirt=shirt,
            pants=pants,
            shoes=_random_color(rng) * np.float32(0.5),
            sleeves=int(rng.choice(3, p=[0.25, 0.4, 0.35])),
            shorts=bool(rng.random() < 0.3),
            hairstyle=float(rng.uniform(-0.15, 0.2)),
            limb_texture=str(rng.choice(["solid", "noise", "stripes"], p=[0.5, 0.3, 0.2])),
            stripe_phase=float(rng.uniform(0, 2 * np.pi)),
        )

    def limb(self, base: np.ndarray, radius: float) -> _Style:
        """Both sides alike: a one-sided marking would contradict flip augmentation."""
        period = max(5.0, 2.2 * radius)
        return _Style(base, self.limb_texture, _contrast(base), period, self.stripe_phase)


def _person_ops(
    p: dict[str, np.ndarray],
    rad: dict[str, float],
    H: float,
    rx: float,
    ry: float,
    head_angle: float,
    front: bool,
    look: _Look,
    rng: np.random.Generator,
) -> tuple[list[Callable[[_Layer], None]], list[tuple[float, float, float, float]]]:
    """Draw calls in z-order (legs, torso, neck, ears, head, face, arms) and their bounds."""
    ops: list[Callable[[_Layer], None]] = []
    bounds: list[tuple[float, float, float, float]] = []

    def capsule(a: np.ndarray, c: np.ndarray, r0: float, r1: float, style: _Style) -> None:
        ops.append(partial(_draw_capsule, p0=a, p1=c, r0=r0, r1=r1, style=style))
        r = max(r0, r1)
        bounds.append((min(a[0], c[0]) - r, min(a[1], c[1]) - r, max(a[0], c[0]) + r, max(a[1], c[1]) + r))

    def ellipse(c: np.ndarray, ax: float, ay: float, angle: float, style: _Style) -> None:
        ops.append(partial(_draw_ellipse, c=c, ax=ax, ay=ay, angle=angle, style=style))
        r = max(ax, ay)
        bounds.append((c[0] - r, c[1] - r, c[0] + r, c[1] + r))

    def limb(side: str, a: str, b: str, r: str, taper: float, color: np.ndarray) -> None:
        style = look.limb(color, rad[r])
        capsule(p[f"{side}_{a}"], p[f"{side}_{b}"], rad[r], rad[r] * taper, style)

    def pad(side: str, joint: str, r: str, color: np.ndarray) -> None:
        """A darker disc that marks an elbow or knee even when the limb is straight."""
        ellipse(p[f"{side}_{joint}"], 0.9 * rad[r], 0.9 * rad[r], 0.0, _Style(color * 0.72))

    def end(side: str, a: str, b: str, size: tuple[float, float], color: np.ndarray) -> None:
        d = p[f"{side}_{b}"] - p[f"{side}_{a}"]  # hands and feet point along their limb
        ellipse(
            p[f"{side}_{b}"], size[0] * H, size[1] * H, math.atan2(d[1], d[0]) - math.pi / 2, _Style(color)
        )

    sides = ["left", "right"]
    rng.shuffle(sides)
    for side in sides:
        shin = look.skin if look.shorts else look.pants.color
        limb(side, "hip", "knee", "th", 0.85, look.pants.color)
        limb(side, "knee", "ankle", "sh", 0.7, shin)
        pad(side, "knee", "sh", shin)
        end(side, "ankle", "foot", (0.045, 0.022), look.shoes)

    # torso: hull of circles at shoulders and hips, shirt above the waist, pants below
    circles = [(p["left_shoulder"], rad["ua"] * 1.3), (p["right_shoulder"], rad["ua"] * 1.3)]
    circles += [(p["left_hip"], rad["th"] * 1.05), (p["right_hip"], rad["th"] * 1.05)]
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = np.stack([np.cos(ang), np.sin(ang)], 1)
    pts = np.concatenate([c + r * ring for c, r in circles]).astype(np.float32)
    hull = cv2.convexHull(pts)[:, 0, :]
    ey = p["pelvis"] - p["thorax"]
    torso_len = float(np.hypot(*ey))
    ey = ey / torso_len
    ex = np.array([-ey[1], ey[0]])
    sh_w = float(np.hypot(*(p["left_shoulder"] - p["right_shoulder"]))) / 2
    frame = (p["thorax"], ex, ey, sh_w, torso_len)
    ops.append(partial(_draw_polygon, pts=hull, style=look.shirt, frame=frame))
    bounds.append((*hull.min(0), *hull.max(0)))
    waist = p["pelvis"] - ey * 0.12 * torso_len
    belt = [waist + ex * (sh_w * 1.2), waist - ex * (sh_w * 1.2)]
    low = np.concatenate([hull[(hull - waist) @ ey > 0], *[np.array(belt, np.float32)]]).astype(np.float32)
    if len(low) >= 3:
        ops.append(partial(_draw_polygon, pts=cv2.convexHull(low)[:, 0, :], style=look.pants, frame=frame))

    # which way someone faces decides left/right, so the torso shows it too (symmetrically)
    if front:  # a V-neck and a row of buttons
        top = p["thorax"] - ey * 0.02 * torso_len
        vneck = np.array([top - ex * 0.3 * sh_w, top + ex * 0.3 * sh_w, top + ey * 0.24 * torso_len])
        ops.append(partial(_draw_polygon, pts=vneck.astype(np.float32), style=_Style(look.skin), frame=frame))
        button = _Style(_contrast(look.shirt.color))
        for f in (0.38, 0.54, 0.7):
            ellipse(p["thorax"] + ey * f * torso_len, 0.013 * H, 0.013 * H, 0.0, button)
    neck_end = p["upper_neck"] + (p["upper_neck"] - p["thorax"]) * 0.5
    capsule(p["thorax"], neck_end, 0.024 * H, 0.022 * H, _Style(look.skin * 0.92))
    if not front:  # a dark collar across the back of the neck
        c = p["thorax"] + ey * 0.04 * torso_len
        capsule(
            c - ex * 0.4 * sh_w, c + ex * 0.4 * sh_w, 0.022 * H, 0.022 * H, _Style(look.shirt.color * 0.45)
        )
    for side in ("left", "right"):
        ellipse(p[f"{side}_ear"], 0.24 * rx, 0.32 * ry, head_angle, _Style(look.skin * 0.85))
    head_c = p["head_c"]
    head = partial(_draw_head, c=head_c, ax=rx, ay=ry, angle=head_angle, front=front)
    ops.append(partial(head, skin=look.skin, hair=look.hair, hairstyle=look.hairstyle))
    bounds.append((head_c[0] - ry, head_c[1] - ry, head_c[0] + ry, head_c[1] + ry))
    if front:
        for side in ("left", "right"):
            ellipse(p[f"{side}_eye"], 0.2 * rx, 0.12 * ry, head_angle, _Style(np.full(3, 0.95, np.float32)))
            ellipse(p[f"{side}_eye"], 0.1 * rx, 0.1 * rx, head_angle, _Style(np.full(3, 0.06, np.float32)))
        ellipse(p["nose"], 0.12 * rx, 0.16 * ry, head_angle, _Style(look.skin * 0.7))
        ca, sa = math.cos(head_angle), math.sin(head_angle)
        mouth = p["nose"] + np.array([-sa, ca]) * 0.33 * ry
        ellipse(mouth, 0.28 * rx, 0.06 * ry, head_angle, _Style(np.array([0.25, 0.2, 0.6], np.float32)))

    rng.shuffle(sides)
    for side in sides:
        forearm = look.shirt.color if look.sleeves == 2 else look.skin
        limb(side, "shoulder", "elbow", "ua", 0.9, look.shirt.color if look.sleeves else look.skin)
        limb(side, "elbow", "wrist", "fa", 0.62, forearm)
        pad(side, "elbow", "fa", forearm)
        end(side, "wrist", "hand", (0.03, 0.04), look.skin * 0.85)  # wider than the wrist
    return ops, bounds


# ----------------------------------------------------------------------------- scenes


@dataclass
class SyntheticPerson:
    """One annotated person of a rendered image (0-based pixel coordinates)."""

    keypoints: np.ndarray  # (K, 3) x, y, COCO flag, in the layout's schema
    body_keypoints: np.ndarray  # (len(BODY_JOINTS), 3) the same for every joint the model knows
    mask: np.ndarray  # (H, W) bool: the person's whole drawn silhouette inside the image
    visible_mask: np.ndarray  # (H, W) bool: ``mask`` minus what later people and occluders cover
    bbox: tuple[float, float, float, float]  # x, y, w, h of ``mask``
    extent: tuple[float, float, float, float]  # x0, y0, x1, y1 of the whole person, unclipped
    headbox: tuple[float, float, float, float]  # x1, y1, x2, y2 of the head ellipse
    front: bool  # faces the camera

    @property
    def area(self) -> float:
        return float(self.visible_mask.sum())


@dataclass
class SyntheticImage:
    """A rendered image before JPEG encoding, with its people in drawing order (back to front)."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    people: list[SyntheticPerson]
    occluder_mask: np.ndarray  # (H, W) bool


def _noise_field(rng: np.random.Generator, h: int, w: int, cell: int = 6) -> np.ndarray:
    small = rng.normal(0.0, 1.0, (h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _clutter_shape(rng: np.random.Generator, img: np.ndarray) -> None:
    """One random background shape drawn into the uint8 canvas ``img``."""
    h, w = img.shape[:2]
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    size = int(rng.uniform(0.04, 0.3) * min(h, w)) + 2
    kind = int(rng.integers(6))
    fill = -1 if rng.random() < 0.7 else int(rng.integers(1, 4))
    if kind == 0:
        cv2.rectangle(
            img,
            c,
            (c[0] + int(rng.integers(-size, size)), c[1] + int(rng.integers(-size, size))),
            color,
            fill,
        )
    elif kind == 1:
        cv2.circle(img, c, size // 2 + 1, color, fill, cv2.LINE_AA)
    elif kind == 2:
        end = (c[0] + int(rng.integers(-2 * size, 2 * size)), c[1] + int(rng.integers(-2 * size, 2 * size)))
        cv2.line(img, c, end, color, int(rng.integers(1, 6)), cv2.LINE_AA)
    elif kind == 3:
        pts = (np.array(c) + rng.integers(-size, size, (int(rng.integers(3, 7)), 2))).astype(np.int32)
        cv2.fillPoly(img, [pts], color, cv2.LINE_AA)
    else:
        x0, y0 = max(c[0] - size, 0), max(c[1] - size // 2, 0)
        x1, y1 = min(c[0] + size, w), min(c[1] + size // 2, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        patch = img[y0:y1, x0:x1].astype(np.float32)
        if kind == 4:  # noise blob
            noise = cv2.GaussianBlur(rng.normal(0, 60, patch.shape).astype(np.float32), (0, 0), 1.5)
            img[y0:y1, x0:x1] = np.clip(patch + noise, 0, 255).astype(np.uint8)
        else:  # striped patch
            yy, xx = np.mgrid[y0:y1, x0:x1]
            a = rng.uniform(0, np.pi)
            s = np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * np.pi / rng.uniform(4, 14)) > 0
            img[y0:y1, x0:x1][s] = color


def _background(rng: np.random.Generator, h: int, w: int, light: float) -> _Layer:
    """Gradient + low-frequency noise + clutter shapes + limb-like distractor sticks."""
    xs = np.arange(w, dtype=np.float32)[None, :] / w
    ys = np.arange(h, dtype=np.float32)[:, None] / h
    ang = rng.uniform(0, 2 * np.pi)
    proj = xs * math.cos(ang) + ys * math.sin(ang)
    proj = (proj - proj.min()) / (proj.max() - proj.min() + 1e-6)
    c0, c1 = _random_color(rng), _random_color(rng)
    img = c0 + (c1 - c0) * proj[..., None]
    low = rng.uniform(-1, 1, (3, 4, 3)).astype(np.float32)
    img = img + cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * 0.12
    canvas = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    for _ in range(int(rng.integers(*_CLUTTER_SHAPES))):
        _clutter_shape(rng, canvas)
    layer = _Layer(
        canvas.astype(np.float32) / 255.0, np.ones((h, w), np.float32), _noise_field(rng, h, w), light
    )
    for _ in range(int(rng.integers(*_DISTRACTOR_STICKS))):
        _distractor_stick(rng, layer, h)
    return layer


def _distractor_stick(rng: np.random.Generator, layer: _Layer, h: int) -> None:
    """One or two joined capsules shaped like a limb but attached to no body."""
    p = np.array([rng.uniform(0, layer.w), rng.uniform(0, layer.h)])
    r = float(rng.uniform(0.012, 0.04) * h)
    base = _SKIN[rng.integers(len(_SKIN))] if rng.random() < 0.4 else _random_color(rng)
    texture = str(rng.choice(["solid", "noise", "stripes"], p=[0.4, 0.4, 0.2]))
    style = _Style(base, texture, _contrast(base), max(5.0, 2.2 * r))
    ang = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(1, 3))):
        q = p + rng.uniform(0.08, 0.25) * h * np.array([math.cos(ang), math.sin(ang)])
        _draw_capsule(layer, p, q, r, r * rng.uniform(0.7, 1.0), style)
        p, ang = q, ang + rng.uniform(-1.5, 1.5)


def _in_frame(joints: np.ndarray, h: int, w: int) -> np.ndarray:
    x, y = joints[:, 0], joints[:, 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def _covered_joints(joints: np.ndarray, inside: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Whether each in-frame joint's pixel is covered by ``cover``; False outside the frame."""
    out = np.zeros(len(joints), bool)
    xy = np.round(joints[inside]).astype(int)
    out[inside] = cover[xy[:, 1], xy[:, 0]]
    return out


@dataclass
class _Placed:
    person: _Person
    height: float
    layer: _Layer
    mask: np.ndarray
    inside: np.ndarray
    covered: np.ndarray  # pixels hidden by later people / occluders


def _keeps_visible(placed: list[_Placed], cover: np.ndarray) -> bool:
    """Whether every placed person stays recognisable when ``cover`` is drawn on top."""
    for p in placed:
        hidden = p.covered | cover
        if (p.mask & ~hidden).sum() < _MIN_VISIBLE_AREA * p.mask.sum():
            return False
        seen = p.inside & ~_covered_joints(p.person.joints, p.inside, hidden)
        if seen.sum() < _MIN_VISIBLE_JOINTS * p.inside.sum():
            return False
    return True


def _render_person(rng: np.random.Generator, person: _Person, h: int, w: int, light: float) -> _Layer:
    layer = _Layer.empty(h, w, _noise_field(rng, h, w), light)
    for op in person.ops:
        op(layer)
    return layer


def _anchor(rng: np.random.Generator, H: float, placed: list[_Placed], h: int, w: int) -> np.ndarray:
    """Where to put a new person's pelvis: often next to someone already placed, to overlap."""
    if placed and rng.random() < 0.6:
        other = placed[int(rng.integers(len(placed)))].person.joints[_J["pelvis"], 0]
        x = other + rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.5) * H
    else:
        x = rng.uniform(-0.08, 1.08) * w
    top = rng.uniform(-0.1 * h, max(h - 0.95 * H, -0.1 * h) + 0.05 * h)
    return np.array([x, top + 0.47 * H])


def _try_person(
    rng: np.random.Generator,
    H: float,
    placed: list[_Placed],
    h: int,
    w: int,
    light: float,
    anchor: np.ndarray,
) -> _Placed | None:
    """A person at ``anchor`` if it is mostly in the frame and hides no one too much, else None."""
    person = _sample_person(rng, H, anchor)
    inside = _in_frame(person.joints, h, w)
    if inside.sum() < _MIN_JOINTS_IN_FRAME * len(BODY_JOINTS):
        return None
    layer = _render_person(rng, person, h, w, light)
    mask = layer.alpha >= 0.5
    if mask.sum() < 0.004 * h * w or not _keeps_visible(placed, mask):
        return None
    return _Placed(person, H, layer, mask, inside, np.zeros((h, w), bool))


def _place_people(rng: np.random.Generator, h: int, w: int, light: float) -> list[_Placed]:
    """``_PEOPLE_PER_IMAGE`` people, back to front, each enough visible and inside the frame."""
    n = int(rng.choice(list(_PEOPLE_PER_IMAGE), p=list(_PEOPLE_PER_IMAGE.values())))
    heights = rng.uniform(*_HEIGHT_RANGE, n) * h
    if rng.random() < 0.8:
        heights = np.sort(heights)  # far (small) people first
    placed: list[_Placed] = []
    for H in heights.tolist():
        new = None
        for _ in range(8 if placed else 30):
            new = _try_person(rng, H, placed, h, w, light, _anchor(rng, H, placed, h, w))
            if new is not None:
                break
        while new is None and not placed:  # every image has someone: fall back to the centre
            new = _try_person(rng, H, placed, h, w, light, np.array([w / 2, h / 2 + 0.05 * H]))
        if new is not None:
            for p in placed:
                p.covered |= new.mask
            placed.append(new)
    return placed


def _occluder(rng: np.random.Generator, target: _Placed, h: int, w: int, light: float) -> _Layer:
    """A box, pole or blob drawn over part of ``target``."""
    H = target.height
    c = target.person.joints[int(rng.integers(len(BODY_JOINTS)))] + rng.normal(0, 0.1 * H, 2)
    layer = _Layer.empty(h, w, _noise_field(rng, h, w), light)
    style = _Style(
        _random_color(rng), str(rng.choice(["solid", "noise", "stripes"])), _random_color(rng), 8.0
    )
    kind = int(rng.integers(3))
    if kind == 0:
        half = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.06, 0.2)]) * H
        R = _rot(rng.uniform(-0.3, 0.3))
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        pts = (c + pts @ R.T).astype(np.float32)
        _draw_polygon(layer, pts, style, (c, R[:, 0], R[:, 1], float(half[0]), float(half[1])))
    elif kind == 1:
        d = np.array([rng.uniform(-0.3, 0.3), 1.0]) * H
        r = float(rng.uniform(0.025, 0.06) * H)
        _draw_capsule(layer, c - d, c + d, r, r, _Style(style.color, style.texture))
    else:
        _draw_ellipse(
            layer, c, rng.uniform(0.08, 0.2) * H, rng.uniform(0.06, 0.15) * H, rng.uniform(0, np.pi), style
        )
    return layer


def _place_occluders(
    rng: np.random.Generator, placed: list[_Placed], h: int, w: int, light: float
) -> list[_Layer]:
    layers: list[_Layer] = []
    if not placed or rng.random() >= _P_OCCLUDER:
        return layers
    for _ in range(int(rng.integers(1, 3))):
        for _attempt in range(5):
            layer = _occluder(rng, placed[int(rng.integers(len(placed)))], h, w, light)
            mask = layer.alpha >= 0.5
            if mask.any() and _keeps_visible(placed, mask):
                for p in placed:
                    p.covered |= mask
                layers.append(layer)
                break
    return layers


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Mild colour jitter, blur and sensor noise; the JPEG comes later."""
    img = img * np.float32(rng.uniform(0.85, 1.15)) + np.float32(rng.uniform(-0.06, 0.06))
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    img = img + rng.normal(0.0, rng.uniform(0.0, 0.025), img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _annotate(p: _Placed, schema: KeypointSchema, h: int, w: int) -> SyntheticPerson:
    joints = p.person.joints
    covered = _covered_joints(joints, p.inside, p.covered)
    flags = np.where(p.inside, np.where(covered, 1, 2), 0)
    if not p.person.front:
        flags[list(_HIDDEN_WHEN_BACK)] = np.minimum(flags[list(_HIDDEN_WHEN_BACK)], 1)
    body = np.concatenate([joints * (flags > 0)[:, None], flags[:, None]], 1)
    rle = mask_utils.encode(np.asfortranarray(p.mask.astype(np.uint8)))
    x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
    return SyntheticPerson(
        keypoints=body[[_J[name] for name in schema.joint_names]],
        body_keypoints=body,
        mask=p.mask,
        visible_mask=p.mask & ~p.covered,
        bbox=(x, y, bw, bh),
        extent=p.person.extent,
        headbox=p.person.headbox,
        front=p.person.front,
    )


def _image_rng(seed: int, index: int, split_name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split_name.encode()), index])


def render_synthetic_image(
    seed: int,
    index: int,
    layout: str = "coco",
    image_size: tuple[int, int] = (320, 256),
    split_name: str = "train",
) -> SyntheticImage:
    """Image ``index`` of the split that ``write_synthetic_dataset`` writes with these arguments.

    ``image_size`` is (width, height). Exposed so tests and previews can see the masks behind
    the visibility flags without re-reading JPEGs.
    """
    schema = _check_args(1, layout, image_size, seed, split_name)
    w, h = image_size
    rng = _image_rng(seed, index, split_name)
    light = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0))
    canvas = _background(rng, h, w, light)
    placed = _place_people(rng, h, w, light)
    occluders = _place_occluders(rng, placed, h, w, light)
    img = canvas.color
    for layer in [p.layer for p in placed] + occluders:
        img = img * (1.0 - layer.alpha[..., None]) + layer.color
    occ_mask = np.zeros((h, w), bool)
    for layer in occluders:
        occ_mask |= layer.alpha >= 0.5
    people = [_annotate(p, schema, h, w) for p in placed]
    return SyntheticImage(image=_finish(rng, img), people=people, occluder_mask=occ_mask)


# ----------------------------------------------------------------------------- files


def _check_args(
    num_images: int, layout: str, image_size: tuple[int, int], seed: int, split_name: str
) -> KeypointSchema:
    if not isinstance(num_images, int) or num_images < 1:
        raise HeatposeError(f"num_images must be a positive integer, got {num_images!r}")
    if layout not in LAYOUTS:
        raise HeatposeError(f"unknown synthetic layout {layout!r}; known: {', '.join(LAYOUTS)}")
    sizes_ok = len(image_size) == 2 and all(isinstance(v, (int, np.integer)) and v >= 64 for v in image_size)
    if not sizes_ok:
        raise HeatposeError(f"image_size must be (width, height), integers >= 64, got {image_size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HeatposeError(f"seed must be a non-negative integer, got {seed!r}")
    if not split_name or Path(split_name).name != split_name or split_name in (".", ".."):
        raise HeatposeError(f"split_name must be a plain name like 'train', got {split_name!r}")
    return LAYOUTS[layout]


def _category(schema: KeypointSchema) -> dict:
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(schema.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in schema.skeleton],
    }


def _r(v: float) -> float:
    return round(float(v), 3)


def _coco_annotation(person: SyntheticPerson, ann_id: int, image_id: int, h: int, w: int) -> dict:
    rle = mask_utils.encode(np.asfortranarray(person.visible_mask.astype(np.uint8)))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [_r(v) for v in person.bbox],
        "area": float(person.area),
        "iscrowd": 0,
        "num_keypoints": int((person.keypoints[:, 2] > 0).sum()),
        "keypoints": [_r(v) if i % 3 < 2 else int(v) for i, v in enumerate(person.keypoints.ravel())],
        "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
    }


def _mpii_record(person: SyntheticPerson, file_name: str) -> dict:
    """The official Simple Baselines MPII list entry; 1-based coordinates like the official file."""
    x0, y0, x1, y1 = person.extent
    vis = person.keypoints[:, 2] > 0
    joints = [
        [_r(x + 1), _r(y + 1)] if v else [-1.0, -1.0]
        for (x, y, _), v in zip(person.keypoints, vis, strict=True)
    ]
    return {
        "image": file_name,
        "center": [_r((x0 + x1) / 2 + 1), _r((y0 + y1) / 2 + 1)],
        "scale": _r(max(x1 - x0, y1 - y0) / 200.0),
        "joints": joints,
        "joints_vis": [int(v) for v in vis],
        "headbox": [_r(v + 1) for v in person.headbox],
    }


def write_synthetic_dataset(
    out_dir: str | Path,
    num_images: int,
    seed: int,
    layout: str = "coco",
    image_size: tuple[int, int] = (320, 256),
    split_name: str = "train",
    progress: bool = True,
) -> dict:
    """Write a COCO-format keypoint split of drawn people (and the MPII list for ``layout="mpii"``).

    ``image_size`` is (width, height). Returns the paths written and the image / person counts.
    """
    schema = _check_args(num_images, layout, image_size, seed, split_name)
    out = Path(out_dir)
    image_dir, ann_dir = out / "images" / split_name, out / "annotations"
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    w, h = image_size
    images: list[dict] = []
    annotations: list[dict] = []
    mpii: list[dict] = []
    for index in tqdm(range(num_images), disable=not progress, desc=f"synthetic {split_name}", unit="img"):
        scene = render_synthetic_image(seed, index, layout, image_size, split_name)
        image_id, file_name = index + 1, f"{index + 1:012d}.jpg"
        ok, buf = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {file_name}")
        atomic_write_bytes(image_dir / file_name, buf.tobytes())
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        for person in scene.people:
            annotations.append(_coco_annotation(person, len(annotations) + 1, image_id, h, w))
            if layout == "mpii":
                mpii.append(_mpii_record(person, file_name))
    coco = {
        "info": {"description": f"heatpose synthetic people, layout={layout}, seed={seed}", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [_category(schema)],
    }
    ann_file = ann_dir / f"person_keypoints_{split_name}.json"
    atomic_write_json(ann_file, coco, compact=True)
    summary = {
        "root": str(out),
        "image_dir": str(image_dir),
        "annotation_file": str(ann_file),
        "mpii_file": None,
        "layout": layout,
        "num_images": num_images,
        "num_people": len(annotations),
    }
    if layout == "mpii":
        mpii_file = ann_dir / f"mpii_{split_name}.json"
        atomic_write_json(mpii_file, mpii, compact=True)
        summary["mpii_file"] = str(mpii_file)
    return summary
