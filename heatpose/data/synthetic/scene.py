"""Scene layout: background clutter, people placed back to front, occluders, visibility flags.

:func:`render_synthetic_image` draws one image from its own random generator and returns the pixels
with every person's keypoints, COCO flags and masks (see the package docstring for the conventions).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from heatpose.data.synthetic.draw import (
    Layer,
    Style,
    contrast_color,
    draw_capsule,
    draw_ellipse,
    draw_polygon,
    noise_field,
    random_color,
)
from heatpose.data.synthetic.figure import BODY_JOINTS, JOINT_INDEX, Figure, rotation, sample_figure
from heatpose.data.synthetic.flat import render_flat_background
from heatpose.data.synthetic.knobs import (
    CLUTTER_SHAPES,
    DISTRACTOR_STICKS,
    HEIGHT_RANGE,
    MIN_JOINTS_IN_FRAME,
    MIN_VISIBLE_AREA,
    MIN_VISIBLE_JOINTS,
    P_OCCLUDER,
    PEOPLE_PER_IMAGE,
    SKIN_TONES,
)
from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, MPII16, KeypointSchema

LAYOUTS: dict[str, KeypointSchema] = {"coco": COCO17, "mpii": MPII16}
# How people and backgrounds are drawn; keypoints, flags and boxes follow the same rules in every style.
STYLES: tuple[str, ...] = ("default", "flat")
_HIDDEN_WHEN_BACK = (JOINT_INDEX["nose"], JOINT_INDEX["left_eye"], JOINT_INDEX["right_eye"])


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


def render_background(rng: np.random.Generator, h: int, w: int, light: float) -> Layer:
    """Gradient + low-frequency noise + clutter shapes + limb-like distractor sticks."""
    xs = np.arange(w, dtype=np.float32)[None, :] / w
    ys = np.arange(h, dtype=np.float32)[:, None] / h
    ang = rng.uniform(0, 2 * np.pi)
    proj = xs * math.cos(ang) + ys * math.sin(ang)
    proj = (proj - proj.min()) / (proj.max() - proj.min() + 1e-6)
    c0, c1 = random_color(rng), random_color(rng)
    img = c0 + (c1 - c0) * proj[..., None]
    low = rng.uniform(-1, 1, (3, 4, 3)).astype(np.float32)
    img = img + cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) * 0.12
    canvas = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    for _ in range(int(rng.integers(*CLUTTER_SHAPES))):
        _clutter_shape(rng, canvas)
    layer = Layer(
        canvas.astype(np.float32) / 255.0, np.ones((h, w), np.float32), noise_field(rng, h, w), light
    )
    for _ in range(int(rng.integers(*DISTRACTOR_STICKS))):
        _distractor_stick(rng, layer, h)
    return layer


def _distractor_stick(rng: np.random.Generator, layer: Layer, h: int) -> None:
    """One or two joined capsules shaped like a limb but attached to no body."""
    p = np.array([rng.uniform(0, layer.w), rng.uniform(0, layer.h)])
    r = float(rng.uniform(0.012, 0.04) * h)
    base = SKIN_TONES[rng.integers(len(SKIN_TONES))] if rng.random() < 0.4 else random_color(rng)
    texture = str(rng.choice(["solid", "noise", "stripes"], p=[0.4, 0.4, 0.2]))
    style = Style(base, texture, contrast_color(base), max(5.0, 2.2 * r))
    ang = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(1, 3))):
        q = p + rng.uniform(0.08, 0.25) * h * np.array([math.cos(ang), math.sin(ang)])
        draw_capsule(layer, p, q, r, r * rng.uniform(0.7, 1.0), style)
        p, ang = q, ang + rng.uniform(-1.5, 1.5)


def joints_in_frame(joints: np.ndarray, h: int, w: int) -> np.ndarray:
    x, y = joints[:, 0], joints[:, 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def covered_joints(joints: np.ndarray, inside: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Whether each in-frame joint's pixel is covered by ``cover``; False outside the frame."""
    out = np.zeros(len(joints), bool)
    xy = np.round(joints[inside]).astype(int)
    out[inside] = cover[xy[:, 1], xy[:, 0]]
    return out


@dataclass
class _Placed:
    person: Figure
    height: float
    layer: Layer
    mask: np.ndarray
    inside: np.ndarray
    covered: np.ndarray  # pixels hidden by later people / occluders


def _keeps_visible(placed: list[_Placed], cover: np.ndarray) -> bool:
    """Whether every placed person stays recognisable when ``cover`` is drawn on top."""
    for p in placed:
        hidden = p.covered | cover
        if (p.mask & ~hidden).sum() < MIN_VISIBLE_AREA * p.mask.sum():
            return False
        seen = p.inside & ~covered_joints(p.person.joints, p.inside, hidden)
        if seen.sum() < MIN_VISIBLE_JOINTS * p.inside.sum():
            return False
    return True


def _render_person(rng: np.random.Generator, person: Figure, h: int, w: int, light: float) -> Layer:
    layer = Layer.empty(h, w, noise_field(rng, h, w), light)
    for op in person.ops:
        op(layer)
    return layer


