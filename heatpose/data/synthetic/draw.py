"""Drawing primitives of the synthetic people: anti-aliased, shaded capsules, ellipses and polygons.

Everything is drawn in float BGR into a :class:`Layer` (colour + coverage) that is composited later,
so a person's own parts can overlap without touching the background and its silhouette is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from heatpose.data.synthetic.knobs import RIM_PX


class Layer:
    """A colour image and its coverage; people are drawn into their own layer, then composited."""

    def __init__(self, color: np.ndarray, alpha: np.ndarray, noise: np.ndarray, light: float) -> None:
        self.color, self.alpha, self.noise, self.light = color, alpha, noise, light
        self.h, self.w = alpha.shape

    @classmethod
    def empty(cls, h: int, w: int, noise: np.ndarray, light: float) -> Layer:
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
class Style:
    """How a part is coloured: base colour and texture."""

    color: np.ndarray
    texture: str = "solid"  # solid | noise | stripes
    stripe_color: np.ndarray | None = None
    stripe_period: float = 6.0
    stripe_phase: float = 0.0


def contrast_color(color: np.ndarray) -> np.ndarray:
    """A stripe colour that stands out against ``color``."""
    lum = float(color @ np.array([0.114, 0.587, 0.299], np.float32))
    return np.full(3, 0.08 if lum > 0.45 else 0.95, np.float32)


def _textured(layer: Layer, sl, style: Style, shade: np.ndarray, along: np.ndarray) -> np.ndarray:
    col = np.broadcast_to(style.color, (*shade.shape, 3)) * shade[..., None]
    if style.texture == "noise":
        col = col * (1.0 + 0.22 * layer.noise[sl])[..., None]
    elif style.texture == "stripes" and style.stripe_color is not None:
        phase = along * (2 * np.pi / style.stripe_period) + style.stripe_phase
        s = np.clip(np.sin(phase) * 3 + 0.5, 0, 1)[..., None]
        col = col * (1 - s) + style.stripe_color * shade[..., None] * s
    return col


def draw_capsule(layer: Layer, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, style: Style) -> None:
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
    rim = np.clip(dist - rad + RIM_PX, 0.0, 1.0)
    shade = (1.08 - 0.35 * n * n + 0.12 * layer.light * n) * (1.0 - 0.45 * rim)
    layer.paint(sl, a, _textured(layer, sl, style, shade, along))


def _ellipse_frame(layer: Layer, c: np.ndarray, ax: float, ay: float, angle: float):
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


def draw_ellipse(layer: Layer, c: np.ndarray, ax: float, ay: float, angle: float, style: Style) -> None:
    frame = _ellipse_frame(layer, c, ax, ay, angle)
    if frame is None:
        return
    sl, u, v, rho, a = frame
    shade = 1.05 - 0.25 * rho * rho + 0.1 * layer.light * np.clip(u, -1, 1)
    layer.paint(sl, a, _textured(layer, sl, style, shade, v * ay))


def draw_head(
    layer: Layer,
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


def draw_polygon(layer: Layer, pts: np.ndarray, style: Style, frame: tuple[np.ndarray, ...]) -> None:
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


def random_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0.2, 1.0) * 255, rng.uniform(0.25, 1.0) * 255]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32) / 255.0


def noise_field(rng: np.random.Generator, h: int, w: int, cell: int = 6) -> np.ndarray:
    small = rng.normal(0.0, 1.0, (h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
