"""The figure model: body proportions, a random pose, and the draw calls of one person.

:func:`sample_figure` turns random draws into joint positions in image pixels (the body joints of
:data:`BODY_JOINTS`), a head box and a z-ordered list of draw calls; nothing is drawn here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from heatpose.data.synthetic.draw import (
    Layer,
    Style,
    contrast_color,
    draw_capsule,
    draw_ellipse,
    draw_head,
    draw_polygon,
    random_color,
)
from heatpose.data.synthetic.flat import flat_person_ops
from heatpose.data.synthetic.knobs import P_FRONT, P_UPRIGHT, SKIN_TONES
from heatpose.keypoints import COCO17

# Every joint the body model knows: the COCO-17 joints, then the four MPII-only ones.
BODY_JOINTS: tuple[str, ...] = (*COCO17.joint_names, "pelvis", "thorax", "upper_neck", "head_top")
JOINT_INDEX = {name: i for i, name in enumerate(BODY_JOINTS)}


@dataclass
class Figure:
    """One drawn person: joints in image pixels, draw calls in z-order, extents."""

    joints: np.ndarray  # (len(BODY_JOINTS), 2)
    front: bool
    ops: list[Callable[[Layer], None]]
    extent: tuple[float, float, float, float]  # x0, y0, x1, y1 of all parts, unclipped
    headbox: tuple[float, float, float, float]


def rotation(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


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


def sample_figure(
    rng: np.random.Generator, height: float, anchor: np.ndarray, swing: float = 0.0, style: str = "default"
) -> Figure:
    """A random person of standing height ``height`` px with its pelvis at ``anchor``.

    ``swing`` (degrees) moves the legs and arms in opposite phase on the two sides after the pose
    is drawn, without drawing any random number: the same ``rng`` state with a varying ``swing``
    and ``anchor`` is the same person walking (used by the video clips; 0 leaves stills unchanged).
    ``style`` only changes the look (``"flat"``: :mod:`~heatpose.data.synthetic.flat`); the
    geometry, and so every keypoint, is drawn first and the same way for every style.
    """
    H = height
    front = bool(rng.random() < P_FRONT)
    lx = 1.0 if front else -1.0  # body-frame x sign of the person's left side

    def jit(lo: float = 0.9, hi: float = 1.1) -> float:
        return float(rng.uniform(lo, hi))

    torso_len, sh_w, hip_w, neck_len = (f * H * jit() for f in (0.30, 0.115, 0.065, 0.045))
    seg = {"ua": 0.165 * H * jit(), "fa": 0.155 * H * jit(), "th": 0.245 * H * jit(), "sh": 0.24 * H * jit()}
    thick = jit(0.8, 1.25)
    rad = {"ua": 0.038 * H * thick, "fa": 0.031 * H * thick, "th": 0.056 * H * thick, "sh": 0.042 * H * thick}
    rx, ry = 0.05 * H * jit(), 0.066 * H * jit()
    pose = _sample_limbs(rng)
    if swing:
        for side, sgn in (("left", 1.0), ("right", -1.0)):
            pose[side]["leg_h"] += sgn * swing
            pose[side]["arm_a"] -= sgn * 0.6 * swing

    upright = rng.random() < P_UPRIGHT
    theta = float(np.clip(rng.normal(0, 10), -30, 30) if upright else rng.uniform(-90, 90))
    R = rotation(math.radians(theta))

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
    if style == "flat":
        ops, bounds = flat_person_ops(img, rad, H, rx, ry, head_angle, front, rng)
    elif style == "default":
        ops, bounds = _person_ops(img, rad, H, rx, ry, head_angle, front, _Look.sample(rng, H), rng)
    else:
        raise ValueError(f"unknown synthetic style {style!r}")
    ext = np.array(bounds)
    extent = (*ext[:, :2].min(0).tolist(), *ext[:, 2:].max(0).tolist())
    hx = math.hypot(rx * math.cos(head_angle), ry * math.sin(head_angle))
    hy = math.hypot(rx * math.sin(head_angle), ry * math.cos(head_angle))
    hc = T(head_c)
    return Figure(
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
    shirt: Style
    pants: Style
    shoes: np.ndarray
    sleeves: int  # 0 none, 1 short, 2 long
    shorts: bool
    hairstyle: float
    limb_texture: str = "solid"
    stripe_phase: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, H: float) -> _Look:
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * np.float32(rng.uniform(0.9, 1.1))
        hair = (
            np.float32(rng.uniform(0.05, 0.45))
            * np.array([0.8, 0.9, 1.1], np.float32)
            * rng.uniform(0.8, 1.2, 3).astype(np.float32)
        )
        texture = str(rng.choice(["solid", "stripes", "noise"], p=[0.4, 0.3, 0.3]))
        shirt = Style(random_color(rng), texture, random_color(rng), float(rng.uniform(0.03, 0.06) * H))
        pants = Style(random_color(rng), str(rng.choice(["solid", "noise"], p=[0.6, 0.4])))
        return cls(
            skin=np.clip(skin, 0, 1),
            hair=np.clip(hair, 0, 1),
            shirt=shirt,
            pants=pants,
            shoes=random_color(rng) * np.float32(0.5),
            sleeves=int(rng.choice(3, p=[0.25, 0.4, 0.35])),
            shorts=bool(rng.random() < 0.3),
            hairstyle=float(rng.uniform(-0.15, 0.2)),
            limb_texture=str(rng.choice(["solid", "noise", "stripes"], p=[0.5, 0.3, 0.2])),
            stripe_phase=float(rng.uniform(0, 2 * np.pi)),
        )

    def limb(self, base: np.ndarray, radius: float) -> Style:
        """Both sides alike: a one-sided marking would contradict flip augmentation."""
        period = max(5.0, 2.2 * radius)
        return Style(base, self.limb_texture, contrast_color(base), period, self.stripe_phase)


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
) -> tuple[list[Callable[[Layer], None]], list[tuple[float, float, float, float]]]:
    """Draw calls in z-order (legs, torso, neck, ears, head, face, arms) and their bounds."""
    ops: list[Callable[[Layer], None]] = []
    bounds: list[tuple[float, float, float, float]] = []

    def capsule(a: np.ndarray, c: np.ndarray, r0: float, r1: float, style: Style) -> None:
        ops.append(partial(draw_capsule, p0=a, p1=c, r0=r0, r1=r1, style=style))
        r = max(r0, r1)
        bounds.append((min(a[0], c[0]) - r, min(a[1], c[1]) - r, max(a[0], c[0]) + r, max(a[1], c[1]) + r))

    def ellipse(c: np.ndarray, ax: float, ay: float, angle: float, style: Style) -> None:
        ops.append(partial(draw_ellipse, c=c, ax=ax, ay=ay, angle=angle, style=style))
        r = max(ax, ay)
        bounds.append((c[0] - r, c[1] - r, c[0] + r, c[1] + r))

    def limb(side: str, a: str, b: str, r: str, taper: float, color: np.ndarray) -> None:
        style = look.limb(color, rad[r])
        capsule(p[f"{side}_{a}"], p[f"{side}_{b}"], rad[r], rad[r] * taper, style)

    def pad(side: str, joint: str, r: str, color: np.ndarray) -> None:
        """A darker disc that marks an elbow or knee even when the limb is straight."""
        ellipse(p[f"{side}_{joint}"], 0.9 * rad[r], 0.9 * rad[r], 0.0, Style(color * 0.72))

    def end(side: str, a: str, b: str, size: tuple[float, float], color: np.ndarray) -> None:
        d = p[f"{side}_{b}"] - p[f"{side}_{a}"]  # hands and feet point along their limb
        ellipse(
            p[f"{side}_{b}"], size[0] * H, size[1] * H, math.atan2(d[1], d[0]) - math.pi / 2, Style(color)
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
    ops.append(partial(draw_polygon, pts=hull, style=look.shirt, frame=frame))
    bounds.append((*hull.min(0), *hull.max(0)))
    waist = p["pelvis"] - ey * 0.12 * torso_len
    belt = [waist + ex * (sh_w * 1.2), waist - ex * (sh_w * 1.2)]
    low = np.concatenate([hull[(hull - waist) @ ey > 0], *[np.array(belt, np.float32)]]).astype(np.float32)
    if len(low) >= 3:
        ops.append(partial(draw_polygon, pts=cv2.convexHull(low)[:, 0, :], style=look.pants, frame=frame))

    # which way someone faces decides left/right, so the torso shows it too (symmetrically)
    if front:  # a V-neck and a row of buttons
        top = p["thorax"] - ey * 0.02 * torso_len
        vneck = np.array([top - ex * 0.3 * sh_w, top + ex * 0.3 * sh_w, top + ey * 0.24 * torso_len])
        ops.append(partial(draw_polygon, pts=vneck.astype(np.float32), style=Style(look.skin), frame=frame))
        button = Style(contrast_color(look.shirt.color))
        for f in (0.38, 0.54, 0.7):
            ellipse(p["thorax"] + ey * f * torso_len, 0.013 * H, 0.013 * H, 0.0, button)
    neck_end = p["upper_neck"] + (p["upper_neck"] - p["thorax"]) * 0.5
    capsule(p["thorax"], neck_end, 0.024 * H, 0.022 * H, Style(look.skin * 0.92))
    if not front:  # a dark collar across the back of the neck
        c = p["thorax"] + ey * 0.04 * torso_len
        capsule(
            c - ex * 0.4 * sh_w, c + ex * 0.4 * sh_w, 0.022 * H, 0.022 * H, Style(look.shirt.color * 0.45)
        )
    for side in ("left", "right"):
        ellipse(p[f"{side}_ear"], 0.24 * rx, 0.32 * ry, head_angle, Style(look.skin * 0.85))
    head_c = p["head_c"]
    head = partial(draw_head, c=head_c, ax=rx, ay=ry, angle=head_angle, front=front)
    ops.append(partial(head, skin=look.skin, hair=look.hair, hairstyle=look.hairstyle))
    bounds.append((head_c[0] - ry, head_c[1] - ry, head_c[0] + ry, head_c[1] + ry))
    if front:
        for side in ("left", "right"):
            ellipse(p[f"{side}_eye"], 0.2 * rx, 0.12 * ry, head_angle, Style(np.full(3, 0.95, np.float32)))
            ellipse(p[f"{side}_eye"], 0.1 * rx, 0.1 * rx, head_angle, Style(np.full(3, 0.06, np.float32)))
        ellipse(p["nose"], 0.12 * rx, 0.16 * ry, head_angle, Style(look.skin * 0.7))
        ca, sa = math.cos(head_angle), math.sin(head_angle)
        mouth = p["nose"] + np.array([-sa, ca]) * 0.33 * ry
        ellipse(mouth, 0.28 * rx, 0.06 * ry, head_angle, Style(np.array([0.25, 0.2, 0.6], np.float32)))

    rng.shuffle(sides)
    for side in sides:
        forearm = look.shirt.color if look.sleeves == 2 else look.skin
        limb(side, "shoulder", "elbow", "ua", 0.9, look.shirt.color if look.sleeves else look.skin)
        limb(side, "elbow", "wrist", "fa", 0.62, forearm)
        pad(side, "elbow", "fa", forearm)
        end(side, "wrist", "hand", (0.03, 0.04), look.skin * 0.85)  # wider than the wrist
    return ops, bounds
