"""Pose networks and :func:`build_model`, which turns a ``ModelConfig`` into one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from heatpose.errors import HeatposeError
from heatpose.models.checkpoint import load_backbone_weights, load_model_weights, migrate_state_dict
from heatpose.models.resnet import RESNET_DEPTHS, ResNet
from heatpose.models.simple_baseline import DECONV_CFG, MAX_DECONV_LAYERS, DeconvHead, SimpleBaseline

if TYPE_CHECKING:
    from heatpose.config import ModelConfig

__all__ = [
    "ARCHS",
    "DeconvHead",
    "ResNet",
    "SimpleBaseline",
    "build_model",
    "load_backbone_weights",
    "load_model_weights",
    "migrate_state_dict",
]

ARCHS: dict[str, type[nn.Module]] = {"simple_baseline": SimpleBaseline}


def _validate(cfg: ModelConfig) -> None:
    if cfg.arch not in ARCHS:
        raise HeatposeError(f"unknown model.arch {cfg.arch!r}; expected one of: {', '.join(sorted(ARCHS))}")
    if cfg.backbone_depth not in RESNET_DEPTHS:
        raise HeatposeError(
            f"unsupported model.backbone_depth {cfg.backbone_depth}; expected one of {list(RESNET_DEPTHS)}"
        )
    if cfg.num_joints < 1:
        raise HeatposeError(f"model.num_joints must be >= 1, got {cfg.num_joints}")
    if not 1 <= cfg.num_deconv_layers <= MAX_DECONV_LAYERS:
        raise HeatposeError(
            f"model.num_deconv_layers must be 1..{MAX_DECONV_LAYERS}, got {cfg.num_deconv_layers}"
        )
    if cfg.num_deconv_filters < 1:
        raise HeatposeError(f"model.num_deconv_filters must be >= 1, got {cfg.num_deconv_filters}")
    if cfg.deconv_kernel not in DECONV_CFG:
        raise HeatposeError(
            f"model.deconv_kernel must be one of {sorted(DECONV_CFG)}, got {cfg.deconv_kernel}"
        )
    if cfg.final_conv_kernel < 1 or cfg.final_conv_kernel % 2 == 0:
        raise HeatposeError(f"model.final_conv_kernel must be odd and >= 1, got {cfg.final_conv_kernel}")


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the network described by ``cfg`` and load its weights.

    ``cfg.pretrained`` (ImageNet backbone) is loaded first, then ``cfg.weights`` (a full
    checkpoint in any supported layout), which overrides it.
    """
    _validate(cfg)
    backbone = ResNet(cfg.backbone_depth)
    head = DeconvHead(
        backbone.out_channels,
        cfg.num_joints,
        num_deconv_layers=cfg.num_deconv_layers,
        num_deconv_filters=cfg.num_deconv_filters,
        deconv_kernel=cfg.deconv_kernel,
        final_conv_kernel=cfg.final_conv_kernel,
    )
    model = ARCHS[cfg.arch](backbone, head)
    if cfg.pretrained:
        load_backbone_weights(backbone, cfg.pretrained)
    if cfg.weights:
        load_model_weights(model, cfg.weights)
    return model
