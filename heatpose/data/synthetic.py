"""A zero-download keypoint dataset: procedurally drawn articulated people in COCO format.

Why: tests, tutorials, ablations and benchmarks need a pose dataset that exists without a
download, is byte-for-byte reproducible from a seed, and is hard enough that a heatmap network
has to learn body parts (clutter, distractor sticks, occlusion, truncation, rotation) while
staying learnable by a small network in minutes.

What is drawn
    Each image has a cluttered background (gradient, low-frequency noise, rectangles, circles,
    lines, polygons, noise blobs, striped patches and limb-like distractor sticks) and 1-4 people
    drawn back to front (smaller people first, mostly). A person is a torso, neck, head, ears,
    upper/lower arms, hands, thighs, shins and feet; limbs are shaded capsules. Proportions,
    limb thickness, clothing colours and textures (solid / stripes / noise), pose (standing,
    walking, arms raised, waving, crouching, seated), facing, head tilt/yaw and a global rotation
    (mostly within +-30 degrees) are random. Sometimes a foreground occluder (box, pole, blob) is
    drawn over the people. Mild colour jitter, blur and noise, then JPEG quality 95.

Left/right cue (so left/right is decidable from pixels)
    Every segment of a person's LEFT arm and LEFT leg (upper arm, forearm, thigh, shin) carries
    contrasting bands across the limb and a dark outline; the right limbs never do (they are solid
    or noise-textured). 80% of people face the camera: their face shows eyes, nose and mouth under
    a hair cap, and their left side is on the image right. The rest are seen from behind: hair
    covers the whole head, no face is drawn and their left side is on the image left. The banded
    limbs are the cue either way.

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
same pixels.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, MPII16, KeypointSchema

LAYOUTS: dict[str, KeypointSchema] = {"coco": COCO17, "mpii": MPII16}

# Every joint the body model knows: the COCO-17 joints, then the four MPII-only ones.
BODY_JOINTS: tuple[str, ...] = (*COCO17.joint_names, "pelvis", "thorax", "upper_neck", "head_top")
_J = {name: i for i, name in enumerate(BODY_JOINTS)}
_HIDDEN_WHEN_BACK = (_J["nose"], _J["left_eye"], _J["right_eye"])

_MIN_VISIBLE_AREA = 0.4  # each person keeps this fraction of its in-image silhouette visible
_MIN_VISIBLE_JOINTS = 0.5  # ... and this fraction of its in-image joints visible
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
    """How a part is coloured: base colour, texture, and the left-limb bands."""

    color: np.ndarray
    texture: str = "solid"  # solid | noise | stripes
    stripe_color: np.ndarray | None = None
    stripe_period: float = 6.0
    banded: bool = False
    band_period: float = 6.0
    band_phase: float = 0.0


def _contrast(color: np.ndarray) -> np.ndarray:
    """A band colour that stands out against ``color``."""
    lum = float(color @ np.array([0.114, 0.587, 0.299], np.float32))
    return np.full(3, 0.08 if lum > 0.45 else 0.95, np.float32)


def _textured(layer: _Layer, sl, style: _Style, shade: np.ndarray, along: np.ndarray) -> np.ndarray:
    col = np.broadcast_to(style.color, (*shade.shape, 3)) * shade[..., None]
    if style.texture == "noise":
        col = col * (1.0 + 0.22 * layer.noise[sl])[..., None]
    elif style.texture == "stripes" and style.stripe_color is not None:
        s = np.clip(np.sin(along * (2 * np.pi / style.stripe_period)) * 3 + 0.5, 0, 1)[..., None]
        col = col * (1 - s) + style.stripe_color * shade[..., None] * s
    return col


def _draw_capsule(
    layer: _Layer, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, style: _Style
) -> None:
    """A shaded, tapered, anti-aliased capsule; banded with a dark outline when ``style.banded``."""
    r = max(r0, r1)
    win = layer.window((min(p0[0], p1[0]) - r, min(p0[1], p1[1]) - r, max(p0[0], p1[0]) + r, max(p0[1], p1[1]) + r))
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
    shade = 1.08 - 0.35 * n * n + 0.12 * layer.light * n
    col = _textured(layer, sl, style, shade, along)
    if style.banded:
        b = np.clip(np.sin(along * (2 * np.pi / style.band_period) + style.band_phase) * 3 + 0.5, 0, 1)
        band = _contrast(style.color) * shade[..., None]
        col = col * (1 - b[..., None]) + band * b[..., None]
        edge = np.clip(dist - (rad - 1.3), 0.0, 1.0)
        col = col * (1.0 - 0.75 * edge)[..., None]
    layer.paint(sl, a, col)


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
    layer: _Layer, c: np.ndarray, ax: float, ay: float, angle: float, skin: np.ndarray, hair: np.ndarray,
    front: bool, hairstyle: float,
) -> None:
    """The head ellipse: skin with a hair cap when facing the camera, all hair when seen from behind."""
    frame = _ellipse_frame(layer, c, ax, ay, angle)
    if frame is None:
        return
    sl, u, v, rho, a = frame
    shade = (1.05 - 0.25 * rho * rho + 0.1 * layer.light * np.clip(u, -1, 1))[..., None]
    hairline = -0.55 + hairstyle + 0.55 * u * u if front else 0.75 + 0.0 * u
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
    origin, ex, ey, half_w, length = frame
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
    layer: _Layer | None = None
    mask: np.ndarray | None = None


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0.2, 1.0) * 255, rng.uniform(0.25, 1.0) * 255]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32) / 255.0


def _sample_limbs(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Joint angles in degrees per side: arm abduction/elbow, leg abduction/knee, foreshortening."""
    mode = rng.choice(["stand", "walk", "arms_up", "wave", "crouch", "sit"], p=[0.36, 0.16, 0.1, 0.14, 0.12, 0.12])
    pose: dict[str, dict[str, float]] = {}
    for side in ("left", "right"):
        arm = {"a": rng.uniform(5, 40), "b": rng.uniform(-35, 35), "fa": 1.0, "ff": 1.0}
        if mode == "walk":
            arm.update(a=rng.uniform(-5, 30), b=rng.uniform(-70, 10))
        if mode == "arms_up" or (mode == "wave" and side == ("left" if rng.random() < 0.5 else "right")):
            arm.update(a=rng.uniform(95, 175), b=rng.uniform(-45, 45))
            if mode == "wave":
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
    front = bool(rng.random() < 0.8)
    lx = 1.0 if front else -1.0  # body-frame x sign of the person's left side

    def jit(lo: float = 0.9, hi: float = 1.1) -> float:
        return float(rng.uniform(lo, hi))

    torso_len, sh_w, hip_w, neck_len = 0.30 * H * jit(), 0.115 * H * jit(), 0.065 * H * jit(), 0.045 * H * jit()
    seg = {"ua": 0.165 * H * jit(), "fa": 0.155 * H * jit(), "th": 0.245 * H * jit(), "sh": 0.24 * H * jit()}
    thick = jit(0.8, 1.25)
    rad = {"ua": 0.034 * H * thick, "fa": 0.027 * H * thick, "th": 0.05 * H * thick, "sh": 0.037 * H * thick}
    rx, ry = 0.05 * H * jit(), 0.066 * H * jit()
    pose = _sample_limbs(rng)

    if rng.random() < 0.9:
        theta = float(np.clip(rng.normal(0, 10), -30, 30))
    else:
        theta = float(rng.uniform(-90, 90))
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
        extras[f"{side}_hand"] = wrist + fdir * 0.03 * H
        extras[f"{side}_foot"] = ankle + sdir * 0.025 * H + np.array([sgn * 0.015 * H, 0.0])

    tilt_n, tilt_h = math.radians(rng.normal(0, 6)), math.radians(rng.normal(0, 8))
    b["upper_neck"] = b["thorax"] + neck_len * np.array([math.sin(tilt_n), -math.cos(tilt_n)])
    up_h = np.array([math.sin(tilt_h), -math.cos(tilt_h)])
    head_c = b["upper_neck"] + up_h * ry * 0.8
    b["head_top"] = head_c + up_h * ry * 0.92
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
    ops, bounds = _person_ops(img, rad, H, rx, ry, head_angle, front, yaw, look, rng)
    ext = np.array(bounds)
    hx = math.hypot(rx * math.cos(head_angle), ry * math.sin(head_angle))
    hy = math.hypot(rx * math.sin(head_angle), ry * math.cos(head_angle))
    hc = T(head_c)
    return _Person(
        joints=joints,
        front=front,
        ops=ops,
        extent=(float(ext[:, 0].min()), float(ext[:, 1].min()), float(ext[:, 2].max()), float(ext[:, 3].max())),
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
    band_phase: float = 0.0
    extra: dict = field(default_factory=dict)

    @classmethod
    def sample(cls, rng: np.random.Generator, H: float) -> _Look:
        skin = _SKIN[rng.integers(len(_SKIN))] * np.float32(rng.uniform(0.9, 1.1))
        hair = np.float32(rng.uniform(0.05, 0.45)) * np.array([0.8, 0.9, 1.1], np.float32) * rng.uniform(
            0.8, 1.2, 3
        ).astype(np.float32)
        texture = str(rng.choice(["solid", "stripes", "noise"], p=[0.4, 0.3, 0.3]))
        shirt = _Style(
            _random_color(rng), texture, _random_color(rng), float(rng.uniform(0.03, 0.06) * H)
        )
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
            limb_texture=str(rng.choice(["solid", "noise"], p=[0.6, 0.4])),
            band_phase=float(rng.uniform(0, 2 * np.pi)),
        )

    def limb(self, base: np.ndarray, left: bool, radius: float) -> _Style:
        """The left limbs carry the bands; the right ones never do (the left/right cue)."""
        tex = "noise" if self.limb_texture == "noise" else "solid"
        return _Style(base, tex, banded=left, band_period=max(5.0, 2.2 * radius), band_phase=self.band_phase)