def _anchor(rng: np.random.Generator, H: float, placed: list[_Placed], h: int, w: int) -> np.ndarray:
    """Where to put a new person's pelvis: often next to someone already placed, to overlap."""
    if placed and rng.random() < 0.6:
        other = placed[int(rng.integers(len(placed)))].person.joints[JOINT_INDEX["pelvis"], 0]
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
    style: str = "default",
) -> _Placed | None:
    """A person at ``anchor`` if it is mostly in the frame and hides no one too much, else None."""
    person = sample_figure(rng, H, anchor, style=style)
    inside = joints_in_frame(person.joints, h, w)
    if inside.sum() < MIN_JOINTS_IN_FRAME * len(BODY_JOINTS):
        return None
    layer = _render_person(rng, person, h, w, light)
    mask = layer.alpha >= 0.5
    if mask.sum() < 0.004 * h * w or not _keeps_visible(placed, mask):
        return None
    return _Placed(person, H, layer, mask, inside, np.zeros((h, w), bool))


def _place_people(
    rng: np.random.Generator, h: int, w: int, light: float, style: str = "default"
) -> list[_Placed]:
    """``PEOPLE_PER_IMAGE`` people, back to front, each enough visible and inside the frame."""
    n = int(rng.choice(list(PEOPLE_PER_IMAGE), p=list(PEOPLE_PER_IMAGE.values())))
    heights = rng.uniform(*HEIGHT_RANGE, n) * h
    if rng.random() < 0.8:
        heights = np.sort(heights)  # far (small) people first
    placed: list[_Placed] = []
    for H in heights.tolist():
        new = None
        for _ in range(8 if placed else 30):
            new = _try_person(rng, H, placed, h, w, light, _anchor(rng, H, placed, h, w), style)
            if new is not None:
                break
        while new is None and not placed:  # every image has someone: fall back to the centre
            new = _try_person(rng, H, placed, h, w, light, np.array([w / 2, h / 2 + 0.05 * H]), style)
        if new is not None:
            for p in placed:
                p.covered |= new.mask
            placed.append(new)
    return placed


def _occluder(rng: np.random.Generator, target: _Placed, h: int, w: int, light: float) -> Layer:
    """A box, pole or blob drawn over part of ``target``."""
    H = target.height
    c = target.person.joints[int(rng.integers(len(BODY_JOINTS)))] + rng.normal(0, 0.1 * H, 2)
    layer = Layer.empty(h, w, noise_field(rng, h, w), light)
    style = Style(random_color(rng), str(rng.choice(["solid", "noise", "stripes"])), random_color(rng), 8.0)
    kind = int(rng.integers(3))
    if kind == 0:
        half = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.06, 0.2)]) * H
        R = rotation(rng.uniform(-0.3, 0.3))
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        pts = (c + pts @ R.T).astype(np.float32)
        draw_polygon(layer, pts, style, (c, R[:, 0], R[:, 1], float(half[0]), float(half[1])))
    elif kind == 1:
        d = np.array([rng.uniform(-0.3, 0.3), 1.0]) * H
        r = float(rng.uniform(0.025, 0.06) * H)
        draw_capsule(layer, c - d, c + d, r, r, Style(style.color, style.texture))
    else:
        draw_ellipse(
            layer, c, rng.uniform(0.08, 0.2) * H, rng.uniform(0.06, 0.15) * H, rng.uniform(0, np.pi), style
        )
    return layer


def _place_occluders(
    rng: np.random.Generator, placed: list[_Placed], h: int, w: int, light: float
) -> list[Layer]:
    layers: list[Layer] = []
    if not placed or rng.random() >= P_OCCLUDER:
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
    covered = covered_joints(joints, p.inside, p.covered)
    flags = np.where(p.inside, np.where(covered, 1, 2), 0)
    if not p.person.front:
        flags[list(_HIDDEN_WHEN_BACK)] = np.minimum(flags[list(_HIDDEN_WHEN_BACK)], 1)
    body = np.concatenate([joints * (flags > 0)[:, None], flags[:, None]], 1)
    rle = mask_utils.encode(np.asfortranarray(p.mask.astype(np.uint8)))
    x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
    return SyntheticPerson(
        keypoints=body[[JOINT_INDEX[name] for name in schema.joint_names]],
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
    style: str = "default",
) -> SyntheticImage:
    """Image ``index`` of the split that ``write_synthetic_dataset`` writes with these arguments.

    ``image_size`` is (width, height). Exposed so tests and previews can see the masks behind
    the visibility flags without re-reading JPEGs. ``style`` (one of :data:`STYLES`) changes
    how people and background are drawn, never where the keypoints are or how they are flagged;
    the same seed and index in two styles are unrelated images.
    """
    schema = check_synth_args(1, layout, image_size, seed, split_name, style)
    w, h = image_size
    rng = _image_rng(seed, index, split_name)
    light = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0))
    canvas = (render_flat_background if style == "flat" else render_background)(rng, h, w, light)
    placed = _place_people(rng, h, w, light, style)
    occluders = _place_occluders(rng, placed, h, w, light)
    img = canvas.color
    for layer in [p.layer for p in placed] + occluders:
        img = img * (1.0 - layer.alpha[..., None]) + layer.color
    occ_mask = np.zeros((h, w), bool)
    for layer in occluders:
        occ_mask |= layer.alpha >= 0.5
    people = [_annotate(p, schema, h, w) for p in placed]
    return SyntheticImage(image=_finish(rng, img), people=people, occluder_mask=occ_mask)


def check_synth_args(
    num_images: int,
    layout: str,
    image_size: tuple[int, int],
    seed: int,
    split_name: str,
    style: str = "default",
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
    if style not in STYLES:
        raise HeatposeError(f"unknown synthetic style {style!r}; known: {', '.join(STYLES)}")
    return LAYOUTS[layout]
