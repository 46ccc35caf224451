"""heatpose: top-down 2D human pose estimation by heatmap regression (Simple Baselines, CFA)."""

from heatpose.codec import HeatmapCodec, flip_back
from heatpose.config import ExperimentConfig, load_config
from heatpose.errors import HeatposeError
from heatpose.keypoints import COCO17, LIP16, MPII16, KeypointSchema, get_schema

__version__ = "0.1.0"

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
