"""A custom keypoint set carved out of a COCO keypoints file: subset, rename and reorder joints.

Why: the custom-keypoint path (schema from the data, training, flip test, COCO AP with the
schema's sigmas, PCK, browse) needs a dataset whose joints are *not* a built-in schema, and it
should exist without a download. ``heatpose synth OUT --keypoints SUBSET.yaml`` writes the
synthetic people and then rewrites their annotation file with :func:`remap_coco`.

A subset file names the new joints, in the new order, each with the joint it is taken from::

    name: upper8
    keypoints:               # new name: source joint name
      head: nose
      l_sho: left_shoulder
      r_sho: right_shoulder
    skeleton: [[head, l_sho], [head, r_sho]]   # optional, new names; default: the source
                                               # skeleton's edges between kept joints

Beside the annotation file a schema file (``schema_<name>.yaml``, for ``data.schema``) carries
the source joints' OKS sigmas over to the new names, because they are the same body points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_json, atomic_write_text, load_json
from heatpose.keypoints import SCHEMAS
from heatpose.schema_io import category_names_and_skeleton, keypoint_category, read_schema_file


def read_subset(path: str | Path) -> tuple[str, list[tuple[str, str]], list[list[str]] | None]:
    """(name, [(new joint, source joint)], skeleton in new names or None) from a subset file."""
    data = read_schema_file(path)  # same YAML/JSON reading and key checks as a schema file
    joints = data.get("keypoints")
    if isinstance(joints, list) and all(isinstance(j, str) for j in joints):
        pairs = [(j, j) for j in joints]  # a plain list keeps the names
    elif isinstance(joints, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in joints.items()
    ):
        pairs = list(joints.items())
    else:
        raise HeatposeError(f"{path}: keypoints must map new joint names to source joint names")
    if not pairs:
        raise HeatposeError(f"{path}: keypoints is empty")
    unsupported = sorted(set(data) - {"name", "keypoints", "skeleton"})
    if unsupported:
        raise HeatposeError(
            f"{path}: a keypoint subset file takes name, keypoints and skeleton, not {unsupported[0]!r} "
            "(put sigmas, flip_pairs, ... in the schema file written beside the annotations)"
        )
    return str(data.get("name") or Path(path).stem), pairs, data.get("skeleton")


def remap_coco(
    gt: dict[str, Any], name: str, pairs: list[tuple[str, str]], skeleton: list | None, where: str
) -> tuple[dict[str, Any], list[float] | None]:
    """The COCO dict with every annotation's keypoints in the new order (and the new
    category), plus the new joints' OKS sigmas when the source is a built-in schema with them."""
    cat = keypoint_category(gt, where)
    src_names, src_skeleton = category_names_and_skeleton(cat, where)
    new_names = [n for n, _ in pairs]
    if len(set(new_names)) != len(new_names):
        raise HeatposeError(f"{where}: duplicate new joint name in the subset")
    missing = [s for _, s in pairs if s not in src_names]
    if missing:
        raise HeatposeError(
            f"{where}: source joint {missing[0]!r} not in the file (joints: {', '.join(src_names)})"
        )
    src_index = [src_names.index(s) for _, s in pairs]
    if skeleton is None:
        pos = {s: i for i, s in enumerate(src_index)}
        edges = [[pos[a], pos[b]] for a, b in src_skeleton if a in pos and b in pos]
    else:
        if not isinstance(skeleton, list) or not all(isinstance(e, list) and len(e) == 2 for e in skeleton):
            raise HeatposeError(f"{where}: skeleton must be a list of [joint, joint] pairs of new names")
        unknown = [j for e in skeleton for j in e if j not in new_names]
        if unknown:
            raise HeatposeError(f"{where}: skeleton names unknown joint {unknown[0]!r}")
        edges = [[new_names.index(a), new_names.index(b)] for a, b in skeleton]
    out = dict(gt)
    out["categories"] = [
        {
            "id": cat.get("id", 1),
            "name": name,
            "supercategory": cat.get("supercategory", "person"),
            "keypoints": new_names,
            "skeleton": [[a + 1, b + 1] for a, b in edges],  # COCO files are 1-based
        }
    ]
    anns = []
    for ann in gt["annotations"]:
        kpts = ann.get("keypoints")
        if ann.get("category_id", 1) != cat.get("id", 1) or not isinstance(kpts, list):
            anns.append(ann)
            continue
        new = [v for j in src_index for v in kpts[3 * j : 3 * j + 3]]
        anns.append({**ann, "keypoints": new, "num_keypoints": sum(1 for v in new[2::3] if v > 0)})
    out["annotations"] = anns
    sigmas = None
    for builtin in SCHEMAS.values():
        if builtin.joint_names == src_names and builtin.sigmas is not None:
            sigmas = [builtin.sigmas[j] for j in src_index]
    return out, sigmas


def remap_synthetic_split(out_dir: str | Path, split: str, subset_path: str | Path) -> tuple[Path, Path]:
    """Rewrite ``OUT/annotations/person_keypoints_<split>.json`` in the subset's joints; write
    ``schema_<name>.yaml`` beside it. Returns both paths."""
    name, pairs, skeleton = read_subset(subset_path)
    ann_path = Path(out_dir) / "annotations" / f"person_keypoints_{split}.json"
    gt = load_json(ann_path, "annotation")
    if not isinstance(gt, dict):
        raise HeatposeError(f"{ann_path}: COCO ground truth must be a JSON object")
    cat_names = keypoint_category(gt, str(ann_path)).get("keypoints")
    if cat_names == [n for n, _ in pairs]:
        raise HeatposeError(f"{ann_path} already has the subset's joints (remapped before?)")
    new, sigmas = remap_coco(gt, name, pairs, skeleton, str(ann_path))
    atomic_write_json(ann_path, new)
    schema_path = ann_path.parent / f"schema_{name}.yaml"
    schema: dict[str, Any] = {"name": name}
    if sigmas is not None:
        schema["sigmas"] = {n: float(s) for (n, _), s in zip(pairs, sigmas, strict=True)}
    header = (
        f"# Keypoint schema {name} for the annotation files of this folder "
        "(written by heatpose synth --keypoints).\n"
        "# Joint names and skeleton come from the annotation file; OKS sigmas are the source joints'.\n"
        "# Use it as data.schema; flip pairs are inferred from the names unless flip_pairs is given.\n"
    )
    atomic_write_text(schema_path, header + yaml.safe_dump(schema, sort_keys=False))
    return ann_path, schema_path
