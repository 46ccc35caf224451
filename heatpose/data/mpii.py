"""MPII Human Pose readers: the official json list, pose-hg ``annot/*.h5`` and ``gt_<split>.mat``.

Everything comes out in heatpose's convention, **0-based pixel coordinates** (pixel (i, j)
centred at (i, j)); MPII's own files are 1-based (MATLAB), so one is subtracted on reading.

* The json list used by Simple Baselines and HRNet (``annot/train.json``, ``valid.json``):
  entries ``image``, ``center``, ``scale``, ``joints``, ``joints_vis`` (and optionally
  ``headbox`` = [x1, y1, x2, y2], 1-based, as ``heatpose synth --layout mpii`` writes). The
  official reader adjusts the box so that feet are not cropped off -- ``center.y += 15 * scale``,
  then ``scale *= 1.25`` (unless ``center.x == -1``) -- and then subtracts 1 from centre and
  joints. ``joints_vis`` marks *annotated* joints (unannotated ones are [-1, -1]).
* pose-hg-train's h5 files (``imgname``, ``part``, ``visible``, ``center``, ``scale``,
  ``normalize``): ``center``/``scale`` already carry the adjustment above (row for row, they are
  the json values adjusted; see tests/test_mpii.py), so only the 1-based shift is applied. A
  joint is annotated when its ``part`` is not (0, 0); ``visible`` is MPII's visibility flag.
  ``part`` holds whole pixels (the json's fractional head top / upper neck are truncated).
* ``gt_<split>.mat`` of the official evaluation (``pos_gt_src``, ``jnt_missing``,
  ``headboxes_src``): ground truth for scoring only (it has no centres).

Head sizes for PCKh: 0.6 x the head-box diagonal (the official ``SC_BIAS``) where head boxes
are given (json ``headbox`` or ``gt_<split>.mat`` found beside the json), else the h5
``normalize`` field. :class:`MPIIAnnotations` ``normalizer`` says which was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heatpose.data.records import PersonSample
from heatpose.errors import HeatposeError
from heatpose.evaluation.pck import PCKhGroundTruth
from heatpose.io import load_json
from heatpose.keypoints import MPII16, KeypointSchema

CENTER_SHIFT_Y = 15.0  # official: center.y += 15 * scale (in 200-px scale units)
SCALE_ENLARGE = 1.25  # official: scale *= 1.25
HEAD_SIZE_FACTOR = 0.6  # official SC_BIAS: head size = 0.6 x head-box diagonal
H5_FIELDS = ("imgname", "part", "visible", "center", "scale", "normalize")


@dataclass
class MPIIAnnotations:
    """One row per person, 0-based pixels, official adjusted boxes.

    ``center`` (N, 2) and ``scale`` (N,) in the official crop convention (scale x 200 px is the
    side of the square box), ``joints`` (N, K, 2), ``annotated`` / ``visible`` (N, K) bool,
    ``head_size`` (N,) px (0 where unknown), ``normalizer`` names the head-size source.
    """

    image_names: list[str]
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    annotated: np.ndarray
    visible: np.ndarray
    head_size: np.ndarray
    normalizer: str
    source: str
    schema: KeypointSchema = MPII16

    def __len__(self) -> int:
        return len(self.image_names)

    def ground_truth(self) -> PCKhGroundTruth:
        return PCKhGroundTruth(
            image_names=list(self.image_names),
            joints=self.joints.astype(np.float64),
            annotated=self.annotated.copy(),
            head_size=self.head_size.astype(np.float64),
            normalizer=self.normalizer,
            schema=self.schema,
            source=self.source,
        )


def adjust_center_scale(center: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """The official json adjustment, then 1-based -> 0-based: (center (2,), scale) in, out."""
    c = np.asarray(center, dtype=np.float64).copy()
    s = float(scale)
    if c[0] != -1:
        c[1] = c[1] + CENTER_SHIFT_Y * s
        s = s * SCALE_ENLARGE
    return c - 1.0, s


def headbox_size(box: Any) -> float:
    """0.6 x the diagonal of an [x1, y1, x2, y2] head box (the official MPII head size)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return HEAD_SIZE_FACTOR * float(np.linalg.norm([x2 - x1, y2 - y1]))


