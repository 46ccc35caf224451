"""The ``flat`` drawing style: cartoon people drawn by a second, independent rasteriser.

Why: a codec (or any sub-pixel choice) judged only on images from the renderer it was trained
on can look unbiased while it has learned that renderer's quirks. ``heatpose synth --style flat``
draws the *same* bodies (same figure geometry, keypoints at the same anatomical places, same
flags and boxes, see :mod:`heatpose.data.synthetic.scene`) with a different look:

- flat colours from a cartoon palette with a hard two-tone (cel) shade instead of smooth
  shading and a dark rim, and an ink outline of 1-2.5 px (none on a quarter of the people);
- spindle-shaped limbs (wider in the middle, width x0.65-1.35 of the default) with ball joints
  at elbows and knees, a trapezoid torso, round hands, rounded-rectangle feet;
- a superellipse head (a rounded square, exponent 2.5-5) of the same size, with dot eyes;
- textured backgrounds (checker, tiles, stripes, wood grain, polka dots) in muted colours,
  with outlined flat shapes and flat limb-like distractors;
- anti-aliasing by supersampling: every shape is a binary inside test at 4 x 4 samples per
  pixel, box-filtered (the default style computes analytic soft edges instead).

Sub-pixel convention (the one every keypoint uses): pixel ``(i, j)`` is centred at ``(i, j)``;
the 4 x 4 samples of pixel ``i`` sit at ``i + (k + 0.5) / 4 - 0.5``, so a symmetric shape centred
at ``x`` has its coverage centroid at ``x`` (``tests/test_synthetic_styles.py`` checks this).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

from heatpose.data.synthetic.draw import Layer, noise_field
from heatpose.data.synthetic.knobs import CLUTTER_SHAPES, DISTRACTOR_STICKS, SKIN_TONES

SAMPLES = 4  # supersampling per axis
INK = np.array([0.13, 0.1, 0.1], np.float32)  # BGR
PALETTE = np.array(
    [
        [0.25, 0.33, 0.90],
        [0.20, 0.65, 0.98],
        [0.30, 0.85, 0.95],
        [0.45, 0.80, 0.45],
        [0.65, 0.60, 0.20],
        [0.85, 0.55, 0.25],
        [0.75, 0.35, 0.45],
        [0.60, 0.30, 0.75],
        [0.95, 0.90, 0.90],
        [0.30, 0.30, 0.35],
        [0.55, 0.75, 0.95],
        [0.80, 0.85, 0.55],
        [0.35, 0.45, 0.60],
        [0.70, 0.50, 0.95],
    ],
    np.float32,
)  # BGR: saturated cartoon colours (clothes, shapes)
Margin = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def _pick(rng: np.random.Generator) -> np.ndarray:
    return PALETTE[rng.integers(len(PALETTE))] * np.float32(rng.uniform(0.85, 1.1))


# ------------------------------------------------------------------------------- rasteriser


def _samples(layer: Layer, bounds: tuple[float, float, float, float]):
    """The window over ``bounds`` and its sample positions: x (1, w*S), y (h*S, 1) in pixels."""
    win = layer.window(bounds)
    if win is None:
        return None
    sl, xs, ys = win
    off = (np.arange(SAMPLES, dtype=np.float32) + 0.5) / SAMPLES - 0.5
    hx = (xs[0][:, None] + off[None, :]).reshape(1, -1)
    hy = (ys[:, 0][:, None] + off[None, :]).reshape(-1, 1)
    return sl, hx, hy


def _coverage(inside: np.ndarray) -> np.ndarray:
    """(h*S, w*S) bool samples -> (h, w) float32 coverage (box filter)."""
    h, w = inside.shape[0] // SAMPLES, inside.shape[1] // SAMPLES
    return inside.reshape(h, SAMPLES, w, SAMPLES).mean(axis=(1, 3), dtype=np.float32)


def paint_shape(
    layer: Layer,
    bounds: tuple[float, float, float, float],
    margin: Margin,
    color: np.ndarray,
    ink: float = 0.0,
    shade: float = 1.0,
) -> None:
    """Fill the shape ``margin(x, y) >= 0`` with ``color``, an ``ink``-px outline inside its edge.

    ``margin`` returns the distance inside the shape's edge (negative outside) and, for a cel
    shade, a side value whose sign is compared with the layer's light: samples on the dark side
    get ``color * shade``.
    """
    frame = _samples(layer, bounds)
    if frame is None:
        return
    sl, hx, hy = frame
    m, side = margin(hx, hy)
    inside = m >= 0.0
    if not inside.any():
        return
    if ink > 0.0:
        layer.paint(sl, _coverage(inside), INK)
        inside = m >= ink
    if side is None or shade == 1.0:
        layer.paint(sl, _coverage(inside), color)
        return
    lit = side * layer.light >= 0.0
    a_lit, a = _coverage(inside & lit), _coverage(inside)
    mixed = (a_lit[..., None] * color + (a - a_lit)[..., None] * (color * shade)) / np.maximum(a, 1e-6)[
        ..., None
    ]
    layer.paint(sl, a, mixed)


def spindle_margin(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, bulge: float) -> Margin:
    """A limb from ``p0`` to ``p1``: radius ``r0`` -> ``r1`` plus ``bulge * sin(pi t)``, round ends."""
    d = p1 - p0
    length = max(float(np.hypot(d[0], d[1])), 1e-3)
    ux, uy = float(d[0]) / length, float(d[1]) / length

    def margin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - float(p0[0]), y - float(p0[1])
        along, across = dx * ux + dy * uy, dy * ux - dx * uy
        t = np.clip(along / length, 0.0, 1.0)
        rad = r0 + (r1 - r0) * t + bulge * np.sin(np.pi * t)
        body = np.where((along >= 0) & (along <= length), rad - np.abs(across), -np.inf)
        ends = np.maximum(r0 - np.hypot(dx, dy), r1 - np.hypot(x - float(p1[0]), y - float(p1[1])))
        return np.maximum(body, ends), across

    return margin


def superellipse_margin(c: np.ndarray, ax: float, ay: float, angle: float, power: float = 2.0) -> Margin:
    """``|u|^p + |v|^p <= 1`` in the frame rotated by ``angle``; p = 2 is an ellipse."""
    ca, sa = math.cos(angle), math.sin(angle)

    def margin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - float(c[0]), y - float(c[1])
        u, v = (dx * ca + dy * sa) / ax, (dy * ca - dx * sa) / ay
        rho = (np.abs(u) ** power + np.abs(v) ** power) ** (1.0 / power)
        return (1.0 - rho) * min(ax, ay), u

    return margin


def polygon_margin(pts: np.ndarray) -> Margin:
    """A convex polygon: the smallest signed distance to its edges (positive inside)."""
    hull = cv2.convexHull(np.asarray(pts, np.float32))[:, 0, :].astype(np.float64)
    centroid = hull.mean(0)
    edges = []
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        n = np.array([b[1] - a[1], a[0] - b[0]])
        n /= max(float(np.hypot(*n)), 1e-9)
        if (centroid - a) @ n < 0:
            n = -n  # inward normal
        edges.append((a, n))

    def margin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist = [(x - a[0]) * n[0] + (y - a[1]) * n[1] for a, n in edges]
        return np.minimum.reduce(dist), x - centroid[0]

    return margin


def _box(pts: np.ndarray, r: float) -> tuple[float, float, float, float]:
    pts = np.atleast_2d(pts)
    return (*(pts.min(0) - r).tolist(), *(pts.max(0) + r).tolist())


# ------------------------------------------------------------------------------- the person


def flat_person_ops(
    p: dict[str, np.ndarray],
    rad: dict[str, float],
    H: float,
    rx: float,
    ry: float,
    head_angle: float,
    front: bool,
    rng: np.random.Generator,
) -> tuple[list[Callable[[Layer], None]], list[tuple[float, float, float, float]]]:
    """Draw calls of one flat-style person in z-order (legs, torso, neck, ears, head, face, arms).

    ``p`` holds the image-pixel joints of :func:`~heatpose.data.synthetic.figure.sample_figure`
    (plus ``head_c``, hands and feet); only the look differs from the default style.
    """
    ops: list[Callable[[Layer], None]] = []
    bounds: list[tuple[float, float, float, float]] = []
    ink = 0.0 if rng.random() < 0.25 else float(rng.uniform(1.0, 2.5))
    shade = float(rng.uniform(0.7, 0.9))
    width = float(rng.uniform(0.65, 1.35))
    r = {k: v * width for k, v in rad.items()}
    skin = np.clip(SKIN_TONES[rng.integers(len(SKIN_TONES))] * np.float32(rng.uniform(0.95, 1.15)), 0, 1)
    hair = np.clip(_pick(rng) * np.float32(rng.uniform(0.15, 0.6)), 0, 1)
    shirt, pants, shoes = _pick(rng), _pick(rng), _pick(rng) * np.float32(0.45)
    sleeves = int(rng.choice(3, p=[0.3, 0.35, 0.35]))
    shorts = bool(rng.random() < 0.3)

    def shape(
        margin: Margin, box: tuple[float, float, float, float], color: np.ndarray, outline: float = ink
    ) -> None:
        ops.append(partial(paint_shape, bounds=box, margin=margin, color=color, ink=outline, shade=shade))
        bounds.append(box)

    def limb(a: np.ndarray, b: np.ndarray, r0: float, r1: float, color: np.ndarray) -> None:
        bulge = 0.3 * max(r0, r1)
        shape(spindle_margin(a, b, r0, r1, bulge), _box(np.stack([a, b]), max(r0, r1) + bulge), color)

    def ball(c: np.ndarray, radius: float, color: np.ndarray, power: float = 2.0, angle: float = 0.0) -> None:
        shape(superellipse_margin(c, radius, radius, angle, power), _box(c, radius), color)

    sides = ["left", "right"]
    rng.shuffle(sides)
    for s in sides:
        shin = skin if shorts else pants
        limb(p[f"{s}_hip"], p[f"{s}_knee"], r["th"], r["th"] * 0.8, pants)
        limb(p[f"{s}_knee"], p[f"{s}_ankle"], r["sh"], r["sh"] * 0.65, shin)
        ball(p[f"{s}_knee"], r["sh"] * 1.05, shin * np.float32(0.9))
        d = p[f"{s}_foot"] - p[f"{s}_ankle"]
        foot = superellipse_margin(p[f"{s}_foot"], 0.05 * H, 0.022 * H, math.atan2(d[1], d[0]), 4.0)
        shape(foot, _box(p[f"{s}_foot"], math.hypot(0.05, 0.022) * H), shoes)  # rotated corners

    ey = p["pelvis"] - p["thorax"]
    torso_len = float(np.hypot(*ey))
    ey = ey / torso_len
    ex = np.array([-ey[1], ey[0]])
    sh_out = [p[f"{s}_shoulder"] + (p[f"{s}_shoulder"] - p["thorax"]) * 0.15 - ey * r["ua"] for s in sides]
    hips = [p[f"{s}_hip"] + (p[f"{s}_hip"] - p["pelvis"]) * 0.6 + ey * 0.4 * r["th"] for s in sides]
    torso = np.array([*sh_out, *hips])
    shape(polygon_margin(torso), _box(torso, 0.0), shirt)
    waist = p["pelvis"] - ey * 0.15 * torso_len
    half = float(np.hypot(*(hips[0] - hips[1]))) * 0.55
    low = np.array([waist + ex * half, waist - ex * half, *hips])
    shape(polygon_margin(low), _box(low, 0.0), pants)

    neck_end = p["upper_neck"] + (p["upper_neck"] - p["thorax"]) * 0.5
    limb(p["thorax"], neck_end, 0.022 * H * width, 0.02 * H * width, skin)
    if front:  # a skin-coloured collar opening on the front only (back: shirt up to the neck)
        top = p["thorax"] - ey * 0.02 * torso_len
        vneck = np.array([top - ex * 0.8 * r["ua"], top + ex * 0.8 * r["ua"], top + ey * 0.2 * torso_len])
        shape(polygon_margin(vneck), _box(vneck, 0.0), skin, 0.0)
    for s in ("left", "right"):
        ball(p[f"{s}_ear"], 0.26 * rx, skin * np.float32(0.85))
    power = float(rng.uniform(2.5, 5.0))
    head = superellipse_margin(p["head_c"], rx, ry, head_angle, power)
    head_box = _box(p["head_c"], math.hypot(rx, ry))  # a rotated rounded square's corners
    shape(head, head_box, hair if not front else skin)
    if front:  # a hair cap: the head shape above the hairline
        line = float(rng.uniform(-0.55, -0.25))
        ca, sa = math.cos(head_angle), math.sin(head_angle)
        c = p["head_c"]

        def cap(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, None]:
            m, _ = head(x, y)
            v = ((y - c[1]) * ca - (x - c[0]) * sa) / ry
            return np.minimum(m, (line - v) * ry), None

        shape(cap, head_box, hair, 0.0)
        for s in ("left", "right"):
            ball(p[f"{s}_eye"], max(0.12 * rx, 0.8), INK)
        ball(p["nose"], max(0.1 * rx, 0.7), skin * np.float32(0.7))
        mouth = p["nose"] + np.array([-sa, ca]) * 0.35 * ry
        shape(
            superellipse_margin(mouth, 0.3 * rx, 0.05 * ry + 0.5, head_angle), _box(mouth, 0.3 * rx), INK, 0.0
        )

    rng.shuffle(sides)
    for s in sides:
        upper = shirt if sleeves else skin
        forearm = shirt if sleeves == 2 else skin
        limb(p[f"{s}_shoulder"], p[f"{s}_elbow"], r["ua"], r["ua"] * 0.85, upper)
        limb(p[f"{s}_elbow"], p[f"{s}_wrist"], r["fa"], r["fa"] * 0.6, forearm)
        ball(p[f"{s}_elbow"], r["fa"] * 1.1, forearm * np.float32(0.9))
        ball(p[f"{s}_hand"], 0.03 * H, skin * np.float32(0.9))
    return ops, bounds


# ------------------------------------------------------------------------------- the background


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w) float32 in [0, 1]: which of two colours each background pixel takes."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    u = x * math.cos(ang) + y * math.sin(ang)
    v = -x * math.sin(ang) + y * math.cos(ang)
    period = float(rng.uniform(0.05, 0.2) * min(h, w))
    kind = int(rng.integers(6))
    if kind == 0:  # checker
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == 1:  # tiles with grout lines
        grout = max(1.0, period * 0.08)
        return (((u % period) < grout) | ((v % period) < grout)).astype(np.float32)
    if kind == 2:  # stripes
        return ((u % period) < period * rng.uniform(0.3, 0.7)).astype(np.float32)
    if kind == 3:  # wood grain
        warp = cv2.resize(rng.normal(0, 1, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        return (0.5 + 0.5 * np.sin(2 * np.pi * u / (period * 0.4) + 3.0 * warp)).astype(np.float32)
    if kind == 4:  # polka dots
        du, dv = (u % period) - period / 2, (v % period) - period / 2
        return (np.hypot(du, dv) < period * 0.25).astype(np.float32)
    return np.zeros((h, w), np.float32)  # plain


def render_flat_background(rng: np.random.Generator, h: int, w: int, light: float) -> Layer:
    """A muted two-colour texture, outlined flat shapes and flat limb-like distractors."""
    grey = np.float32(rng.uniform(0.3, 0.8))
    c0 = _pick(rng) * np.float32(0.5) + grey * np.float32(0.5)
    c1 = c0 * np.float32(rng.uniform(0.6, 0.9)) + np.float32(rng.uniform(0.0, 0.1))
    t = _texture(rng, h, w)[..., None]
    layer = Layer(
        np.clip(c0 * (1 - t) + c1 * t, 0, 1).astype(np.float32),
        np.ones((h, w), np.float32),
        noise_field(rng, h, w),
        light,
    )
    for _ in range(int(rng.integers(*CLUTTER_SHAPES)) // 2):
        c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        size = float(rng.uniform(0.04, 0.25) * min(h, w)) + 2
        ink = 0.0 if rng.random() < 0.5 else float(rng.uniform(1.0, 2.0))
        if rng.random() < 0.5:
            ax, ay = size, size * rng.uniform(0.5, 1.0)
            margin = superellipse_margin(c, ax, ay, rng.uniform(0, np.pi), float(rng.uniform(2, 6)))
        else:
            pts = c + rng.uniform(-size, size, (int(rng.integers(3, 6)), 2))
            margin = polygon_margin(pts)
        paint_shape(layer, _box(c, 1.5 * size), margin, _pick(rng) * np.float32(0.8), ink)
    for _ in range(int(rng.integers(*DISTRACTOR_STICKS))):
        p0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        ang = rng.uniform(0, 2 * np.pi)
        p1 = p0 + rng.uniform(0.1, 0.25) * h * np.array([math.cos(ang), math.sin(ang)])
        rad = float(rng.uniform(0.012, 0.04) * h)
        color = SKIN_TONES[rng.integers(len(SKIN_TONES))] if rng.random() < 0.4 else _pick(rng)
        margin = spindle_margin(p0, p1, rad, rad * 0.7, 0.3 * rad)
        paint_shape(layer, _box(np.stack([p0, p1]), 1.3 * rad), margin, color, float(rng.uniform(0, 2)), 0.8)
    return layer
