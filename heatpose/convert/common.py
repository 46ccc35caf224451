"""What every label-tool converter shares: people as drafts, and drafts -> one COCO keypoints json.

Why: the three converters differ only in how they find images, points and boxes in their
tool's export; building the COCO file (joint order, visibility flags, boxes for people
without one, the category with a 1-based skeleton) and reporting what could not be
converted is done once, here. Nothing is dropped silently: every element that cannot be
converted becomes one line in :attr:`Conversion.skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heatpose.errors import HeatposeError
from heatpose.schema_io import _index, read_schema_file

# A person without a box gets the box of its labelled joints, each side moved out by this
# fraction of the box's larger side (at least MIN_MARGIN_PX), clipped to the image.
BOX_MARGIN = 0.1
MIN_MARGIN_PX = 4.0


@dataclass
class PersonDraft:
    """One person as read from a tool: joint name -> (x, y, COCO flag 1|2), optional box."""

    where: str  # e.g. "a.json: group 2", for messages
    joints: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    box: tuple[float, float, float, float] | None = None  # x, y, w, h


@dataclass
class ImageDraft:
    file_name: str
    width: int
    height: int
    people: list[PersonDraft] = field(default_factory=list)


@dataclass
class Conversion:
    """Everything read from one export, before the joint order is fixed."""

    tool: str
    images: list[ImageDraft] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "where: what: why", one per element
    label_order: list[str] = field(default_factory=list)  # joint labels in first-seen order

    def skip(self, where: str, why: str) -> None:
        self.skipped.append(f"{where}: {why}")

    def add_joint(self, person: PersonDraft, label: str, x: float, y: float, flag: int, where: str) -> None:
        """Record one point; a second point with the same label in one person is skipped."""
        if label in person.joints:
            self.skip(where, f"second {label!r} point in {person.where}")
            return
        person.joints[label] = (float(x), float(y), int(flag))
        if label not in self.label_order:
            self.label_order.append(label)


@dataclass
class TargetSchema:
    """Joint order, skeleton (0-based) and category name of the COCO file to write."""

    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    name: str = "person"


def read_target_schema(path: str | Path | None) -> TargetSchema | None:
    """``--schema FILE``: its ``keypoints`` (joint order), ``skeleton`` and ``name``."""
    if path is None:
        return None
    data = read_schema_file(path)
    names = data.get("keypoints")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise HeatposeError(f"{path}: --schema needs a 'keypoints' list of joint names (the joint order)")
    names_t = tuple(names)
    skeleton = data.get("skeleton") or []
    if not isinstance(skeleton, list):
        raise HeatposeError(f"{path}: skeleton must be a list of [joint, joint] pairs")
    edges = tuple(
        (_index(a, names_t, "skeleton", str(path)), _index(b, names_t, "skeleton", str(path)))
        for a, b in skeleton
    )
    return TargetSchema(names_t, edges, str(data.get("name") or "person"))


def person_box(person: PersonDraft, width: int, height: int) -> list[float] | None:
    """The person's own box, else the labelled joints' box enlarged by :data:`BOX_MARGIN`."""
    if person.box is not None:
        return [float(v) for v in person.box]
    pts = [(x, y) for x, y, v in person.joints.values() if v > 0]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
    m = max(BOX_MARGIN * max(x2 - x1, y2 - y1), MIN_MARGIN_PX)
    x1, y1 = max(0.0, x1 - m), max(0.0, y1 - m)
    x2, y2 = min(float(width), x2 + m), min(float(height), y2 + m)
    return [x1, y1, x2 - x1, y2 - y1]


def to_coco(conv: Conversion, target: TargetSchema | None = None) -> dict[str, Any]:
    """The COCO keypoints json: images, annotations (category 1), one keypoint category.

    Joint order is ``target.names`` when given (labels outside it are skipped, named), else
    the labels in the order they were first seen. COCO skeletons are 1-based.
    """
    names = target.names if target else tuple(conv.label_order)
    if not names:
        raise HeatposeError(f"{conv.tool} export: no keypoints found")
    index = {n: i for i, n in enumerate(names)}
    images, anns = [], []
    for img_id, img in enumerate(conv.images, start=1):
        images.append({"id": img_id, "file_name": img.file_name, "width": img.width, "height": img.height})
        for person in img.people:
            kpts = [0.0] * (3 * len(names))
            for label, (x, y, v) in person.joints.items():
                if label not in index:
                    conv.skip(
                        person.where, f"label {label!r} is not a joint of the schema ({', '.join(names)})"
                    )
                    continue
                kpts[3 * index[label] : 3 * index[label] + 3] = [x, y, float(v)]
            visible = sum(1 for j in range(len(names)) if kpts[3 * j + 2] > 0)
            box = person_box(person, img.width, img.height)
            if visible == 0 or box is None or box[2] <= 0 or box[3] <= 0:
                conv.skip(
                    person.where, "no labelled joint of the schema" if visible == 0 else f"empty box {box}"
                )
                continue
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": 1,
                    "keypoints": kpts,
                    "num_keypoints": visible,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    skeleton = target.skeleton if target else ()
    category = {
        "id": 1,
        "name": target.name if target else "person",
        "supercategory": target.name if target else "person",
        "keypoints": list(names),
        "skeleton": [[a + 1, b + 1] for a, b in skeleton],  # COCO files are 1-based
    }
    return {"images": images, "annotations": anns, "categories": [category]}


def input_files(path: str | Path, suffix: str, what: str) -> list[Path]:
    """``path`` itself, or the ``suffix`` files in the directory ``path`` (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == suffix)
        if not files:
            raise HeatposeError(f"{p}: no {suffix} files ({what}) in this directory")
        return files
    if not p.is_file():
        raise HeatposeError(f"{what} not found: {p}")
    return [p]


def finite_number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None