def _number_list(value: Any, n: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _check_entry(entry: Any, i: int, path: Path, num_joints: int) -> None:
    where = f"{path}: entry {i}"
    if not isinstance(entry, dict):
        raise HeatposeError(f"{where} must be an object with image, center, scale, joints, joints_vis")
    if not isinstance(entry.get("image"), str) or not entry["image"]:
        raise HeatposeError(f"{where}: 'image' must be a file name")
    if not _number_list(entry.get("center"), 2) or not np.isfinite(entry["center"]).all():
        raise HeatposeError(f"{where}: 'center' must be two finite numbers, got {entry.get('center')!r}")
    scale = entry.get("scale")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not np.isfinite(scale) or scale <= 0:
        raise HeatposeError(f"{where}: 'scale' must be a positive number, got {scale!r}")
    if "joints" in entry or "joints_vis" in entry:
        joints, vis = entry.get("joints"), entry.get("joints_vis")
        if not isinstance(joints, list) or len(joints) != num_joints:
            got = len(joints) if isinstance(joints, list) else type(joints).__name__
            raise HeatposeError(f"{where}: 'joints' has {got} joints, expected {num_joints}")
        if any(not _number_list(j, 2) or not np.isfinite(j).all() for j in joints):
            raise HeatposeError(f"{where}: every joint must be two finite numbers [x, y]")
        if not _number_list(vis, num_joints):
            raise HeatposeError(f"{where}: 'joints_vis' must be {num_joints} numbers")
    if "headbox" in entry and (
        not _number_list(entry["headbox"], 4) or not np.isfinite(entry["headbox"]).all()
    ):
        raise HeatposeError(f"{where}: 'headbox' must be four finite numbers [x1, y1, x2, y2]")


def read_mpii_json(path: str | Path, schema: KeypointSchema = MPII16) -> MPIIAnnotations:
    """The official json list -> :class:`MPIIAnnotations` (adjusted, 0-based; see the module doc)."""
    path = Path(path)
    data = load_json(path, "MPII annotation")
    if not isinstance(data, list):
        raise HeatposeError(f"{path}: an MPII annotation file is a JSON list of people")
    if not data:
        raise HeatposeError(f"{path}: the annotation list is empty")
    k = schema.num_joints
    n = len(data)
    center, scale = np.zeros((n, 2)), np.zeros(n)
    joints, annotated = np.zeros((n, k, 2)), np.zeros((n, k), dtype=bool)
    head_size = np.zeros(n)
    for i, entry in enumerate(data):
        _check_entry(entry, i, path, k)
        center[i], scale[i] = adjust_center_scale(entry["center"], entry["scale"])
        if "joints" in entry:
            annotated[i] = np.asarray(entry["joints_vis"], dtype=np.float64) > 0
            joints[i] = np.where(annotated[i][:, None], np.asarray(entry["joints"], np.float64) - 1.0, 0.0)
        if "headbox" in entry:
            head_size[i] = headbox_size(entry["headbox"])
    names = [e["image"] for e in data]
    with_box = sum("headbox" in e for e in data)
    if with_box == n:
        normalizer = "0.6 x head-box diagonal (json 'headbox')"
    elif with_box:
        raise HeatposeError(f"{path}: {with_box} of {n} entries have a 'headbox': give it for all or none")
    else:
        mat = path.with_name(f"gt_{path.stem}.mat")
        if mat.is_file():
            boxes = read_mpii_mat(mat, schema)
            if len(boxes) != n:
                raise HeatposeError(f"{mat}: {len(boxes)} people, but {path} has {n}")
            head_size = boxes.head_size
            normalizer = f"0.6 x head-box diagonal ({mat.name} headboxes_src)"
        else:
            normalizer = f"none: no 'headbox' in the json and no {mat.name} beside it"
    return MPIIAnnotations(
        image_names=names,
        center=center,
        scale=scale,
        joints=joints,
        annotated=annotated,
        visible=annotated.copy(),  # the json does not tell occluded joints apart
        head_size=head_size,
        normalizer=normalizer,
        source=str(path),
        schema=schema,
    )


def read_mpii_h5(path: str | Path, schema: KeypointSchema = MPII16) -> MPIIAnnotations:
    """pose-hg ``annot/*.h5`` -> :class:`MPIIAnnotations` (0-based; boxes already adjusted)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise HeatposeError(f"MPII annotation file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in H5_FIELDS if k not in f]
            if missing:
                raise HeatposeError(f"{path}: h5 annotation lacks the {missing[0]!r} dataset")
            data = {k: f[k][()] for k in H5_FIELDS}
    except OSError as err:
        raise HeatposeError(f"{path}: not a readable HDF5 file ({err})") from None
    n, k = len(data["imgname"]), schema.num_joints
    part = np.asarray(data["part"], dtype=np.float64)
    if part.shape != (n, k, 2):
        raise HeatposeError(f"{path}: 'part' has shape {part.shape}, expected ({n}, {k}, 2)")
    for key, shape in (("visible", (n, k)), ("center", (n, 2)), ("scale", (n,)), ("normalize", (n,))):
        if np.shape(data[key]) != shape:
            raise HeatposeError(f"{path}: {key!r} has shape {np.shape(data[key])}, expected {shape}")
        if not np.isfinite(np.asarray(data[key], np.float64)).all():
            raise HeatposeError(f"{path}: {key!r} has NaN or infinite values")
    annotated = np.any(part != 0, axis=-1)
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in data["imgname"]]
    return MPIIAnnotations(
        image_names=names,
        center=np.asarray(data["center"], np.float64) - 1.0,
        scale=np.asarray(data["scale"], np.float64),
        joints=np.where(annotated[..., None], part - 1.0, 0.0),
        annotated=annotated,
        visible=annotated & (np.asarray(data["visible"]) > 0),
        head_size=np.asarray(data["normalize"], np.float64),
        normalizer="h5 'normalize' field (pose-hg-train head size)",
        source=str(path),
        schema=schema,
    )


def read_mpii_mat(path: str | Path, schema: KeypointSchema = MPII16) -> MPIIAnnotations:
    """The official ``gt_<split>.mat`` (scoring only: centres and scales are left at 0)."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(str(path))
    except (OSError, ValueError) as err:
        raise HeatposeError(f"{path}: not a readable MATLAB file ({err})") from None
    for key in ("pos_gt_src", "jnt_missing", "headboxes_src"):
        if key not in mat:
            raise HeatposeError(f"{path}: lacks {key!r} (expected the official gt_<split>.mat)")
    pos = np.asarray(mat["pos_gt_src"], np.float64)  # (K, 2, N), 1-based
    missing = np.asarray(mat["jnt_missing"])  # (K, N)
    boxes = np.asarray(mat["headboxes_src"], np.float64)  # (2, 2, N): corner, xy, person
    k = schema.num_joints
    if pos.ndim != 3 or pos.shape[:2] != (k, 2) or missing.shape != (k, pos.shape[2]):
        raise HeatposeError(
            f"{path}: pos_gt_src {pos.shape} / jnt_missing {missing.shape} do not fit {k} joints"
        )
    if boxes.shape != (2, 2, pos.shape[2]):
        raise HeatposeError(f"{path}: headboxes_src has shape {boxes.shape}, expected (2, 2, {pos.shape[2]})")
    n = pos.shape[2]
    annotated = (missing == 0).T
    joints = np.where(annotated[..., None], pos.transpose(2, 0, 1) - 1.0, 0.0)
    joints = np.nan_to_num(joints)
    head = HEAD_SIZE_FACTOR * np.linalg.norm(boxes[1] - boxes[0], axis=0)
    return MPIIAnnotations(
        image_names=[""] * n,
        center=np.zeros((n, 2)),
        scale=np.zeros(n),
        joints=joints,
        annotated=annotated,
        visible=annotated.copy(),
        head_size=head,
        normalizer=f"0.6 x head-box diagonal ({path.name} headboxes_src)",
        source=str(path),
        schema=schema,
    )


def read_mpii_annotations(path: str | Path, schema: KeypointSchema = MPII16) -> MPIIAnnotations:
    """Dispatch on the file suffix: ``.json`` list, pose-hg ``.h5`` or official ``.mat``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return read_mpii_json(path, schema)
    if suffix in (".h5", ".hdf5"):
        return read_mpii_h5(path, schema)
    if suffix == ".mat":
        return read_mpii_mat(path, schema)
    raise HeatposeError(f"{path}: unknown MPII annotation format (expected .json, .h5 or .mat)")


def mpii_people(ann: MPIIAnnotations, image_dir: str | Path, aspect_ratio: float = 1.0) -> list[PersonSample]:
    """One :class:`PersonSample` per annotation row, in order (PCKh needs every row).

    The crop is the official square box ``scale * 200`` px around ``center``, padded to
    ``aspect_ratio`` (w / h) for non-square inputs. Keypoint flags: 2 annotated and visible,
    1 annotated but occluded, 0 not annotated. ``image_id`` numbers distinct images from 1.
    """
    if not np.any(ann.scale > 0):
        raise HeatposeError(f"{ann.source}: no person centres/scales (a .mat file is for scoring only)")
    image_ids: dict[str, int] = {}
    samples = []
    for i, name in enumerate(ann.image_names):
        s = float(ann.scale[i])
        if s <= 0:
            raise HeatposeError(f"{ann.source}: row {i} ({name}) has scale {s}, must be > 0")
        scale = np.array([s * max(1.0, aspect_ratio), s * max(1.0, 1.0 / aspect_ratio)], np.float32)
        flags = np.where(ann.annotated[i], np.where(ann.visible[i], 2.0, 1.0), 0.0)
        keypoints = np.concatenate([ann.joints[i], flags[:, None]], axis=1).astype(np.float32)
        side = s * 200.0
        center = ann.center[i].astype(np.float32)
        samples.append(
            PersonSample(
                image_path=str(Path(image_dir) / name),
                image_id=image_ids.setdefault(name, len(image_ids) + 1),
                center=center,
                scale=scale,
                keypoints=keypoints,
                box=np.array([center[0] - side / 2, center[1] - side / 2, side, side], np.float32),
                area=side * side,
                ann_id=i,
                box_source="gt",
            )
        )
    return samples
