"""PCKh, exactly as the Simple Baselines / HRNet MPII evaluation computes it (and the MATLAB columns).

A joint of a person counts when it is *annotated* (MPII's ``jnt_missing == 0``: occluded
joints count too). Its error is the distance between prediction and ground truth divided by
the person's head size, and it is correct when ``error <= threshold`` (inclusive). All
coordinates are 0-based pixels; the official code adds 1 to the predictions because its
ground truth is 1-based, which cancels out.

Columns of the official protocol (``lib/dataset/mpii.py: evaluate`` in both repos):

* per joint: ``100 * correct / annotated`` over all people;
* Head = head top; Shoulder, Elbow, Wrist, Hip, Knee, Ankle = mean of the left and right joint;
* Mean = per-joint PCKh weighted by the number of annotated joints, pelvis and thorax left out
  (the upper neck is in);
* Mean@0.1 = the same at threshold 0.1. The official code reads row 11 of its curve over
  ``np.arange(0, 0.51, 0.01)``, which is threshold **0.11**; that value is reported as well, as
  ``Mean@0.11 (official code)``, so published "Mean@0.1" numbers can be compared.

``protocol="matlab"`` gives the MPII MATLAB toolkit's table instead (``evaluatePCKh.m`` /
``computePCK.m``): Head = mean of upper neck and head top, UBody pooled over shoulders, elbows
and wrists, Total pooled over the 14 joints without pelvis and thorax. Per-joint numbers are
the same in both protocols.

Joint groups are found by joint name, so any schema with these names works (MPII-16, LIP-16,
where joint 7 is the spine and is left out of the Mean like MPII's thorax).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heatpose.errors import HeatposeError
from heatpose.keypoints import KeypointSchema

PCKH_THRESHOLD = 0.5
# The official curve: 51 thresholds 0, 0.01, ..., 0.5 (np.arange as the official code builds it).
CURVE_THRESHOLDS = np.arange(0, PCKH_THRESHOLD + 0.01, 0.01)
OFFICIAL_MEAN01_INDEX = 11  # what the official code reads as "Mean@0.1": CURVE_THRESHOLDS[11] == 0.11
MEAN01_NAME = "Mean@0.1"
MEAN011_NAME = "Mean@0.11 (official code)"
PROTOCOLS = ("official", "matlab")
# Validation metrics of MPII/LIP runs: "PCKh" is the Mean (the name configs pick best.pth by).
PCKH_METRIC_NAMES = (
    "PCKh", "Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", MEAN01_NAME, MEAN011_NAME,
)  # fmt: skip

# Joints left out of the Mean/Total: MPII's pelvis and thorax, LIP's pelvis and spine.
EXCLUDED_FROM_MEAN = ("pelvis", "thorax", "spine")
# Reported columns: name -> joints averaged (simple mean of their per-joint PCKh).
_LIMB_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Shoulder", ("left_shoulder", "right_shoulder")),
    ("Elbow", ("left_elbow", "right_elbow")),
    ("Wrist", ("left_wrist", "right_wrist")),
    ("Hip", ("left_hip", "right_hip")),
    ("Knee", ("left_knee", "right_knee")),
    ("Ankle", ("left_ankle", "right_ankle")),
)
OFFICIAL_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (("Head", ("head_top",)), *_LIMB_COLUMNS)
MATLAB_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Head", ("upper_neck", "head_top")),
    *_LIMB_COLUMNS,
)
MATLAB_UPPER_BODY = (
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
)


@dataclass
class PCKhGroundTruth:
    """Single-person pose annotations to score against, in 0-based pixels.

    ``joints`` (N, K, 2); ``annotated`` (N, K) bool: the joint was labelled (visible or not);
    ``head_size`` (N,) the PCKh normaliser in pixels, 0 where unknown (that person's joints
    are then not counted); ``normalizer`` says in words where the head sizes came from.
    ``image_names`` (N,) lets predictions files be checked row by row.
    """

    image_names: list[str]
    joints: np.ndarray
    annotated: np.ndarray
    head_size: np.ndarray
    normalizer: str
    schema: KeypointSchema
    source: str

    def __len__(self) -> int:
        return len(self.image_names)

    def counted(self) -> np.ndarray:
        """(N, K) bool: annotated joints of people that have a head size."""
        return self.annotated & (self.head_size > 0)[:, None]


@dataclass
class PCKhResult:
    """Everything a PCKh evaluation reports; percentages (0-100)."""

    protocol: str
    threshold: float
    joint_names: tuple[str, ...]
    per_joint: np.ndarray  # (K,) PCKh at ``threshold``; nan where no joint is counted
    counts: np.ndarray  # (K,) annotated joints counted
    curve_thresholds: np.ndarray  # (T,)
    curve: np.ndarray  # (T, K) per-joint PCKh at each curve threshold
    columns: dict[str, float]  # the table: Head, Shoulder, ..., Mean (or Total), Mean@0.1, ...
    normalizer: str = ""
    num_people: int = 0
    people_without_head_size: int = 0
    excluded: tuple[str, ...] = field(default_factory=tuple)

    def metrics(self) -> dict[str, float]:
        """``PCKH_METRIC_NAMES`` -> value (official protocol): what training validation logs."""
        return {"PCKh": self.mean, **self.columns}

    @property
    def mean(self) -> float:
        return self.columns["Mean" if self.protocol == "official" else "Total"]

    def as_dict(self) -> dict[str, Any]:
        """The columns (finite floats or None) plus how they were computed, for ``--json``."""
        out: dict[str, Any] = {k: _finite_or_none(v) for k, v in self.columns.items()}
        out["protocol"] = self.protocol
        out["threshold"] = self.threshold
        out["normalizer"] = self.normalizer
        out["num_people"] = self.num_people
        out["people_without_head_size"] = self.people_without_head_size
        out["per_joint"] = {
            n: _finite_or_none(v) for n, v in zip(self.joint_names, self.per_joint, strict=True)
        }
        out["joint_counts"] = {n: int(c) for n, c in zip(self.joint_names, self.counts, strict=True)}
        return out


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def normalized_errors(pred: np.ndarray, gt: PCKhGroundTruth) -> np.ndarray:
    """(N, K) distance / head size; NaN where the joint is not counted (unannotated, no head size)."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != gt.joints.shape:
        raise HeatposeError(f"predictions have shape {pred.shape}, ground truth {gt.joints.shape}")
    dist = np.linalg.norm(pred - gt.joints, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        errors = dist / gt.head_size[:, None]
    return np.where(gt.counted(), errors, np.nan)


def _per_joint_pck(errors: np.ndarray, counts: np.ndarray, threshold: float) -> np.ndarray:
    """(K,) ``100 * #(error <= threshold) / count``; NaN where a joint has no count."""
    correct = np.sum(errors <= threshold, axis=0)  # NaN compares False: uncounted joints add nothing
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(100.0 * correct, counts)


def _indices(schema: KeypointSchema, names: tuple[str, ...]) -> list[int]:
    missing = [n for n in names if n not in schema.joint_names]
    if missing:
        raise HeatposeError(f"PCKh needs joint {missing[0]!r}, which schema {schema.name!r} does not have")
    return [schema.joint_names.index(n) for n in names]


def _weighted_mean(pck: np.ndarray, counts: np.ndarray, keep: np.ndarray) -> float:
    """Official Mean: sum of per-joint PCKh x (count / total count) over the kept joints.

    Summed over all K joints with the left-out ones as 0, as the official masked arrays do, so
    the floating-point result is the official one. A kept joint that is never annotated has
    PCKh NaN and weight 0; it adds nothing (the official code would return NaN).
    """
    kept_counts = np.where(keep, counts, 0.0)
    total = np.sum(kept_counts)
    if total == 0:
        return float("nan")
    ratio = kept_counts / total
    return float(np.sum(np.where(ratio > 0, pck * ratio, 0.0)))


def _pooled(errors: np.ndarray, joints: list[int], threshold: float) -> float:
    """MATLAB toolkit: one PCK over every counted joint in ``joints`` (pooled, not averaged)."""
    sel = errors[:, joints]
    counted = ~np.isnan(sel)
    n = int(counted.sum())
    return 100.0 * float(np.sum(sel[counted] <= threshold)) / n if n else float("nan")


def compute_pckh(
    pred: np.ndarray,
    gt: PCKhGroundTruth,
    threshold: float = PCKH_THRESHOLD,
    protocol: str = "official",
) -> PCKhResult:
    """PCKh of (N, K, 2) 0-based pixel predictions against ``gt`` (see the module docstring)."""
    if protocol not in PROTOCOLS:
        raise HeatposeError(f"unknown PCKh protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if not np.isfinite(np.asarray(pred, dtype=np.float64)).all():
        raise HeatposeError("predictions contain NaN or infinite coordinates")
    schema = gt.schema
    errors = normalized_errors(pred, gt)
    counts = np.sum(~np.isnan(errors), axis=0).astype(np.float64)
    per_joint = _per_joint_pck(errors, counts, threshold)
    curve = np.stack([_per_joint_pck(errors, counts, t) for t in CURVE_THRESHOLDS])
    excluded = tuple(n for n in EXCLUDED_FROM_MEAN if n in schema.joint_names)
    keep = np.ones(schema.num_joints, dtype=bool)
    keep[_indices(schema, excluded)] = False

    columns: dict[str, float] = {}
    if protocol == "official":
        for name, joints in OFFICIAL_COLUMNS:
            columns[name] = float(np.mean(per_joint[_indices(schema, joints)]))
        columns["Mean"] = _weighted_mean(per_joint, counts, keep)
        columns[MEAN01_NAME] = _weighted_mean(_per_joint_pck(errors, counts, 0.1), counts, keep)
        columns[MEAN011_NAME] = _weighted_mean(curve[OFFICIAL_MEAN01_INDEX], counts, keep)
    else:
        for name, joints in MATLAB_COLUMNS:
            columns[name] = float(np.mean(per_joint[_indices(schema, joints)]))
        columns["UBody"] = _pooled(errors, _indices(schema, MATLAB_UPPER_BODY), threshold)
        columns["Total"] = _pooled(errors, list(np.flatnonzero(keep)), threshold)
        columns["Total@0.1"] = _pooled(errors, list(np.flatnonzero(keep)), 0.1)
    return PCKhResult(
        protocol=protocol,
        threshold=float(threshold),
        joint_names=schema.joint_names,
        per_joint=per_joint,
        counts=counts,
        curve_thresholds=CURVE_THRESHOLDS.copy(),
        curve=curve,
        columns=columns,
        normalizer=gt.normalizer,
        num_people=len(gt),
        people_without_head_size=int(np.sum(~(gt.head_size > 0))),
        excluded=excluded,
    )


def format_pckh_table(result: PCKhResult) -> str:
    """The column header and one row of numbers (two decimals, as the papers print them)."""
    widths = [max(8, len(n) + 2) for n in result.columns]
    cells = ["n/a" if not np.isfinite(v) else f"{v:.2f}" for v in result.columns.values()]
    header = "".join(f"{n:>{w}}" for n, w in zip(result.columns, widths, strict=True))
    row = "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
    return header + "\n" + row


def describe_result(result: PCKhResult) -> list[str]:
    """Header lines that say how the numbers were computed."""
    lines = [
        f"PCKh@{result.threshold:g} ({result.protocol} protocol), {result.num_people} people, "
        f"head size: {result.normalizer}",
        f"{'Mean' if result.protocol == 'official' else 'Total'} leaves out: {', '.join(result.excluded)}",
    ]
    if result.people_without_head_size:
        n = result.people_without_head_size
        lines.append(f"{n} people have no head size: their joints are not counted")
    return lines
