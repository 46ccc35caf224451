"""Fine-tuning across keypoint sets: load a checkpoint trained on another schema.

Why: the most common way to train on one's own keypoints is to start from a COCO-17 model
(e.g. the official release) and fine-tune a model with another number of joints. Everything
but the layers that predict heatmaps has the same shapes and is loaded as is; the final
layer's rows (one output channel per joint) are re-initialised, except the rows of joints whose
names match a source joint, which are copied. Layers that *read* heatmaps (input channels per
joint, as CFA's heatmap embedding) are treated the same way along their input dimension.
Any other shape mismatch means a different architecture and is one clear error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, MPII16, KeypointSchema
from heatpose.models.checkpoint import (
    _fill_num_batches_tracked,
    load_model_weights,
    migrate_state_dict,
    read_checkpoint,
)
from heatpose.schema_io import _side_and_stem, schema_from_checkpoint

# Checkpoints without a schema (official, MMPose) are assumed to use these, by joint count.
_ASSUMED_BY_COUNT: dict[int, KeypointSchema] = {17: COCO17, 16: MPII16}


@dataclass
class TransferReport:
    """What :func:`load_weights_across_schemas` did, for the user to read."""

    loaded: list[str] = field(default_factory=list)  # tensors loaded unchanged
    reinitialised: list[str] = field(default_factory=list)  # per-joint tensors rebuilt
    copied: list[tuple[str, str]] = field(default_factory=list)  # (target joint, source joint)
    source_schema: str = ""

    def describe(self) -> str:
        copied = ", ".join(t if t == s else f"{t}<-{s}" for t, s in self.copied) or "none"
        return (
            f"weights across keypoint schemas ({self.source_schema}): loaded {len(self.loaded)} tensors; "
            f"re-initialised {', '.join(self.reinitialised) or 'nothing'}; "
            f"copied by name {len(self.copied)} joint(s): {copied}"
        )


def _canonical(name: str) -> str:
    """A joint name with case, separators and the spelling of its side removed
    (``left_shoulder``, ``l_shoulder`` and ``LShoulder`` all give ``L:shoulder``)."""
    sided = _side_and_stem(name)
    side, stem = sided if sided else ("", name.lower())
    return side + ":" + re.sub(r"[_\-. *]", "", stem)


def match_joints(target: KeypointSchema, source: KeypointSchema) -> list[tuple[int, int]]:
    """(target index, source index) of joints with the same name (exact, else canonical)."""
    exact = {n: i for i, n in enumerate(source.joint_names)}
    canon: dict[str, int] = {}
    for i, n in enumerate(source.joint_names):
        canon.setdefault(_canonical(n), i)
    pairs = []
    for t, name in enumerate(target.joint_names):
        s = exact.get(name, canon.get(_canonical(name)))
        if s is not None:
            pairs.append((t, s))
    return pairs


def load_weights_across_schemas(
    model: nn.Module,
    checkpoint_obj: Any,
    target_schema: KeypointSchema,
    source_schema: KeypointSchema | None = None,
) -> TransferReport:
    """Load ``checkpoint_obj`` (any layout :func:`migrate_state_dict` reads) into ``model``,
    whose heatmap layers have ``target_schema.num_joints`` channels.

    ``source_schema`` defaults to the checkpoint's own (heatpose ``meta``), else COCO-17 or
    MPII-16 by joint count; without one, no rows are copied. Per-joint tensors are those whose
    shapes differ from the model's only in one dimension that equals the target joint count
    in the model and the source joint count in the checkpoint.
    """
    state = migrate_state_dict(checkpoint_obj)
    own = model.state_dict()
    _fill_num_batches_tracked(state, model)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        what = f"{len(missing)} missing key(s) ({', '.join(missing[:3])})" if missing else ""
        what += ("; " if what else "") + (
            f"{len(unexpected)} unexpected key(s) ({', '.join(unexpected[:3])})" if unexpected else ""
        )
        raise HeatposeError(f"checkpoint does not match the model apart from its keypoint count: {what}")
    k_tgt = target_schema.num_joints
    mismatched = {k: v for k, v in state.items() if v.shape != own[k].shape}
    k_src = _source_count(mismatched, own, k_tgt)
    if source_schema is None:
        source_schema = schema_from_checkpoint(
            checkpoint_obj if isinstance(checkpoint_obj, Mapping) else None
        )
    if (
        not mismatched
        and source_schema is not None
        and source_schema.joint_names != target_schema.joint_names
    ):
        # same joint count, other joints: the final layer's rows are still per joint
        mismatched = {k: v for k, v in state.items() if ".final_layer." in f".{k}"}
        k_src = k_tgt
    if source_schema is None and k_src is not None:
        source_schema = _ASSUMED_BY_COUNT.get(k_src)
    if source_schema is not None and k_src is not None and source_schema.num_joints != k_src:
        raise HeatposeError(
            f"checkpoint: its heatmap layers have {k_src} channels but its schema "
            f"{source_schema.name!r} has {source_schema.num_joints} joints"
        )
    pairs = match_joints(target_schema, source_schema) if source_schema is not None else []
    report = TransferReport(source_schema=_describe_source(source_schema, k_src, checkpoint_obj))
    new_state: dict[str, Tensor] = {}
    for key, value in state.items():
        if key not in mismatched:
            new_state[key] = value
            report.loaded.append(key)
            continue
        dim = _joint_dim(value.shape, own[key].shape, k_tgt, k_src)
        if dim is None:
            raise HeatposeError(
                f"checkpoint tensor {key} has shape {tuple(value.shape)}, the model {tuple(own[key].shape)}: "
                f"not a per-joint difference ({k_src} -> {k_tgt} joints), so the architectures differ"
            )
        fresh = own[key].clone()  # the model's own initialisation (the paper's N(0, 0.001) for heads)
        for t, s in pairs:
            fresh.select(dim, t).copy_(value.select(dim, s))
        new_state[key] = fresh
        report.reinitialised.append(key)
    if source_schema is not None and mismatched:
        names_t, names_s = target_schema.joint_names, source_schema.joint_names
        report.copied = [(names_t[t], names_s[s]) for t, s in pairs]
    model.load_state_dict(new_state, strict=True)
    return report


def _source_count(mismatched: dict[str, Tensor], own: dict[str, Tensor], k_tgt: int) -> int | None:
    """The checkpoint's joint count, read off the first per-joint dimension that differs."""
    for key, value in mismatched.items():
        theirs, ours = value.shape, own[key].shape
        if len(theirs) == len(ours):
            diff = [d for d in range(len(ours)) if theirs[d] != ours[d]]
            if len(diff) == 1 and ours[diff[0]] == k_tgt:
                return int(theirs[diff[0]])
    return None


