"""CVAT for images 1.1 XML -> COCO keypoints.

Each ``<image name width height>`` holds the image's annotations:

* ``<skeleton label=...>`` with ``<points label=... points="x,y" occluded outside>`` children:
  one person per skeleton (CVAT's skeleton tool);
* loose ``<points label=... points="x,y">`` elements: joints, grouped into people by their
  ``group_id`` attribute (all loose points of an image without group ids are one person);
* ``<box label xtl ytl xbr ybr [group_id]>``: the box of the person with that group id (a
  box without one belongs to the image's only person).

Visibility: ``outside="1"`` -> not labelled (0, as COCO), ``occluded="1"`` -> 1, else 2.
Elements that cannot be converted (several points in one ``<points>``, a loose point without
a group in an image that has groups, polygons, ...) are each named in the skipped list.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from heatpose.convert.common import Conversion, ImageDraft, PersonDraft, finite_number
from heatpose.errors import HeatposeError

_IGNORED = ("polygon", "polyline", "cuboid", "ellipse", "mask", "tag", "tracks")


def read_cvat(path: str | Path) -> Conversion:
    p = Path(path)
    if not p.is_file():
        raise HeatposeError(f"CVAT xml not found: {p}")
    try:
        root = ET.parse(p).getroot()  # a local file the user exported; no entity expansion in ET
    except ET.ParseError as err:
        raise HeatposeError(f"{p}: not valid XML: {err}") from None
    if root.tag != "annotations" or not root.findall("image"):
        raise HeatposeError(f"{p}: not a 'CVAT for images 1.1' export (no <annotations><image> elements)")
    conv = Conversion("cvat")
    for image_el in root.findall("image"):
        _read_image(image_el, conv, p.name)
    return conv


def _flag(el: ET.Element) -> int:
    if el.get("outside") == "1":
        return 0
    return 1 if el.get("occluded") == "1" else 2


def _point(el: ET.Element) -> tuple[float, float] | None:
    parts = (el.get("points") or "").split(";")
    if len(parts) != 1:
        return None
    xy = parts[0].split(",")
    if len(xy) != 2:
        return None
    x, y = finite_number(xy[0]), finite_number(xy[1])
    return None if x is None or y is None else (x, y)


def _read_image(image_el: ET.Element, conv: Conversion, file_name: str) -> None:
    name = image_el.get("name") or ""
    where_img = f"{file_name}: image {name!r}"
    width, height = finite_number(image_el.get("width")), finite_number(image_el.get("height"))
    if not name or not width or not height or width <= 0 or height <= 0:
        conv.skip(where_img, "no name/width/height: image skipped")
        return
    image = ImageDraft(Path(name).name, int(width), int(height))
    people: list[PersonDraft] = []
    groups: dict[str, PersonDraft] = {}  # group_id -> person ("" = loose points without a group)
    grouped = any(el.get("group_id") is not None for el in image_el if el.tag == "points")
    loose_boxes: list[tuple[str, tuple[float, float, float, float]]] = []

    def person_of(group: str | None, label: str) -> PersonDraft:
        key = group or ""
        if key not in groups:
            groups[key] = PersonDraft(f"{where_img}: " + (f"group {group}" if group else label))
            people.append(groups[key])
        return groups[key]

    for k, el in enumerate(image_el):
        where = f"{where_img}: <{el.tag}> {k} label {el.get('label')!r}"
        if el.tag == "skeleton":
            person = person_of(el.get("group_id"), f"skeleton {k}") if el.get("group_id") else None
            if person is None:
                person = PersonDraft(f"{where_img}: skeleton {k}")
                people.append(person)
            for child in el.findall("points"):
                _add_point(conv, person, child, f"{where}: point {child.get('label')!r}")
        elif el.tag == "points":
            if grouped and el.get("group_id") is None:
                conv.skip(where, "no group_id, but this image groups its people by group_id")
                continue
            _add_point(conv, person_of(el.get("group_id"), "loose points"), el, where)
        elif el.tag == "box":
            coords = [finite_number(el.get(a)) for a in ("xtl", "ytl", "xbr", "ybr")]
            if any(c is None for c in coords):
                conv.skip(where, "box without numeric xtl/ytl/xbr/ybr")
                continue
            x1, y1, x2, y2 = coords
            box = (x1, y1, x2 - x1, y2 - y1)
            if el.get("group_id") is None:
                loose_boxes.append((where, box))
                continue
            person = person_of(el.get("group_id"), f"group {el.get('group_id')}")
            if person.box is not None:
                conv.skip(where, f"second box for {person.where}")
                continue
            person.box = box
        elif el.tag in _IGNORED:
            conv.skip(where, f"<{el.tag}> is not converted (only points, skeletons and boxes)")
    # a box without group_id belongs to the image's only person
    if len(loose_boxes) == 1 and len(people) == 1 and people[0].box is None:
        people[0].box = loose_boxes[0][1]
    else:
        for where, _ in loose_boxes:
            conv.skip(where, f"box without group_id in an image with {len(people)} people")
    image.people = people
    conv.images.append(image)


def _add_point(conv: Conversion, person: PersonDraft, el: ET.Element, where: str) -> None:
    label = el.get("label")
    if not label:
        conv.skip(where, "point without a label")
        return
    xy = _point(el)
    if xy is None:
        conv.skip(where, f"points={el.get('points')!r} is not one 'x,y' pair")
        return
    flag = _flag(el)
    if flag == 0:  # outside the frame: COCO's "not labelled", x = y = 0
        if label not in conv.label_order:
            conv.label_order.append(label)
        return
    conv.add_joint(person, label, xy[0], xy[1], flag, where)
