"""Stage-wise growth: start a deeper CFA cascade from a trained shallower one.

CFA's recipe (Su et al. 2019): more than three randomly initialised stages do not
converge, so a 3-stage cascade is trained first and the deeper cascade starts from it.
``heatpose train CFG --init-from CKPT`` (config key ``model.init_from``) calls
:func:`grow_from_checkpoint`, which copies every tensor of the checkpoint whose name and
shape match the new model and leaves the rest at their fresh initialisation:

* a k-stage CFA checkpoint fills ``stages.0`` .. ``stages.{k-1}`` and ``aggregations.0`` ..
  ``aggregations.{k-2}`` of an S-stage cascade; stages k.. and their aggregations are new;
* a SimpleBaseline checkpoint (``backbone.*``, ``head.*``, any layout
  :func:`~heatpose.models.checkpoint.migrate_state_dict` reads) becomes stage 1 of a ResNet
  cascade: ``backbone.*`` -> ``stages.0.backbone.*``, ``head.*`` -> ``stages.0.head.*``; the
  skip connections are new.

Tensors the model lacks or whose shape differs (another backbone depth, joint count or
decoder width) are *skipped* and reported, never silently forced in. The report lists
loaded, new and skipped tensors, grouped by module.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from heatpose.errors import HeatposeError
from heatpose.models.cfa import CFA
from heatpose.models.checkpoint import _fill_num_batches_tracked, migrate_state_dict, read_checkpoint

_SIMPLE_BASELINE_ROOTS = ("backbone.", "head.")


@dataclass
class GrowthReport:
    """Names of the model's tensors that were loaded or left new, and the checkpoint's
    tensors that were skipped (``name: reason``)."""

    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary: counts, then each group of tensors by module prefix."""
        out = []
        for title, names in (("loaded", self.loaded), ("new", self.new), ("skipped", self.skipped)):
            out.append(f"{title}: {len(names)} tensors" + (":" if names else ""))
            out += [f"  {prefix} ({n})" for prefix, n in _groups(names)]
        return out


def _groups(names: list[str]) -> list[tuple[str, int]]:
    """Group tensor names by their first two dotted parts (``stages.0``, ``aggregations.1``)."""
    counts: Counter[str] = Counter()
    for name in names:
        key, _, reason = name.partition(": ")
        reason = reason.split(" (")[0]
        parts = key.split(".")
        prefix = ".".join(parts[:2]) + ".*" if len(parts) > 2 else key
        counts[prefix + (f" [{reason}]" if reason else "")] += 1
    return list(counts.items())


def _as_cascade_keys(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename a SimpleBaseline state dict to stage 1 of a ResNet cascade; others pass through."""
    is_simple = all(k.startswith(_SIMPLE_BASELINE_ROOTS) for k in state)
    if isinstance(model, CFA) and is_simple:
        return {f"stages.0.{k}": v for k, v in state.items()}
    return state


def grow_state_dict(model: nn.Module, checkpoint: Any) -> GrowthReport:
    """Load every matching tensor of ``checkpoint`` (an object from ``read_checkpoint`` or a
    state dict) into ``model``; return what was loaded, new and skipped."""
    state = _as_cascade_keys(migrate_state_dict(checkpoint), model)
    _fill_num_batches_tracked(state, model)
    own = model.state_dict()
    report = GrowthReport()
    take: dict[str, Tensor] = {}
    for name, value in state.items():
        if name not in own:
            report.skipped.append(f"{name}: not in this model")
        elif value.shape != own[name].shape:
            report.skipped.append(
                f"{name}: shape differs "
                f"({tuple(value.shape)} in the checkpoint, {tuple(own[name].shape)} here)"
            )
        else:
            take[name] = value
    if not take:
        raise HeatposeError(
            "model.init_from: no tensor of the checkpoint matches this model "
            "(is it a CFA/SimpleBaseline checkpoint with the same backbone?)"
        )
    with torch.no_grad():
        for name, value in take.items():
            own[name].copy_(value)
    report.loaded = [k for k in own if k in take]
    report.new = [k for k in own if k not in take]
    return report


def grow_from_checkpoint(model: nn.Module, path: str | Path) -> GrowthReport:
    """:func:`grow_state_dict` from a checkpoint file (any supported layout)."""
    return grow_state_dict(model, read_checkpoint(path))
