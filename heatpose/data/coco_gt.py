"""One check-and-normalise step for COCO keypoint ground truth, shared by reader and scorer.

Real ``person_keypoints_*.json`` files omit fields and spell them differently: ids as strings
(``"img_0001"``, ``"1"``) or integral floats, no ``area`` (PoseTrack18's COCO-style json), no
``iscrowd``, no ``num_keypoints``, several keypoint categories, boxes as ``{"x", "y", "w", "h"}``.
:func:`normalize_coco_gt` turns every such file into one canonical form, or refuses it with one
line naming the field and the annotation. The training/evaluation reader (``data/coco.py``) and
the scorer (``evaluation/coco.py``) both start from its result, so they cannot disagree, and it
runs when datasets are built: before the first training step and before any model runs.

The canonical form (``CocoGT.dataset``) has int ids everywhere (``internal`` ids), only the
annotations of the one scored category, and every annotation with ``id``, ``image_id``,
``category_id``, ``keypoints`` (3K finite numbers, visibility 0/1/2), ``num_keypoints`` (derived),
``area``, ``bbox`` (4 finite numbers) and ``iscrowd`` (0/1). ``CocoGT`` keeps the mapping back
to the file's own ids, so results are written with the ids the user's file uses. What was
derived is said once per kind, with counts, in ``CocoGT.notes``. See docs/coco_json.md.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heatpose.errors import HeatposeError
from heatpose.io import load_json

MAX_DETS = 20  # COCOeval's params.maxDets[-1] for keypoints: more people per image are never matched
_INT_STRING = re.compile(r"[+-]?\d+")


def check_coco_sections(data: Any, name: str) -> None:
    """A COCO ground-truth file is an object with ``images``, ``annotations`` and ``categories`` lists."""
    if not isinstance(data, dict):
        raise HeatposeError(f"{name}: COCO ground truth must be a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HeatposeError(f"{name}: COCO ground truth lacks an {key!r} list")


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def integral_id(value: Any) -> int | None:
    """``value`` as an int when it is an int, an integral float (``785.0``) or a decimal string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_STRING.fullmatch(value.strip()):
        return int(value)
    return None


@dataclass
class IdMap:
    """The file's own ids of one kind (images, annotations, categories) <-> internal int ids.

    Internal id = the id's integer value when every id of the kind has one (ints, integral
    floats, decimal strings) and these are unique; otherwise the 1-based position in the file.
    Annotation ids are never 0 internally: pycocotools reads a matched id 0 as "unmatched".
    """

    kind: str
    original: dict[int, Any] = field(default_factory=dict)  # internal -> as written in the file
    lookup: dict[Any, int] = field(default_factory=dict)  # as written (hashable) -> internal
    by_value: bool = True  # internal ids are the ids' integer values

    @classmethod
    def build(cls, kind: str, ids: list[Any], name: str, where: list[str], zero_ok: bool = True) -> IdMap:
        seen: dict[Any, int] = {}
        for i, value in enumerate(ids):
            if not isinstance(value, (int, float, str)) or isinstance(value, bool):
                raise HeatposeError(f"{name}: {where[i]} has id {value!r}: ids must be numbers or strings")
            if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
                raise HeatposeError(f"{name}: {where[i]} has id {value!r}, which is not an integer")
            key = _id_key(value)
            if key in seen:
                raise HeatposeError(
                    f"{name}: duplicate {kind} id {value!r} ({where[seen[key]]} and {where[i]})"
                )
            seen[key] = i
        values = [integral_id(v) for v in ids]
        by_value = all(v is not None for v in values) and len(set(values)) == len(values)
        by_value = by_value and (zero_ok or 0 not in values)
        m = cls(kind=kind, by_value=by_value)
        for i, value in enumerate(ids):
            internal = values[i] if by_value else i + 1
            m.original[internal] = value
            m.lookup[_id_key(value)] = internal
        return m

    def find(self, value: Any) -> int | None:
        """Internal id of ``value`` as written in a file (GT or results), None when unknown.

        Integral floats and the int/decimal-string spellings of an id match it when internal
        ids are the ids' values; a non-integral float is an error, not a miss.
        """
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise HeatposeError(f"{self.kind}_id {value!r} is not an integer")
        found = self.lookup.get(_id_key(value))
        if found is None and self.by_value:
            v = integral_id(value)
            found = v if v in self.original else None
        return found

    @property
    def plain(self) -> bool:
        """The file wrote every id as a plain int (nothing was mapped)."""
        return self.by_value and all(type(v) is int for v in self.original.values())