def _person_ops(
    p: dict[str, np.ndarray], rad: dict[str, float], H: float, rx: float, ry: float, head_angle: float,
    front: bool, yaw: float, look: _Look, rng: np.random.Generator,
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

    sides = ["left", "right"]
    rng.shuffle(sides)
    for side in sides:
        left = side == "left"
        sdir = p[f"{side}_ankle"] - p[f"{side}_knee"]
        capsule(p[f"{side}_hip"], p[f"{side}_knee"], rad["th"], rad["th"] * 0.85, look.limb(look.pants.color, left, rad["th"]))
        shin = look.skin if look.shorts else look.pants.color
        capsule(p[f"{side}_knee"], p[f"{side}_ankle"], rad["sh"], rad["sh"] * 0.8, look.limb(shin, left, rad["sh"]))
        ellipse(p[f"{side}_foot"], 0.045 * H, 0.022 * H, math.atan2(sdir[1], sdir[0]) - math.pi / 2, _Style(look.shoes))

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

    capsule(p["thorax"], p["upper_neck"] + (p["upper_neck"] - p["thorax"]) * 0.5, 0.024 * H, 0.022 * H, _Style(look.skin * 0.92))
    for side in ("left", "right"):
        ellipse(p[f"{side}_ear"], 0.24 * rx, 0.32 * ry, head_angle, _Style(look.skin * 0.85))
    head_c = p["head_c"]
    ops.append(
        partial(_draw_head, c=head_c, ax=rx, ay=ry, angle=head_angle, skin=look.skin, hair=look.hair, front=front, hairstyle=look.hairstyle)
    )
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
        left = side == "left"
        upper = look.shirt.color if look.sleeves else look.skin
        lower = look.shirt.color if look.sleeves == 2 else look.skin
        capsule(p[f"{side}_shoulder"], p[f"{side}_elbow"], rad["ua"], rad["ua"] * 0.9, look.limb(upper, left, rad["ua"]))
        capsule(p[f"{side}_elbow"], p[f"{side}_wrist"], rad["fa"], rad["fa"] * 0.8, look.limb(lower, left, rad["fa"]))
        hdir = p[f"{side}_hand"] - p[f"{side}_wrist"]
        ellipse(p[f"{side}_hand"], 0.022 * H, 0.032 * H, math.atan2(hdir[1], hdir[0]) - math.pi / 2, _Style(look.skin))
    return ops, bounds
