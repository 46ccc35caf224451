"""Keypoint schemas: joint names, left/right flip pairs, skeleton edges, OKS sigmas.

COCO-17 follows the official ``person_keypoints`` category; MPII-16 follows the MPII
Human Pose joint ids; LIP-16 uses the MPII order with joint 7 the spine instead of the thorax;
AIC-14 follows AI Challenger's annotation order. ``schema_mapping`` gives the joint maps between
schemas that multi-dataset training uses. Any other keypoint set is an instance of the same
:class:`KeypointSchema`, read from data by :mod:`heatpose.schema_io` (a COCO category plus an
optional YAML file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heatpose.errors import HeatposeError


@dataclass(frozen=True)
class KeypointSchema:
    """A fixed set of joints and what is known about them.

    Indices are 0-based. Construction checks the schema (one :class:`HeatposeError` line per
    problem): unique names, flip pairs in range with no joint in two pairs (so the flip is its
    own inverse), skeleton and upper-body indices in range, and one sigma / loss weight /
    colour per joint when given.
    """

    name: str
    joint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None = None  # OKS per-joint sigmas (None: schema_io's default rule)
    upper_body: tuple[int, ...] = ()  # joints of the upper half, for half-body augmentation
    joint_weights: tuple[float, ...] | None = None  # per-joint loss weights (None: all 1)
    colors: tuple[tuple[int, int, int], ...] | None = None  # RGB per joint, for drawing

    def __post_init__(self) -> None:
        check_schema(self)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def flip_index(self) -> list[int]:
        """``flip_index[j]`` is the joint that ``j`` becomes in a horizontally mirrored image."""
        index = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    def oks_sigmas(self) -> np.ndarray:
        if self.sigmas is None:
            raise HeatposeError(f"keypoint schema {self.name!r} has no OKS sigmas")
        return np.asarray(self.sigmas, dtype=np.float64)


def check_schema(schema: KeypointSchema) -> None:
    """Raise one clear :class:`HeatposeError` for the first thing wrong with ``schema``."""
    where = f"keypoint schema {schema.name!r}"
    k = len(schema.joint_names)
    if k < 1:
        raise HeatposeError(f"{where}: no joints")
    seen: dict[str, int] = {}
    for j, n in enumerate(schema.joint_names):
        if not isinstance(n, str) or not n:
            raise HeatposeError(f"{where}: joint {j} has no name")
        if n in seen:
            raise HeatposeError(f"{where}: duplicate joint name {n!r} (joints {seen[n]} and {j})")
        seen[n] = j
    partner: dict[int, int] = {}
    for pair in schema.flip_pairs:
        if len(pair) != 2 or not all(isinstance(i, int) and 0 <= i < k for i in pair):
            raise HeatposeError(
                f"{where}: flip pair {list(pair)} is out of range for {k} joints (0..{k - 1})"
            )
        a, b = pair
        if a == b:
            raise HeatposeError(
                f"{where}: flip pair {list(pair)} pairs joint {schema.joint_names[a]!r} with itself"
            )
        for x, y in ((a, b), (b, a)):
            if x in partner and partner[x] != y:
                raise HeatposeError(
                    f"{where}: flip pairs map two joints onto {schema.joint_names[x]!r} "
                    f"({schema.joint_names[partner[x]]!r} and {schema.joint_names[y]!r})"
                )
            partner[x] = y
    for edge in schema.skeleton:
        if len(edge) != 2 or not all(isinstance(i, int) and 0 <= i < k for i in edge):
            raise HeatposeError(
                f"{where}: skeleton edge {list(edge)} is out of range for {k} joints (0..{k - 1})"
            )
    bad = [i for i in schema.upper_body if not (isinstance(i, int) and 0 <= i < k)]
    if bad:
        raise HeatposeError(f"{where}: upper_body index {bad[0]} is out of range for {k} joints")
    for field_name, values in (("sigmas", schema.sigmas), ("joint_weights", schema.joint_weights)):
        if values is None:
            continue
        if len(values) != k:
            raise HeatposeError(f"{where}: {len(values)} {field_name} for {k} joints")
        if not all(np.isfinite(v) and (v > 0 if field_name == "sigmas" else v >= 0) for v in values):
            sign = "> 0" if field_name == "sigmas" else ">= 0"
            raise HeatposeError(f"{where}: every value of {field_name} must be finite and {sign}")
    if schema.colors is not None:
        if len(schema.colors) != k:
            raise HeatposeError(f"{where}: {len(schema.colors)} colors for {k} joints")
        if not all(len(c) == 3 and all(0 <= int(v) <= 255 for v in c) for c in schema.colors):
            raise HeatposeError(f"{where}: colors must be [r, g, b] with values 0..255")


COCO17 = KeypointSchema(
    name="coco",
    joint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    skeleton=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
    upper_body=tuple(range(11)),
)

MPII16 = KeypointSchema(
    name="mpii",
    joint_names=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (7, 12),
        (12, 11),
        (11, 10),
        (7, 13),
        (13, 14),
        (14, 15),
    ),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)

# LIP annotates 16 joints in the MPII order, but joint 7 is the spine where MPII has the thorax.
LIP16 = KeypointSchema(
    name="lip",
    joint_names=(*MPII16.joint_names[:7], "spine", *MPII16.joint_names[8:]),
    flip_pairs=MPII16.flip_pairs,
    skeleton=MPII16.skeleton,
    upper_body=MPII16.upper_body,
)

# AI Challenger person keypoints (Wu et al. 2017), in the order of its annotation files.
AIC14 = KeypointSchema(
    name="aic",
    joint_names=(
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "head_top",
        "neck",
    ),
    flip_pairs=((0, 3), (1, 4), (2, 5), (6, 9), (7, 10), (8, 11)),
    skeleton=(
        (2, 1),
        (1, 0),
        (0, 13),
        (13, 3),
        (3, 4),
        (4, 5),
        (8, 7),
        (7, 6),
        (6, 9),
        (9, 10),
        (10, 11),
        (12, 13),
        (0, 6),
        (3, 9),
    ),
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
)

# PoseTrack 2018's 17 joints: COCO's body with head_bottom / head_top in place of the eyes. OKS
# sigmas as MMPose uses for PoseTrack18 (COCO's; eyes' values for head_bottom / head_top).
POSETRACK18 = KeypointSchema(
    name="posetrack18",
    joint_names=("nose", "head_bottom", "head_top", *COCO17.joint_names[3:]),
    flip_pairs=COCO17.flip_pairs[1:],
    skeleton=COCO17.skeleton,
    sigmas=COCO17.sigmas,
    upper_body=COCO17.upper_body,
)

SCHEMAS: dict[str, KeypointSchema] = {s.name: s for s in (COCO17, MPII16, LIP16, AIC14, POSETRACK18)}

# Joints that mean the same body point in both schemas: COCO index -> MPII index.
COCO_TO_MPII: dict[int, int] = {
    5: 13,
    6: 12,
    7: 14,
    8: 11,
    9: 15,
    10: 10,
    11: 3,
    12: 2,
    13: 4,
    14: 1,
    15: 5,
    16: 0,
}


# AI Challenger index -> MPII index. AIC's "neck" is left out: it lies between MPII's thorax
# and upper_neck (in the AIC samples about a quarter of the way from the shoulder line to the
# head top), so mapping it to either would teach a biased location; it gets weight 0.
AIC_TO_MPII: dict[int, int] = {
    0: 12,
    1: 11,
    2: 10,
    3: 13,
    4: 14,
    5: 15,
    6: 2,
    7: 1,
    8: 0,
    9: 3,
    10: 4,
    11: 5,
    12: 9,
}

# (source schema, target schema) -> joint map, for multi-dataset training (data.train_sets).
# LIP keeps MPII's order but has the spine where MPII has the thorax (joint 7): every other
# joint maps onto itself, and the COCO/AIC maps (which never reach joint 7) serve LIP too.
_MPII_LIP_SHARED: dict[int, int] = {i: i for i in range(MPII16.num_joints) if i != 7}
SCHEMA_MAPPINGS: dict[tuple[str, str], dict[int, int]] = {
    ("coco", "mpii"): COCO_TO_MPII,
    ("coco", "lip"): COCO_TO_MPII,
    ("aic", "mpii"): AIC_TO_MPII,
    ("aic", "lip"): AIC_TO_MPII,
    ("mpii", "lip"): _MPII_LIP_SHARED,
    ("lip", "mpii"): _MPII_LIP_SHARED,
}


def schema_mapping(source: str, target: str) -> dict[int, int]:
    """Joint map from schema ``source`` onto schema ``target`` (identity when they are equal)."""
    if source == target:
        return {i: i for i in range(get_schema(source).num_joints)}
    try:
        return SCHEMA_MAPPINGS[(source, target)]
    except KeyError:
        known = ", ".join(f"{a}->{b}" for a, b in SCHEMA_MAPPINGS)
        raise HeatposeError(
            f"no keypoint mapping from schema {source!r} to {target!r}; known: {known}"
        ) from None


def get_schema(name: str) -> KeypointSchema:
    try:
        return SCHEMAS[name]
    except KeyError:
        raise HeatposeError(f"unknown keypoint schema {name!r}; known: {', '.join(SCHEMAS)}") from None


def map_keypoints(keypoints: np.ndarray, mapping: dict[int, int], num_target: int) -> np.ndarray:
    """Carry (..., K_src, C) keypoints into a target schema; unmapped joints are zero (invisible)."""
    out = np.zeros((*keypoints.shape[:-2], num_target, keypoints.shape[-1]), dtype=keypoints.dtype)
    for src, dst in mapping.items():
        out[..., dst, :] = keypoints[..., src, :]
    return out