def _id_key(value: Any) -> Any:
    """Hash key of an id as written: 785 and 785.0 are the same id, "785" is a string."""
    if isinstance(value, float):
        return int(value)
    return value


class _Notes:
    """One line per kind of fix, with a count and the first place it applied."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def add(self, what: str, where: str) -> None:
        self.counts[what] += 1
        self.first.setdefault(what, where)

    def lines(self, total: int) -> list[str]:
        out = []
        for what, n in self.counts.items():
            count = "all" if n == total and total > 1 else str(n)
            out.append(f"{count} annotation{'s' if n != 1 else ''} {what} (first: {self.first[what]})")
        return out


@dataclass
class CocoGT:
    """Normalised keypoint ground truth of one category; ``dataset`` is pycocotools-ready."""

    path: str
    dataset: dict[str, Any]
    category_id: int  # internal
    category_name: str
    num_joints: int
    images: IdMap
    categories: IdMap
    notes: list[str]
    _coco: Any = None

    @property
    def category_original_id(self) -> Any:
        return self.categories.original[self.category_id]

    def describe_category(self) -> str:
        return f"category {self.category_original_id!r} ({self.category_name!r})"

    def original_image_id(self, internal: int) -> Any:
        return self.images.original[int(internal)]

    def coco(self) -> Any:
        """A pycocotools ``COCO`` over ``dataset`` (built once, its prints swallowed)."""
        if self._coco is None:
            import contextlib
            import io

            from pycocotools.coco import COCO

            coco = COCO()
            coco.dataset = self.dataset
            with contextlib.redirect_stdout(io.StringIO()):
                coco.createIndex()
            self._coco = coco
        return self._coco


def note_line(note: str) -> str:
    """A ``CocoGT.notes`` entry as printed: ``heatpose: note: ...`` or ``heatpose: warning: ...``."""
    if ": warning: " in note:
        return "heatpose: warning: " + note.replace(": warning: ", ": ", 1)
    return "heatpose: note: " + note


def load_coco_gt(path: str | Path, category: str | int = "", num_joints: int | None = None) -> CocoGT:
    """Read ``path`` and :func:`normalize_coco_gt` it."""
    data = load_json(path, "ground truth")
    return normalize_coco_gt(data, str(path), category, num_joints)


def normalize_coco_gt(
    data: Any, name: str, category: str | int = "", num_joints: int | None = None
) -> CocoGT:
    """Check and normalise a COCO keypoints json (see the module docstring); ``name`` is for messages.

    ``category``: name or id of the keypoint category to use; "" picks the only category with
    keypoints, else the one named ``person``, else refuses and lists them. ``num_joints``: K
    the caller's schema expects (the scorer passes None and takes K from the file).
    """
    check_coco_sections(data, name)
    images = _normalize_images(data["images"], name)
    image_ids = IdMap.build("image", [img["id"] for img in images], name, _places("images", images))
    cat_ids, cat_id, cat = _choose_category(data["categories"], data["annotations"], name, category)
    k = _num_joints(cat, data["annotations"], cat_id, cat_ids, name, num_joints)

    notes = _Notes()
    anns = data["annotations"]
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise HeatposeError(f"{name}: annotations[{i}] is not an object")
    ann_places = [f"annotations[{i}] (id {a.get('id')!r})" for i, a in enumerate(anns)]
    with_id = [i for i, a in enumerate(anns) if "id" in a]
    ann_ids = IdMap.build(
        "annotation", [anns[i]["id"] for i in with_id], name, [ann_places[i] for i in with_id], zero_ok=False
    )
    next_id = max([*ann_ids.original, 0]) + 1

    out_anns: list[dict[str, Any]] = []
    other = 0
    for i, ann in enumerate(anns):
        where = ann_places[i]
        if "category_id" in ann:
            c = cat_ids.find(ann["category_id"])
            if c is None:
                raise HeatposeError(
                    f"{name}: {where} has category_id {ann['category_id']!r}, not in 'categories' "
                    f"({sorted(map(repr, cat_ids.original.values()))})"
                )
            if c != cat_id:
                other += 1
                continue
            if type(ann["category_id"]) is not int:
                notes.add("spell category_id as a string or float: mapped to the category", where)
        elif len(cat_ids.original) == 1:
            notes.add("lack 'category_id': the only category assumed", where)
        else:
            raise HeatposeError(f"{name}: {where} lacks 'category_id' and the file has several categories")
        if "id" in ann:
            internal_id = (
                ann_ids.lookup[_id_key(ann["id"])] if not ann_ids.by_value else integral_id(ann["id"])
            )
            if type(ann["id"]) is not int or ann["id"] == 0:
                notes.add("have a non-integer or 0 'id': mapped to an internal integer", where)
        else:
            internal_id, next_id = next_id, next_id + 1
            notes.add("lack 'id': numbered in file order", where)
        out_anns.append(_normalize_annotation(ann, where, name, k, image_ids, internal_id, cat_id, notes))

    lines = [f"{name}: {line}" for line in notes.lines(len(out_anns))]
    if len(cat_ids.original) > 1:
        lines.append(
            f"{name}: {len(cat_ids.original)} categories: reading and scoring category {cat['id']!r} "
            f"({cat.get('name')!r}) only ({other} annotations of other categories ignored; "
            "choose with data.category or score --category)"
        )
    if not image_ids.plain:
        lines.append(f"{name}: image ids are not plain integers: results are written with the file's own ids")
    if not cat_ids.plain:
        lines.append(f"{name}: category ids are not plain integers: results use the file's own ids")
    unsized = sum(1 for img in images if img["width"] is None or img["height"] is None)
    if unsized:
        lines.append(f"{name}: {unsized} images lack width/height: taken from the image files when read")
    lines += _crowded_images(out_anns, name)
    dataset = {
        "images": [dict(img, id=image_ids.find(img["id"])) for img in images],
        "annotations": out_anns,
        "categories": [dict(cat, id=cat_id)],
    }
    return CocoGT(
        path=name,
        dataset=dataset,
        category_id=cat_id,
        category_name=str(cat.get("name", "")),
        num_joints=k,
        images=image_ids,
        categories=cat_ids,
        notes=lines,
    )


def _places(section: str, items: list[dict[str, Any]]) -> list[str]:
    return [f"{section}[{i}]" for i in range(len(items))]


def _normalize_images(images: list[Any], name: str) -> list[dict[str, Any]]:
    """Each image: ``id``; ``width``/``height`` positive integers when given (None when absent)."""
    out = []
    for i, img in enumerate(images):
        if not isinstance(img, dict) or "id" not in img:
            raise HeatposeError(f"{name}: images[{i}] has no 'id'")
        img = dict(img)
        for key in ("width", "height"):
            v = img.get(key)
            if v is None:
                img[key] = None
                continue
            if not is_number(v) or not math.isfinite(v) or v <= 0 or not float(v).is_integer():
                raise HeatposeError(
                    f"{name}: images[{i}] (id {img['id']!r}) has {key} {v!r}, not a positive integer"
                )
            img[key] = int(v)
        if "file_name" in img and not isinstance(img["file_name"], str):
            raise HeatposeError(f"{name}: images[{i}] (id {img['id']!r}) has file_name {img['file_name']!r}")
        out.append(img)
    return out


def _choose_category(
    categories: list[Any], anns: list[Any], name: str, wanted: str | int
) -> tuple[IdMap, int, dict[str, Any]]:
    """The keypoint category to read and score: ``wanted`` (name or id), else the rule in the docstring."""
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat:
            raise HeatposeError(f"{name}: categories[{i}] has no 'id'")
    cat_ids = IdMap.build("category", [c["id"] for c in categories], name, _places("categories", categories))
    if not categories:
        raise HeatposeError(
            f"{name}: 'categories' is empty: a keypoint file needs its category (e.g. person)"
        )
    listed = ", ".join(f"{c['id']!r} ({c.get('name')!r})" for c in categories)
    if wanted != "" and wanted is not None:
        matches = [c for c in categories if c.get("name") == wanted]
        if not matches:
            internal = cat_ids.find(wanted)
            matches = [c for c in categories if internal is not None and cat_ids.find(c["id"]) == internal]
        if len(matches) != 1:
            raise HeatposeError(f"{name}: category {wanted!r} (data.category) is not one of: {listed}")
        chosen = matches[0]
    elif len(categories) == 1:
        chosen = categories[0]
    else:
        with_kpts = [c for c in categories if isinstance(c.get("keypoints"), list) and c["keypoints"]]
        used = {
            cat_ids.find(a.get("category_id")) for a in anns if isinstance(a, dict) and a.get("keypoints")
        }
        used_cats = [c for c in categories if cat_ids.find(c["id"]) in used]
        person = [c for c in categories if str(c.get("name", "")).lower() == "person"]
        if len(with_kpts) == 1:
            chosen = with_kpts[0]
        elif len(used_cats) == 1:
            chosen = used_cats[0]
        elif len(person) == 1:
            chosen = person[0]
        else:
            raise HeatposeError(
                f"{name}: {len(categories)} categories ({listed}): choose one with data.category "
                "(score: --category)"
            )
    return cat_ids, cat_ids.find(chosen["id"]), chosen


def _num_joints(
    cat: dict[str, Any], anns: list[Any], cat_id: int, cat_ids: IdMap, name: str, expected: int | None
) -> int:
    names = cat.get("keypoints")
    if names is not None and not isinstance(names, list):
        raise HeatposeError(
            f"{name}: category {cat['id']!r} has 'keypoints' {names!r}: expected a list of names"
        )
    if names:
        if expected is not None and len(names) != expected:
            raise HeatposeError(
                f"{name}: category {cat['id']!r} ({cat.get('name')!r}) names {len(names)} keypoints, "
                f"the schema in use has {expected}"
            )
        return len(names)
    if expected is not None:
        return expected
    for a in anns:
        if isinstance(a, dict) and isinstance(a.get("keypoints"), list) and len(a["keypoints"]) >= 3:
            c = cat_ids.find(a.get("category_id")) if "category_id" in a else cat_id
            if c == cat_id:
                return len(a["keypoints"]) // 3
    raise HeatposeError(f"{name}: no annotation of category {cat['id']!r} has keypoints")


def _lacks(where: str, key: str) -> str:
    """``annotations[3] lacks 'bbox' (id 7)`` from ``annotations[3] (id 7)``."""
    head, _, tail = where.partition(" ")
    return f"{head} lacks {key!r} {tail}"


def _bbox(value: Any, where: str, name: str, notes: _Notes) -> list[float]:
    """[x, y, w, h] from a 4-list or an {x, y, w|width, h|height} object; finite, w and h >= 0."""
    if isinstance(value, dict):
        try:
            value = [
                value["x"],
                value["y"],
                value.get("w", value.get("width")),
                value.get("h", value.get("height")),
            ]
        except KeyError:
            raise HeatposeError(f"{name}: {where} has bbox {value!r}: expected [x, y, w, h]") from None
        notes.add("write bbox as an object: read as [x, y, w, h]", where)
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (list, tuple)):
        value = value[0]
        notes.add("nest bbox in a list: unwrapped", where)
    if not isinstance(value, (list, tuple)) or len(value) != 4 or not set(map(type, value)) <= {int, float}:
        raise HeatposeError(f"{name}: {where} has bbox {value!r}: expected 4 numbers [x, y, w, h]")
    box = [float(v) for v in value]
    if not math.isfinite(sum(box)):
        raise HeatposeError(f"{name}: {where} has a non-finite bbox {value!r}")
    if box[2] < 0 or box[3] < 0:
        raise HeatposeError(f"{name}: {where} has bbox {value!r} with a negative width or height")
    return box


def _normalize_annotation(
    ann: dict[str, Any],
    where: str,
    name: str,
    k: int,
    image_ids: IdMap,
    internal_id: int,
    cat_id: int,
    notes: _Notes,
) -> dict[str, Any]:
    if "image_id" not in ann:
        raise HeatposeError(f"{name}: {_lacks(where, 'image_id')}")
    try:
        image = image_ids.find(ann["image_id"])
    except HeatposeError as err:
        raise HeatposeError(f"{name}: {where}: {err}") from None
    if image is not None and type(ann["image_id"]) is not type(image_ids.original[image]):
        notes.add("spell image_id unlike 'images' does (e.g. 1 vs 1.0 or '1'): matched by value", where)
    if image is None:
        raise HeatposeError(f"{name}: {where} refers to unknown image {ann['image_id']!r} (not in 'images')")
    kpts = ann.get("keypoints")
    if kpts is None:
        raise HeatposeError(f"{name}: {_lacks(where, 'keypoints')}")
    if isinstance(kpts, list) and kpts and all(isinstance(p, list) and len(p) == 3 for p in kpts):
        kpts = [v for p in kpts for v in p]
        notes.add("nest keypoints as [[x, y, v], ...]: flattened", where)
    if kpts == []:
        kpts = [0] * (3 * k)
        notes.add("have an empty 'keypoints' list: read as unlabelled (all v = 0)", where)
    # set(map(type, ...)) and sum() keep this fast: COCO train has 150k annotations x 51 numbers
    if not isinstance(kpts, list) or not set(map(type, kpts)) <= {int, float}:
        raise HeatposeError(f"{name}: {where}: 'keypoints' must be a flat list of numbers [x, y, v]*{k}")
    if len(kpts) != 3 * k:
        raise HeatposeError(f"{name}: {where} has {len(kpts) / 3:g} keypoints, expected {k}")
    if not math.isfinite(sum(kpts)) and not all(math.isfinite(v) for v in kpts):
        raise HeatposeError(f"{name}: {where} has NaN or infinite keypoint values")
    vis = kpts[2::3]
    if not set(vis) <= {0, 1, 2}:
        bad = next(v for v in vis if v not in (0, 1, 2))
        raise HeatposeError(f"{name}: {where} has keypoint visibility {bad!r}: COCO uses 0, 1 or 2")
    kpts = list(kpts)
    labeled = sum(1 for v in vis if v)
    if "bbox" not in ann:
        raise HeatposeError(f"{name}: {_lacks(where, 'bbox')}")
    box = _bbox(ann["bbox"], where, name, notes)

    iscrowd = ann.get("iscrowd")
    if iscrowd is None:
        iscrowd = 0
        notes.add("lack 'iscrowd': 0 assumed", where)
    elif isinstance(iscrowd, bool) or (is_number(iscrowd) and iscrowd in (0, 1) and type(iscrowd) is not int):
        iscrowd = int(iscrowd)
        notes.add("write iscrowd as true/false or a float: read as 0/1", where)
    elif iscrowd not in (0, 1) or not is_number(iscrowd):
        raise HeatposeError(f"{name}: {where} has iscrowd {iscrowd!r}: expected 0 or 1")

    num = ann.get("num_keypoints")
    if num is None:
        notes.add("lack 'num_keypoints': counted from the keypoints (v > 0)", where)
    elif not is_number(num) or num != labeled:
        notes.add("have a 'num_keypoints' that disagrees with the keypoints: recounted (v > 0)", where)

    area = ann.get("area")
    if area is None:
        area = box[2] * box[3]
        notes.add("lack 'area': the box area w*h is used (as xtcocotools use_area=False)", where)
    elif not is_number(area) or not math.isfinite(area) or area < 0:
        raise HeatposeError(f"{name}: {where} has area {area!r}: expected a finite number >= 0")
    return {
        "id": internal_id,
        "image_id": image,
        "category_id": cat_id,
        "keypoints": kpts,
        "num_keypoints": labeled,
        "area": float(area),
        "bbox": box,
        "iscrowd": iscrowd,
    }


def _crowded_images(anns: list[dict[str, Any]], name: str) -> list[str]:
    """A note when images hold more scorable people than COCOeval matches (maxDets = 20)."""
    people = Counter(a["image_id"] for a in anns if not a["iscrowd"] and a["num_keypoints"] > 0)
    over = [n for n in people.values() if n > MAX_DETS]
    if not over:
        return []
    return [
        f"{name}: warning: {len(over)} image{'s' if len(over) != 1 else ''} hold more than {MAX_DETS} people "
        f"(up to {max(over)}; {sum(n - MAX_DETS for n in over)} people in all beyond {MAX_DETS}): COCOeval "
        f"matches at most {MAX_DETS} detections per image, so those people are never scored"
    ]
