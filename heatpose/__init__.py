"""heatpose: top-down 2D human pose estimation by heatmap regression (Simple Baselines, CFA).

The names below are imported on first use (PEP 562), so ``python -m heatpose`` does not pay
for importing torch before it knows a command needs it: a bad config or a ``score`` run
answers in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "COCO17": "heatpose.keypoints",
    "LIP16": "heatpose.keypoints",
    "MPII16": "heatpose.keypoints",
    "ExperimentConfig": "heatpose.config",
    "HeatmapCodec": "heatpose.codec",
    "HeatposeError": "heatpose.errors",
    "KeypointSchema": "heatpose.keypoints",
    "flip_back": "heatpose.codec",
    "get_schema": "heatpose.keypoints",
    "load_config": "heatpose.config",
}

__all__ = [
    "COCO17",
    "LIP16",
    "MPII16",
    "ExperimentConfig",
    "HeatmapCodec",
    "HeatposeError",
    "KeypointSchema",
    "flip_back",
    "get_schema",
    "load_config",
]

if TYPE_CHECKING:
    from heatpose.codec import HeatmapCodec, flip_back
    from heatpose.config import ExperimentConfig, load_config
    from heatpose.errors import HeatposeError
    from heatpose.keypoints import COCO17, LIP16, MPII16, KeypointSchema, get_schema


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'heatpose' has no attribute {name!r}")
