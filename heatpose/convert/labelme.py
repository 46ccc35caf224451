"""labelme json -> COCO keypoints.

A labelme file describes one image (``imagePath``, ``imageWidth``, ``imageHeight``) and its
``shapes``. Point shapes are joints (``label`` = joint name); rectangle shapes are person
boxes. People are the ``group_id`` groups; in an image with no group ids at all, every shape
belongs to one person. A point without a group id in an image that has groups, a second box
or a second point of one label in a person, and other shape types are skipped, each named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heatpose.convert.common import Conversion, ImageDraft, PersonDraft, finite_number, input_files
from heatpose.errors import HeatposeError
from heatpose.io import load_json


def read_labelme(path: str | Path) -> Conversion:
    """A labelme json file, or a directory of them (one per image)."""
    conv = Conversion("labelme")
    for file in input_files(path, ".json", "labelme json"):
        _read_file(file, conv)
    return conv


def _read_file(file: Path, conv: Conversion) -> None:
    data = load_json(file, "labelme")
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise HeatposeError(f"{file}: not a labelme file (no 'shapes' list)")
    width, height = data.get("imageWidth"), data.get("imageHeight")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        conv.skip(str(file), "no imageWidth/imageHeight: image skipped")
        return
    image = ImageDraft(Path(str(data.get("imagePath") or file.with_suffix(".jpg").name)).name, width, height)
    grouped = any(isinstance(s, dict) and s.get("group_id") is not None for s in data["shapes"])
    people: dict[Any, PersonDraft] = {}

    def person_for(group: Any) -> PersonDraft:
        if group not in people:
            people[group] = PersonDraft(f"{file.name}: " + (f"group {group}" if grouped else "person"))
        return people[group]

    for i, shape in enumerate(data["shapes"]):
        where = f"{file.name}: shape {i}"
        if not isinstance(shape, dict):
            conv.skip(where, "not an object")
            continue
        label, kind, group = shape.get("label"), shape.get("shape_type", "polygon"), shape.get("group_id")
        where += f" ({kind} {label!r})"
        points = shape.get("points")
        coords = [
            (finite_number(p[0]), finite_number(p[1]))
            if isinstance(p, list) and len(p) == 2
            else (None, None)
            for p in (points if isinstance(points, list) else [])
        ]
        if not coords or any(x is None or y is None for x, y in coords):
            conv.skip(where, f"points {points!r} are not [x, y] numbers")
            continue
        if grouped and group is None:
            conv.skip(where, "no group_id, but this image groups its people by group_id")
            continue
        if kind == "point":
            if not isinstance(label, str) or not label:
                conv.skip(where, "point without a label")
                continue
            x, y = coords[0]
            conv.add_joint(person_for(group), label, x, y, 2, where)
        elif kind == "rectangle" and len(coords) == 2:
            person = person_for(group)
            if person.box is not None:
                conv.skip(where, f"second rectangle in {person.where}")
                continue
            (x1, y1), (x2, y2) = coords
            person.box = (min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1))
        else:
            conv.skip(where, "only point and rectangle shapes are converted")
    image.people = list(people.values())
    conv.images.append(image)