def _joint_dim(theirs: torch.Size, ours: torch.Size, k_tgt: int, k_src: int | None) -> int | None:
    if len(theirs) != len(ours) or k_src is None:
        return None
    if theirs == ours and k_src == k_tgt and ours[0] == k_tgt:  # same count, other joints
        return 0
    diff = [d for d in range(len(ours)) if theirs[d] != ours[d]]
    if len(diff) == 1 and ours[diff[0]] == k_tgt and theirs[diff[0]] == k_src and diff[0] <= 1:
        return diff[0]
    return None


def _describe_source(schema: KeypointSchema | None, k_src: int | None, obj: Any) -> str:
    if schema is None:
        return f"{k_src} unnamed joints" if k_src else "same joint count"
    saved = schema_from_checkpoint(obj if isinstance(obj, Mapping) else None) is not None
    how = "from the checkpoint" if saved else "assumed from the joint count"
    return f"source schema {schema.name!r}, {schema.num_joints} joints, {how}"


def init_from_checkpoint(
    model: nn.Module, path_or_obj: str | Path | Mapping[str, Any], target_schema: KeypointSchema
) -> TransferReport | None:
    """``model.weights`` for training: a plain load when the checkpoint has the model's joints
    (same count and, when it names them, the same names), else :func:`load_weights_across_schemas`,
    whose report is printed. Returns that report, or None for a plain load."""
    obj = read_checkpoint(path_or_obj) if isinstance(path_or_obj, (str, Path)) else path_or_obj
    source = schema_from_checkpoint(obj if isinstance(obj, Mapping) else None)
    state = migrate_state_dict(obj)
    own = model.state_dict()
    same_shapes = all(k in own and v.shape == own[k].shape for k, v in state.items())
    same_names = source is None or source.joint_names == target_schema.joint_names
    if same_shapes and same_names:
        load_model_weights(model, obj)
        return None
    report = load_weights_across_schemas(model, obj, target_schema, source)
    print(report.describe(), file=sys.stderr)
    return report
