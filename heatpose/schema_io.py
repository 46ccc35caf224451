"""Keypoint schemas read from data: a COCO category, an optional YAML/JSON file, a checkpoint.

Why: a user with 9 keypoints (a hand, an animal, a robot arm) must be able to train without
writing Python. ``data.schema`` in the config is one of

* a built-in name (``coco``, ``mpii``, ``lip``): :data:`heatpose.keypoints.SCHEMAS`;
* ``auto``: the keypoint category of the annotation file (``categories[i].keypoints`` names
  and ``skeleton``; COCO files number skeleton joints from 1, heatpose from 0, so every edge is
  shifted by one on reading);
* a path to a small ``.yaml``/``.yml``/``.json`` file that adds to or overrides the category
  (or, with its own ``keypoints`` list, defines the whole schema)::

      name: upper8
      keypoints: [head, neck, l_shoulder, r_shoulder, ...]  # optional when the COCO file has them
      skeleton: [[head, neck], [neck, l_shoulder]]    # joint names, or 0-based indices
      flip_pairs: [[l_shoulder, r_shoulder]]           # default: inferred from the names
      sigmas: {head: 0.026, neck: 0.05}                # list (one per joint) or name -> value
      joint_weights: {head: 1.5}                       # loss weights; joints not named get 1
      upper_body: [head, neck, l_shoulder, r_shoulder] # for half-body augmentation
      colors: {head: [255, 0, 0]}                      # RGB, for drawing

Flip pairs not given are inferred from the names (:func:`infer_flip_pairs`). OKS sigmas not
given follow :data:`DEFAULT_SIGMA_RULE`, with a warning, because COCO AP depends on them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heatpose.errors import HeatposeError
from heatpose.io import load_json
from heatpose.keypoints import SCHEMAS, KeypointSchema

SCHEMA_FILE_SUFFIXES = (".yaml", ".yml", ".json")
_FILE_KEYS = (
    "name",
    "keypoints",
    "skeleton",
    "flip_pairs",
    "sigmas",
    "joint_weights",
    "upper_body",
    "colors",
)

# What other tools do when a custom keypoint set has no OKS sigmas: MMPose refuses (its dataset
# metainfo must carry ``sigmas``; ``parse_pose_metainfo`` asserts it), Ultralytics YOLO-pose uses
# 1 / K for every joint of any ``kpt_shape`` other than COCO's [17, 3]. heatpose takes
# Ultralytics' rule, so AP on the same data is comparable with YOLO-pose's, and warns.
DEFAULT_SIGMA_RULE = "1 / K for every joint (Ultralytics YOLO-pose's rule for custom keypoint sets)"


def default_sigmas(num_joints: int) -> tuple[float, ...]:
    """The OKS sigmas used when a schema gives none: :data:`DEFAULT_SIGMA_RULE`."""
    return (1.0 / num_joints,) * num_joints


# --------------------------------------------------------------------------- flip pairs from names

_PREFIX = re.compile(r"^([lr])([_\-. ])")
_SUFFIX = re.compile(r"([_\-. ])([lr])$")


def _side_and_stem(name: str) -> tuple[str, str] | None:
    """``("L" | "R", stem)`` when ``name`` looks sided, the stem with the side replaced by ``*``.

    Recognised (case-insensitive): "left"/"right" anywhere (``left_eye``, ``EyeRight``,
    ``hand.left``); ``l_``/``r_`` (also ``-``, ``.``, space) prefixes and ``_l``/``_r``
    suffixes; and an upper-case ``L``/``R`` glued to a capitalised word (``LShoulder``,
    ``shoulderR``).
    """
    low = name.lower()
    for word, side in (("left", "L"), ("right", "R")):
        i = low.find(word)
        if i >= 0:
            return side, low[:i] + "*" + low[i + len(word) :]
    m = _PREFIX.match(low)
    if m:
        return m.group(1).upper(), "*" + low[1:]
    m = _SUFFIX.search(low)
    if m:
        return m.group(2).upper(), low[:-1] + "*"
    if len(name) > 1 and name[0] in "LR" and name[1].isupper():
        return name[0], "*" + low[1:]
    if len(name) > 1 and name[-1] in "LR" and name[-2].islower():
        return name[-1], low[:-1] + "*"
    return None


def infer_flip_pairs(names: tuple[str, ...] | list[str]) -> tuple[tuple[tuple[int, int], ...], list[str]]:
    """Left/right pairs from joint names, and the names that look sided but have no partner.

    Two joints pair when their names differ only in the side marker (``left_wrist`` /
    ``right_wrist``, ``l_hip`` / ``r_hip``, ``LKnee`` / ``RKnee``). Pairs are (left, right)
    in the order of the left joints. Two left joints with one stem is an error.
    """
    by_stem: dict[str, dict[str, int]] = {}
    for j, name in enumerate(names):
        sided = _side_and_stem(name)
        if sided is None:
            continue
        side, stem = sided
        sides = by_stem.setdefault(stem, {})
        if side in sides:
            raise HeatposeError(
                f"cannot infer flip pairs: {names[sides[side]]!r} and {name!r} both look like the "
                f"{'left' if side == 'L' else 'right'} side of one joint; give flip_pairs in the schema file"
            )
        sides[side] = j
    pairs, unpaired = [], []
    for sides in by_stem.values():
        if len(sides) == 2:
            pairs.append((sides["L"], sides["R"]))
        else:
            unpaired.extend(names[j] for j in sides.values())
    pairs.sort()
    return tuple(pairs), unpaired


# Name parts that mark a joint of the upper body (half-body augmentation), when the schema file
# gives no upper_body.
_UPPER_WORDS = ("head", "nose", "eye", "ear", "mouth", "chin", "neck", "throat", "shoulder", "elbow",
                "wrist", "hand", "thorax", "chest")  # fmt: skip


def infer_upper_body(names: tuple[str, ...]) -> tuple[int, ...]:
    """Joints whose names contain an upper-body word; () unless some but not all do."""
    upper = tuple(j for j, n in enumerate(names) if any(w in n.lower() for w in _UPPER_WORDS))
    return upper if 0 < len(upper) < len(names) else ()


# --------------------------------------------------------------------------- reading


@dataclass
class SchemaInfo:
    """A resolved schema and what the user should be told about how it was built."""

    schema: KeypointSchema
    source: str  # "built-in", an annotation file, a schema file, or "checkpoint"
    notes: list[str] = field(default_factory=list)  # how each part was obtained
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Multi-line text printed at the start of training and by ``browse``."""
        s = self.schema
        names = s.joint_names
        pairs = ", ".join(f"{names[a]}<->{names[b]}" for a, b in s.flip_pairs) or "none"
        lines = [
            f"keypoint schema {s.name!r} ({s.num_joints} joints, from {self.source}): {', '.join(names)}",
            f"  flip pairs: {pairs}",
        ]
        lines += [f"  {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _index(value: Any, names: tuple[str, ...], what: str, where: str) -> int:
    """A joint given by name or by 0-based index, as an index."""
    if isinstance(value, str):
        if value not in names:
            raise HeatposeError(f"{where}: {what} names unknown joint {value!r} (joints: {', '.join(names)})")
        return names.index(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(names):
            raise HeatposeError(
                f"{where}: {what} index {value} is out of range (0-based, {len(names)} joints)"
            )
        return value
    raise HeatposeError(f"{where}: {what} must be a joint name or a 0-based index, got {value!r}")


def _pairs(value: Any, names: tuple[str, ...], what: str, where: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        raise HeatposeError(f"{where}: {what} must be a list of [joint, joint] pairs")
    return tuple((_index(a, names, what, where), _index(b, names, what, where)) for a, b in value)


def _per_joint(value: Any, names: tuple[str, ...], what: str, where: str, fill: Any) -> tuple:
    """A list with one value per joint, or a name -> value mapping (others get ``fill``)."""
    if isinstance(value, dict):
        out = [fill] * len(names)
        for key, v in value.items():
            out[_index(key, names, what, where)] = v
        if any(v is None for v in out):
            missing = [n for n, v in zip(names, out, strict=True) if v is None]
            raise HeatposeError(f"{where}: {what} has no value for {', '.join(missing)}")
        return tuple(out)
    if isinstance(value, list):
        if len(value) != len(names):
            raise HeatposeError(f"{where}: {len(value)} {what} for {len(names)} joints")
        return tuple(value)
    raise HeatposeError(f"{where}: {what} must be a list (one per joint) or a joint -> value mapping")


def _numbers(values: tuple, what: str, where: str) -> tuple[float, ...]:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise HeatposeError(f"{where}: {what} must be numbers")
    return tuple(float(v) for v in values)


def category_names_and_skeleton(
    category: dict[str, Any], where: str
) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """Joint names and 0-based skeleton of a COCO category (its file's skeleton is 1-based)."""
    names = category.get("keypoints")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise HeatposeError(
            f"{where}: category {category.get('id')!r} has no 'keypoints' list of joint names"
        )
    k = len(names)
    edges = []
    for edge in category.get("skeleton") or []:
        if not (isinstance(edge, list) and len(edge) == 2 and all(isinstance(i, int) for i in edge)):
            raise HeatposeError(f"{where}: skeleton edge {edge!r} is not a pair of joint numbers")
        if not all(1 <= i <= k for i in edge):
            raise HeatposeError(
                f"{where}: skeleton edge {edge} is out of range: COCO skeletons number joints 1..{k} "
                "(if yours is 0-based, give 'skeleton' in a schema file instead)"
            )
        edges.append((edge[0] - 1, edge[1] - 1))
    return tuple(names), tuple(edges)


def keypoint_category(gt: dict[str, Any], where: str, category: int | None = None) -> dict[str, Any]:
    """The category whose keypoints the schema describes: ``category`` (an id), else the only
    category with a ``keypoints`` list, else id 1 (COCO's person)."""
    cats = [c for c in gt.get("categories") or [] if isinstance(c, dict)]
    if category is not None:
        for c in cats:
            if c.get("id") == category:
                return c
        raise HeatposeError(f"{where}: no category with id {category}")
    with_kpts = [c for c in cats if isinstance(c.get("keypoints"), list)]
    if len(with_kpts) == 1:
        return with_kpts[0]
    for c in with_kpts:
        if c.get("id") == 1:
            return c
    if not with_kpts:
        raise HeatposeError(f"{where}: no category has a 'keypoints' list of joint names")
    ids = ", ".join(str(c.get("id")) for c in with_kpts)
    raise HeatposeError(f"{where}: several keypoint categories ({ids}); say which one to use")


def read_schema_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a schema ``.yaml``/``.yml``/``.json`` file; unknown keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise HeatposeError(f"keypoint schema file not found: {path}")
    if path.suffix == ".json":
        data = load_json(path, "keypoint schema")
    else:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            raise HeatposeError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict):
        raise HeatposeError(f"{path}: a keypoint schema file must be a mapping")
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise HeatposeError(f"{path}: unknown schema key {unknown[0]!r} (known: {', '.join(_FILE_KEYS)})")
    return data


def build_schema(
    name: str,
    names: tuple[str, ...],
    skeleton: tuple[tuple[int, int], ...],
    overrides: dict[str, Any],
    source: str,
    where: str,
) -> SchemaInfo:
    """Apply a schema file's ``overrides`` to names + skeleton; infer what is not given."""
    names = tuple(names)
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise HeatposeError(f"{where}: duplicate joint name {dup!r}")
    notes, warnings = [], []
    if "skeleton" in overrides:
        skeleton = _pairs(overrides["skeleton"], names, "skeleton", where)
    if "flip_pairs" in overrides:
        flip_pairs = _pairs(overrides["flip_pairs"], names, "flip_pairs", where)
        notes.append("flip pairs: from the schema file")
        unpaired: list[str] = []
    else:
        flip_pairs, unpaired = infer_flip_pairs(names)
        notes.append("flip pairs: inferred from the joint names (check them; set flip_pairs to override)")
    if unpaired:
        warnings.append(
            f"joint name(s) {', '.join(unpaired)} look left/right but have no partner: "
            "they are not swapped when an image is flipped"
        )
    if "sigmas" in overrides:
        sigmas = _numbers(_per_joint(overrides["sigmas"], names, "sigmas", where, None), "sigmas", where)
        notes.append("OKS sigmas: from the schema file")
    else:
        sigmas = default_sigmas(len(names))
        warnings.append(
            f"no OKS sigmas given: using {sigmas[0]:.4g} for every joint ({DEFAULT_SIGMA_RULE}); "
            "COCO AP depends on them, so set 'sigmas' in a schema file for numbers you can compare"
        )
    weights = None
    if "joint_weights" in overrides:
        weights = _numbers(
            _per_joint(overrides["joint_weights"], names, "joint_weights", where, 1.0), "joint_weights", where
        )
        notes.append("loss weights: " + ", ".join(f"{n} {w:g}" for n, w in zip(names, weights, strict=True)))
    upper: tuple[int, ...] = ()
    if "upper_body" in overrides:
        if not isinstance(overrides["upper_body"], list):
            raise HeatposeError(f"{where}: upper_body must be a list of joints")
        upper = tuple(_index(v, names, "upper_body", where) for v in overrides["upper_body"])
    else:
        upper = infer_upper_body(names)
        if upper:
            notes.append(
                "upper body (half-body augmentation), from the names: " + ", ".join(names[j] for j in upper)
            )
    colors = None
    if "colors" in overrides:
        colors = tuple(
            tuple(int(v) for v in c) if isinstance(c, (list, tuple)) else c
            for c in _per_joint(overrides["colors"], names, "colors", where, (255, 128, 0))
        )
    try:
        schema = KeypointSchema(
            name=str(overrides.get("name") or name),
            joint_names=names,
            flip_pairs=flip_pairs,
            skeleton=skeleton,
            sigmas=sigmas,
            upper_body=upper,
            joint_weights=weights,
            colors=colors,
        )
    except HeatposeError as err:
        raise HeatposeError(f"{where}: {err}") from None
    return SchemaInfo(schema, source, notes, warnings)


def schema_from_coco(
    gt: dict[str, Any], where: str, overrides: dict[str, Any] | None = None, category: int | None = None
) -> SchemaInfo:
    """The schema of a loaded COCO keypoints json's category, with optional file overrides."""
    overrides = overrides or {}
    cat = keypoint_category(gt, where, category)
    if "skeleton" in overrides:  # the file's own skeleton replaces the category's, unread
        cat = {**cat, "skeleton": []}
    names, skeleton = category_names_and_skeleton(cat, where)
    if "keypoints" in overrides and list(overrides["keypoints"]) != list(names):
        raise HeatposeError(
            f"{where}: the schema file's keypoints ({len(overrides['keypoints'])}) differ from the "
            f"annotation category's ({len(names)}: {', '.join(names)})"
        )
    info = build_schema(str(cat.get("name") or "custom"), names, skeleton, overrides, where, where)
    info.notes.insert(
        0, "joint names and skeleton: the annotation category (skeleton 1-based there, 0-based here)"
    )
    return info


def resolve_schema(spec: str, ann_path: str | Path | None = None, category: int | None = None) -> SchemaInfo:
    """Turn ``data.schema`` (a built-in name, ``auto`` or a schema file path) into a schema."""
    if spec in SCHEMAS:
        return SchemaInfo(SCHEMAS[spec], "built-in")
    overrides: dict[str, Any] = {}
    if spec != "auto":
        if not spec.endswith(SCHEMA_FILE_SUFFIXES):
            raise HeatposeError(
                f"config key 'data.schema': {spec!r} is not a built-in schema ({', '.join(SCHEMAS)}), "
                f"'auto', or a schema file ({', '.join(SCHEMA_FILE_SUFFIXES)})"
            )
        overrides = read_schema_file(spec)
        if "keypoints" in overrides and not ann_path:
            names = overrides["keypoints"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise HeatposeError(f"{spec}: keypoints must be a list of joint names")
            info = build_schema(Path(spec).stem, tuple(names), (), overrides, spec, spec)
            info.notes.insert(0, "joint names: the schema file")
            return info
    if not ann_path:
        raise HeatposeError(
            f"data.schema {spec!r} reads the joints from the annotation file, but none is set "
            "(data.train_ann / data.val_ann)"
        )
    gt = load_json(ann_path, "annotation")
    if not isinstance(gt, dict):
        raise HeatposeError(f"{ann_path}: COCO ground truth must be a JSON object")
    info = schema_from_coco(gt, str(ann_path), overrides, category)
    if spec != "auto":
        info.source = f"{ann_path} + {spec}"
    return info


# --------------------------------------------------------------------------- configs and checkpoints

_CACHE: dict[tuple, SchemaInfo] = {}


def _stamp(path: str) -> tuple:
    p = Path(path) if path else None
    return (path, p.stat().st_mtime_ns if p is not None and p.is_file() else None)


def schema_info_for_config(cfg: Any) -> SchemaInfo:
    """The schema ``cfg.data.schema`` names (read from ``train_ann``, else ``val_ann``), cached
    per file contents' modification time. When both annotation files carry a category, their
    joint names must agree."""
    d = cfg.data
    spec = d.schema
    key = (
        spec,
        _stamp(d.train_ann),
        _stamp(d.val_ann),
        _stamp(spec if spec.endswith(SCHEMA_FILE_SUFFIXES) else ""),
    )
    if key in _CACHE:
        return _CACHE[key]
    anns = [a for a in (d.train_ann, d.val_ann) if a and Path(a).is_file()]
    info = resolve_schema(spec, anns[0] if anns else None)
    if spec not in SCHEMAS and len(anns) == 2 and anns[0] != anns[1]:
        other = resolve_schema(spec, anns[1])
        if other.schema.joint_names != info.schema.joint_names:
            raise HeatposeError(
                f"{anns[1]}: keypoint names differ from {anns[0]}'s "
                f"({', '.join(other.schema.joint_names)} vs {', '.join(info.schema.joint_names)})"
            )
    _CACHE[key] = info
    return info


def schema_for_config(cfg: Any) -> KeypointSchema:
    return schema_info_for_config(cfg).schema


def resolve_num_joints(cfg: Any, schema: KeypointSchema) -> Any:
    """``cfg`` with ``model.num_joints`` set from the schema where it should follow it.

    ``model.num_joints: 0`` always takes the schema's count; so does the default 17 when the
    schema is read from data (``auto`` or a file) and has another count. Any other
    disagreement is an error.
    """
    n = cfg.model.num_joints
    from_data = cfg.data.schema not in SCHEMAS
    if n == schema.num_joints:
        return cfg
    if n == 0 or (from_data and n == 17):
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_joints=schema.num_joints))
    raise HeatposeError(
        f"config: model.num_joints={n} but keypoint schema {schema.name!r} has {schema.num_joints} joints "
        "(set model.num_joints to 0 to follow the schema)"
    )


def sigmas_for_ground_truth(gt_path: str | Path, spec: str | None = None) -> tuple[Any, SchemaInfo | None]:
    """OKS sigmas for scoring ``gt_path``: the schema ``spec`` names (read against the file),
    else None (pycocotools' own) for a COCO-17 person file, else the file's own category
    (``auto``: its sigmas follow :data:`DEFAULT_SIGMA_RULE`, with a warning)."""
    import numpy as np

    if spec is None:
        gt = load_json(gt_path, "ground truth")
        cats = gt.get("categories") if isinstance(gt, dict) else None
        names = [
            c.get("keypoints")
            for c in cats or []
            if isinstance(c, dict) and isinstance(c.get("keypoints"), list)
        ]
        if not names or all(tuple(n) == SCHEMAS["coco"].joint_names for n in names):
            return None, None
        spec = "auto"
    info = resolve_schema(spec, gt_path if spec not in SCHEMAS else None)
    return np.asarray(info.schema.oks_sigmas(), dtype=np.float64), info


def schema_to_dict(schema: KeypointSchema) -> dict[str, Any]:
    """Plain lists and numbers (safe for ``torch.load(weights_only=True)`` and json)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        v = getattr(schema, f.name)
        if isinstance(v, tuple):
            v = [list(x) if isinstance(x, tuple) else x for x in v]
        out[f.name] = v
    return out


def schema_from_dict(data: dict[str, Any], where: str = "checkpoint") -> KeypointSchema:
    """Inverse of :func:`schema_to_dict`; a malformed dict is one error line."""
    if not isinstance(data, dict) or not isinstance(data.get("joint_names"), list):
        raise HeatposeError(f"{where}: keypoint schema entry is malformed")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(KeypointSchema):
        if f.name not in data:
            continue
        v = data[f.name]
        if isinstance(v, list):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        kwargs[f.name] = v
    try:
        return KeypointSchema(**kwargs)
    except (TypeError, HeatposeError) as err:
        raise HeatposeError(f"{where}: keypoint schema entry is invalid: {err}") from None


def schema_from_checkpoint(obj: Any) -> KeypointSchema | None:
    """The schema saved in a heatpose checkpoint's ``meta`` (None for other layouts)."""
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("keypoint_schema"), dict):
        return schema_from_dict(meta["keypoint_schema"])
    return None
