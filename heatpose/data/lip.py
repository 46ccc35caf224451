"""LIP (Look Into Person) pose csv reader: ``lip_train_set.csv`` / ``lip_val_set.csv``.

One line per image: ``ImageID_PersonId.jpg`` then 16 x (x, y, v) in the MPII joint order,
except that joint 7 is the *spine* where MPII has the thorax (schema ``lip`` in
``keypoints.py``). A joint that was not labelled is written as the literal ``nan``.

Choices heatpose makes, because LIP does not document them:

* Coordinates are used as given, as 0-based pixels (no shift).
* The third number ``v`` is kept exactly as given (:attr:`LIPAnnotations.flags`, NaN where the
  file says ``nan``) but not interpreted: third-party loaders disagree on whether it means
  visible or occluded. Every joint with coordinates is *labelled*: it trains with weight 1 and
  counts for PCKh, like MPII's annotated joints.
* LIP has no head boxes: the PCKh head size is the head-top to upper-neck distance (joints 9
  and 8, no 0.6 factor); a person lacking either joint has no head size and is not counted.
* LIP images are single-person crops: the person box is the whole image, grown to include any
  labelled joint outside it, then padded to the input aspect ratio and enlarged like a COCO box.

A malformed line is one error naming the file, the line number and what is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heatpose.data.records import PersonSample
from heatpose.data.transforms import box_to_center_scale
from heatpose.errors import HeatposeError
from heatpose.evaluation.pck import PCKhGroundTruth
from heatpose.keypoints import LIP16, KeypointSchema

HEAD_JOINTS = ("upper_neck", "head_top")
NORMALIZER = "head-top to upper-neck distance (LIP has no head boxes)"


@dataclass
class LIPAnnotations:
    """Rows of a LIP csv: ``joints`` (N, K, 2) px, ``annotated`` (N, K) bool (coordinates
    given), ``flags`` (N, K) the file's third numbers as given (NaN when ``nan``), ``head_size``
    (N,) px (0 when the head top or upper neck is missing)."""

    image_names: list[str]
    joints: np.ndarray
    annotated: np.ndarray
    flags: np.ndarray
    head_size: np.ndarray
    source: str
    schema: KeypointSchema = LIP16

    def __len__(self) -> int:
        return len(self.image_names)

    def ground_truth(self) -> PCKhGroundTruth:
        return PCKhGroundTruth(
            image_names=list(self.image_names),
            joints=self.joints.copy(),
            annotated=self.annotated.copy(),
            head_size=self.head_size.copy(),
            normalizer=NORMALIZER,
            schema=self.schema,
            source=self.source,
        )


def _parse_number(text: str, where: str) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise HeatposeError(f"{where}: {text!r} is not a number or nan") from None
    if math.isinf(value) or (math.isnan(value) and text.lower() != "nan"):
        raise HeatposeError(f"{where}: {text!r} is not a number or nan")
    return value


def read_lip_csv(path: str | Path, schema: KeypointSchema = LIP16) -> LIPAnnotations:
    """Parse a LIP pose csv (see the module docstring for the conventions)."""
    path = Path(path)
    if not path.is_file():
        raise HeatposeError(f"LIP annotation file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise HeatposeError(f"{path}: cannot read LIP csv ({err})") from None
    k = schema.num_joints
    expected = 1 + 3 * k
    names: list[str] = []
    rows: list[list[float]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        where = f"{path} line {number}"
        if len(fields) != expected:
            raise HeatposeError(
                f"{where}: {len(fields)} comma-separated fields, expected {expected} "
                f"(image name, then {k} x (x, y, v))"
            )
        name = fields[0].strip()
        if not name:
            raise HeatposeError(f"{where}: empty image name")
        values = [_parse_number(text, f"{where}, field {i + 2}") for i, text in enumerate(fields[1:])]
        xy = np.asarray(values, np.float64).reshape(k, 3)[:, :2]
        half = np.isnan(xy[:, 0]) != np.isnan(xy[:, 1])
        if half.any():
            raise HeatposeError(
                f"{where}: joint {int(np.argmax(half))} has one coordinate nan, the other not"
            )
        names.append(name)
        rows.append(values)
    if not rows:
        raise HeatposeError(f"{path}: no rows")
    table = np.asarray(rows, np.float64).reshape(len(rows), k, 3)
    annotated = ~np.isnan(table[:, :, 0])
    joints = np.where(annotated[..., None], table[:, :, :2], 0.0)
    neck, top = (schema.joint_names.index(n) for n in HEAD_JOINTS)
    has_head = annotated[:, neck] & annotated[:, top]
    head_size = np.where(has_head, np.linalg.norm(joints[:, top] - joints[:, neck], axis=-1), 0.0)
    return LIPAnnotations(
        image_names=names,
        joints=joints,
        annotated=annotated,
        flags=table[:, :, 2].copy(),
        head_size=head_size,
        source=str(path),
        schema=schema,
    )


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image

    if not path.is_file():
        raise HeatposeError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        raise HeatposeError(f"cannot read image header (corrupt or not an image): {path}") from None


def lip_people(
    ann: LIPAnnotations, image_dir: str | Path, aspect_ratio: float, enlarge: float = 1.25
) -> list[PersonSample]:
    """One :class:`PersonSample` per csv row, in order; the box is the whole image (see above)."""
    samples = []
    for i, name in enumerate(ann.image_names):
        image_path = Path(image_dir) / name
        w, h = _image_size(image_path)
        x0, y0, x1, y1 = 0.0, 0.0, float(w - 1), float(h - 1)
        labelled = ann.joints[i][ann.annotated[i]]
        if len(labelled):
            x0, y0 = min(x0, labelled[:, 0].min()), min(y0, labelled[:, 1].min())
            x1, y1 = max(x1, labelled[:, 0].max()), max(y1, labelled[:, 1].max())
        box = [x0, y0, x1 - x0, y1 - y0]
        center, scale = box_to_center_scale(box, aspect_ratio, enlarge)
        flags = np.where(ann.annotated[i], 2.0, 0.0)
        samples.append(
            PersonSample(
                image_path=str(image_path),
                image_id=i + 1,
                center=center,
                scale=scale,
                keypoints=np.concatenate([ann.joints[i], flags[:, None]], axis=1).astype(np.float32),
                box=np.asarray(box, np.float32),
                area=float(box[2] * box[3]),
                ann_id=i,
                box_source="gt",
            )
        )
    return samples
