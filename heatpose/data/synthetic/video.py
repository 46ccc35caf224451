"""Synthetic video clips for tracking: people walking, crossing, occluding, entering and leaving.

Why: the tracker (heatpose/tracking/) needs clips with ground-truth track ids, head boxes and
detector boxes to be tested, scored and ablated without a download. A clip reuses the still
generator's pieces: a background larger than the frame (the camera pans across it), and figures
from :func:`~heatpose.data.synthetic.figure.sample_figure`. A person is one fixed random state
drawn again every frame at a new pelvis position and with a new leg/arm ``swing``, so it keeps its
look and proportions while it walks. People are drawn far (small) to near (large); a person is
annotated in a frame when enough of its silhouette is visible and at least two joints are inside
the frame, so people appear, vanish behind others and come back with the same ``track_id``.

Conventions (as PoseTrack 2018): keypoints are 0-based float pixels of the frame; joints outside
the frame are (0, 0, 0). With ``layout="posetrack"`` the 17 PoseTrack joints are written (
``head_bottom`` is the chin end of the neck) and every labelled joint has flag 1, like the real
files; with ``layout="coco"`` the COCO-17 joints and COCO flags (1 covered, 2 seen). ``bbox`` is the
box of the in-frame silhouette, ``bbox_head`` the head ellipse's box, both (x, y, w, h).

Clip ``i`` of a split comes from ``np.random.default_rng([seed, crc32(split), crc32("video"), i])``
(frame ``t``'s sensor noise from the same key + ``t + 1``), so a clip can be regenerated alone.
The camera path is drawn for the whole clip before the people, so the same index with another
``num_frames`` or size is a different clip, not a longer or shorter cut of it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from heatpose.data.synthetic.draw import Layer, noise_field
from heatpose.data.synthetic.figure import JOINT_INDEX, sample_figure
from heatpose.data.synthetic.scene import joints_in_frame, render_background
from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, POSETRACK18, KeypointSchema

VIDEO_LAYOUTS: dict[str, KeypointSchema] = {"coco": COCO17, "posetrack": POSETRACK18}
_BODY_NAME = {"head_bottom": "upper_neck"}  # PoseTrack joint -> the body model's joint
_HIDDEN_WHEN_BACK = ("nose", "left_eye", "right_eye")

# Difficulty of the clips (see heatpose/data/synthetic/knobs.py for the stills).
_PEOPLE_PER_CLIP = {2: 0.3, 3: 0.4, 4: 0.3}
_CLIP_HEIGHT_RANGE = (0.45, 0.8)  # standing height / frame height
_SPEED_RANGE = (0.004, 0.02)  # walking speed, frame widths per frame
_P_ENTERING = 0.35  # a person starts outside the frame and walks in
_P_CAMERA_PAN = 0.7  # clips whose camera pans (else only shakes)
_P_IGNORE_REGION = 0.3  # clips with one ignore rectangle
_MIN_VISIBLE_SHARE = 0.15  # a person is annotated when this share of its silhouette is seen ...
_MIN_JOINTS_INSIDE = 2  # ... and this many of its joints are in the frame


@dataclass
class ClipPerson:
    """One annotated person in one frame (0-based frame pixels)."""

    track_id: int
    keypoints: np.ndarray  # (K, 3) x, y, flag in the layout's schema
    bbox: tuple[float, float, float, float]  # x, y, w, h of the in-frame silhouette
    head_box: tuple[float, float, float, float]  # x, y, w, h of the head ellipse
    visible_share: float  # visible silhouette / in-frame silhouette, in [0, 1]


@dataclass
class SyntheticClip:
    """A rendered clip: frames, the people annotated in each, ignore regions (polygons, (P, 2))."""

    frames: list[np.ndarray]  # each (H, W, 3) uint8 BGR
    people: list[list[ClipPerson]]
    ignore_regions: list[list[np.ndarray]]
    camera: np.ndarray  # (T, 2) top-left corner of each frame on the background


@dataclass
class _Walker:
    track_id: int
    figure_seed: int
    height: float
    start: np.ndarray  # pelvis at t = 0, background pixels
    velocity: np.ndarray  # pixels per frame
    stride: float  # swing amplitude, degrees
    period: float  # frames per step cycle
    phase: float


def _clip_key(seed: int, split_name: str, index: int) -> list[int]:
    return [seed, zlib.crc32(split_name.encode()), zlib.crc32(b"video"), index]


def _camera_path(
    rng: np.random.Generator, num_frames: int, w: int, h: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """(T, 2) frame origins on the background and the background margin (mx, my) they need."""
    pan = np.zeros(2)
    if rng.random() < _P_CAMERA_PAN:
        pan = rng.uniform(-1, 1, 2) * np.array([0.012 * w, 0.004 * h])
    shake = rng.normal(0, 0.6, (num_frames, 2))
    path = np.arange(num_frames)[:, None] * pan[None, :] + shake
    path -= path.min(0)
    margin = (math.ceil(path[:, 0].max()) + 2, math.ceil(path[:, 1].max()) + 2)
    return path + 1.0, margin


def _walkers(rng: np.random.Generator, origin0: np.ndarray, w: int, h: int) -> list[_Walker]:
    n = int(rng.choice(list(_PEOPLE_PER_CLIP), p=list(_PEOPLE_PER_CLIP.values())))
    walkers = []
    for track_id in range(n):
        height = float(rng.uniform(*_CLIP_HEIGHT_RANGE) * h)
        direction = 1.0 if track_id % 2 == 0 else -1.0  # alternate, so people cross
        if rng.random() < 0.5:
            direction = -direction
        speed = float(rng.uniform(*_SPEED_RANGE) * w)
        if rng.random() < _P_ENTERING:
            x0 = -0.12 * w if direction > 0 else 1.12 * w
        else:
            x0 = float(rng.uniform(0.1, 0.9) * w)
        foot_y = min((0.55 + 0.5 * height / h) * h, 1.02 * h) + rng.normal(0, 0.02 * h)
        start = np.array([x0, foot_y - 0.47 * height]) + origin0
        velocity = np.array([direction * speed, rng.uniform(-0.002, 0.002) * h])
        walkers.append(
            _Walker(
                track_id=track_id,
                figure_seed=int(rng.integers(2**32)),
                height=height,
                start=start,
                velocity=velocity,
                stride=float(rng.uniform(8, 22)),
                period=float(rng.uniform(10, 18)),
                phase=float(rng.uniform(0, 2 * np.pi)),
            )
        )
    walkers.sort(key=lambda wk: wk.height)  # far (small) people are drawn first
    return walkers


def _schema_index(schema: KeypointSchema) -> list[int]:
    return [JOINT_INDEX[_BODY_NAME.get(name, name)] for name in schema.joint_names]


def _annotate(
    walker: _Walker, figure, mask: np.ndarray, covered: np.ndarray, schema: KeypointSchema, h: int, w: int
) -> ClipPerson | None:
    inside = joints_in_frame(figure.joints, h, w)
    area = int(mask.sum())
    seen = int((mask & ~covered).sum())
    if area == 0 or seen < _MIN_VISIBLE_SHARE * area or inside.sum() < _MIN_JOINTS_INSIDE:
        return None
    xy = np.round(figure.joints[inside]).astype(int)
    joint_covered = np.zeros(len(figure.joints), bool)
    joint_covered[inside] = covered[xy[:, 1], xy[:, 0]]
    if schema is POSETRACK18:
        flags = inside.astype(np.int64)
    else:
        flags = np.where(inside, np.where(joint_covered, 1, 2), 0)
        if not figure.front:
            hidden = [JOINT_INDEX[n] for n in _HIDDEN_WHEN_BACK]
            flags[hidden] = np.minimum(flags[hidden], 1)
    body = np.concatenate([figure.joints * (flags > 0)[:, None], flags[:, None]], 1)
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = figure.headbox
    return ClipPerson(
        track_id=walker.track_id,
        keypoints=body[_schema_index(schema)],
        bbox=(
            float(xs.min()),
            float(ys.min()),
            float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1),
        ),
        head_box=(x0, y0, x1 - x0, y1 - y0),
        visible_share=seen / area,
    )


def check_video_args(num_frames: int, layout: str, image_size: tuple[int, int]) -> KeypointSchema:
    if not isinstance(num_frames, int) or num_frames < 2:
        raise HeatposeError(f"a clip needs at least 2 frames, got {num_frames!r}")
    if layout not in VIDEO_LAYOUTS:
        raise HeatposeError(f"unknown video layout {layout!r}; known: {', '.join(VIDEO_LAYOUTS)}")
    if len(image_size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 64 for v in image_size):
        raise HeatposeError(f"image_size must be (width, height), integers >= 64, got {image_size!r}")
    return VIDEO_LAYOUTS[layout]


def render_synthetic_clip(
    seed: int,
    index: int,
    num_frames: int = 24,
    image_size: tuple[int, int] = (320, 256),
    split_name: str = "val",
    layout: str = "posetrack",
) -> SyntheticClip:
    """Clip ``index`` of the split ``write_synthetic_videos`` writes with these arguments."""
    schema = check_video_args(num_frames, layout, image_size)
    w, h = image_size
    key = _clip_key(seed, split_name, index)
    rng = np.random.default_rng(key)
    light = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0))
    camera, (mx, my) = _camera_path(rng, num_frames, w, h)
    background = render_background(rng, h + my, w + mx, light).color
    walkers = _walkers(rng, camera[0], w, h)
    ignore: np.ndarray | None = None
    if rng.random() < _P_IGNORE_REGION:
        size = rng.uniform(0.12, 0.25, 2) * np.array([w, h])
        corner = np.array([rng.uniform(0, w - size[0]), rng.uniform(0, 0.25 * h)]) + camera[0]
        ignore = corner + np.array([[0, 0], [size[0], 0], size, [0, size[1]]])
    gain, bias = np.float32(rng.uniform(0.88, 1.12)), np.float32(rng.uniform(-0.05, 0.05))
    blur = float(rng.uniform(0.3, 0.9)) if rng.random() < 0.5 else 0.0
    noise_sd = float(rng.uniform(0.0, 0.02))
    frames, people, regions = [], [], []
    for t in range(num_frames):
        origin = camera[t]
        shift = np.float32([[1, 0, -origin[0]], [0, 1, -origin[1]]])
        img = cv2.warpAffine(background, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        drawn = []
        for wk in walkers:
            anchor = wk.start + wk.velocity * t - origin
            swing = wk.stride * math.sin(2 * math.pi * t / wk.period + wk.phase)
            figure = sample_figure(np.random.default_rng(wk.figure_seed), wk.height, anchor, swing)
            x0, y0, x1, y1 = figure.extent
            if x1 < 0 or y1 < 0 or x0 > w - 1 or y0 > h - 1:
                continue
            noise = noise_field(np.random.default_rng([wk.figure_seed, 1]), h, w)
            layer = Layer.empty(h, w, noise, light)
            for op in figure.ops:
                op(layer)
            drawn.append((wk, figure, layer))
        masks = [layer.alpha >= 0.5 for _, _, layer in drawn]
        frame_people = []
        for i, (wk, figure, layer) in enumerate(drawn):
            img = img * (1.0 - layer.alpha[..., None]) + layer.color
            covered = np.zeros((h, w), bool)
            for later in masks[i + 1 :]:
                covered |= later
            person = _annotate(wk, figure, masks[i], covered, schema, h, w)
            if person is not None:
                frame_people.append(person)
        frame_rng = np.random.default_rng([*key, t + 1])
        img = img * gain + bias
        if blur:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        img = img + frame_rng.normal(0.0, noise_sd, img.shape).astype(np.float32)
        frames.append((np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
        people.append(sorted(frame_people, key=lambda p: p.track_id))
        regions.append([] if ignore is None else [ignore - origin])
    return SyntheticClip(frames=frames, people=people, ignore_regions=regions, camera=camera)


def simulate_detections(
    clip: SyntheticClip, rng: np.random.Generator, miss_rate: float = 0.05, false_rate: float = 0.3
) -> list[list[tuple[tuple[float, float, float, float], float]]]:
    """Per frame, ``(box xywh, score)`` of a plausible person detector run on ``clip``.

    Each annotated person is found with probability ``1 - miss_rate - 0.5 * hidden share``; its
    box edges move by N(0, 5% of the box size); the score falls with occlusion and is noisy, so
    some true people score under 0.5. About ``false_rate`` false positives per frame (person-shaped
    boxes at random places, scores mostly low).
    """
    h, w = clip.frames[0].shape[:2]
    out = []
    for frame_people in clip.people:
        dets = []
        for p in frame_people:
            if rng.random() < miss_rate + 0.5 * (1.0 - p.visible_share):
                continue
            x, y, bw, bh = p.bbox
            e = rng.normal(0, 0.05, 4) * np.array([bw, bh, bw, bh])
            x0, y0 = max(x + e[0], 0.0), max(y + e[1], 0.0)
            x1, y1 = min(x + bw + e[2], w - 1.0), min(y + bh + e[3], h - 1.0)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            score = float(np.clip(0.45 + 0.45 * p.visible_share + rng.normal(0, 0.1), 0.05, 1.0))
            dets.append(((x0, y0, x1 - x0, y1 - y0), score))
        for _ in range(int(rng.poisson(false_rate))):
            bh = float(rng.uniform(0.2, 0.6) * h)
            bw = bh * float(rng.uniform(0.3, 0.6))
            x0, y0 = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            dets.append(((x0, y0, bw, bh), float(rng.beta(2, 5))))
        out.append(sorted(dets, key=lambda d: -d[1]))
    return out
