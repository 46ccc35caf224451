"""Label Studio JSON export -> COCO keypoints.

The export is a list of tasks; a task's ``data.image`` names the image and its first
annotation's ``result`` holds regions. ``keypointlabels`` regions are joints and
``rectanglelabels`` regions are person boxes; both give ``x``, ``y`` (and ``width``,
``height``) in **percent** of the image size, which is ``original_width`` /
``original_height`` in pixels. People: a ``relation`` region from a keypoint to a
rectangle (or back) puts the keypoint in that rectangle's person; otherwise a keypoint
belongs to the one rectangle containing it, and an image with no rectangle is one person.
Keypoints that fit none of these, extra annotations of a task, and other region types are
skipped, each named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heatpose.convert.common import Conversion, ImageDraft, PersonDraft, finite_number
from heatpose.errors import HeatposeError
from heatpose.io import load_json


def read_label_studio(path: str | Path) -> Conversion:
    data = load_json(path, "Label Studio export")
    if not isinstance(data, list):
        raise HeatposeError(f"{path}: a Label Studio JSON export is a list of tasks")
    conv = Conversion("label-studio")
    for t, task in enumerate(data):
        _read_task(task, t, conv)
    return conv


def _image_size(results: list[dict[str, Any]]) -> tuple[int, int] | None:
    for r in results:
        w, h = finite_number(r.get("original_width")), finite_number(r.get("original_height"))
        if w and h and w > 0 and h > 0:
            return int(w), int(h)
    return None


def _read_task(task: Any, t: int, conv: Conversion) -> None:
    where_task = f"task {task.get('id', t) if isinstance(task, dict) else t}"
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        conv.skip(where_task, "not a task object with 'data'")
        return
    image_ref = task["data"].get("image") or task["data"].get("img")
    annotations = [
        a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")
    ]
    if not isinstance(image_ref, str) or not annotations:
        conv.skip(where_task, "no data.image or no (uncancelled) annotation: task skipped")
        return
    for extra in annotations[1:]:
        conv.skip(
            f"{where_task}: annotation {extra.get('id')}", "only the first annotation of a task is converted"
        )
    results = [r for r in annotations[0].get("result") or [] if isinstance(r, dict)]
    size = _image_size(results)
    where_img = f"{where_task} ({Path(image_ref).name})"
    if size is None:
        conv.skip(where_img, "no original_width/original_height in its results: task skipped")
        return
    width, height = size
    image = ImageDraft(Path(image_ref).name, width, height)

    boxes: dict[str, PersonDraft] = {}
    points: list[tuple[str, str, float, float, str]] = []  # (region id, label, x, y, where)
    for i, r in enumerate(results):
        kind, value, rid = r.get("type"), r.get("value") or {}, str(r.get("id", i))
        where = f"{where_img}: region {rid} ({kind})"
        if kind == "relation":
            continue
        if kind not in ("keypointlabels", "rectanglelabels"):
            conv.skip(where, "only keypointlabels and rectanglelabels regions are converted")
            continue
        x, y = finite_number(value.get("x")), finite_number(value.get("y"))
        labels = value.get(kind)
        if x is None or y is None or not isinstance(labels, list) or len(labels) != 1:
            conv.skip(where, "needs numeric x, y and exactly one label")
            continue
        px, py = x / 100.0 * width, y / 100.0 * height
        if kind == "rectanglelabels":
            w, h = finite_number(value.get("width")), finite_number(value.get("height"))
            if w is None or h is None or w <= 0 or h <= 0:
                conv.skip(where, "rectangle without a positive width/height")
                continue
            if value.get("rotation"):
                conv.skip(where, "rotated rectangle: not converted")
                continue
            boxes[rid] = PersonDraft(
                f"{where_img}: person {rid}", box=(px, py, w / 100 * width, h / 100 * height)
            )
        else:
            points.append((rid, str(labels[0]), px, py, where))

    related: dict[str, str] = {}
    for r in results:
        if r.get("type") == "relation":
            a, b = str(r.get("from_id")), str(r.get("to_id"))
            if a in boxes:
                a, b = b, a
            if b in boxes:
                related[a] = b
    single = PersonDraft(f"{where_img}: person")
    for rid, label, px, py, where in points:
        if rid in related:
            person = boxes[related[rid]]
        elif not boxes:
            person = single
        else:
            inside = [p for p in boxes.values() if _contains(p.box, px, py)]
            if len(inside) != 1:
                conv.skip(
                    where, f"keypoint {label!r} lies in {len(inside)} rectangles and has no relation to one"
                )
                continue
            person = inside[0]
        conv.add_joint(person, label, px, py, 2, where)
    image.people = list(boxes.values()) + ([single] if single.joints else [])
    conv.images.append(image)


def _contains(box: tuple[float, float, float, float] | None, x: float, y: float) -> bool:
    return box is not None and box[0] <= x <= box[0] + box[2] and box[1] <= y <= box[1] + box[3]
