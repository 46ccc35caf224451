"""Pose networks and :func:`build_model`, which turns a ``ModelConfig`` into one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from heatpose.errors import HeatposeError
from heatpose.models.cfa import CFA, STAGE_INPUTS, STAGE_TYPES, fuse_stages
from heatpose.models.checkpoint import load_backbone_weights, load_model_weights, migrate_state_dict
from heatpose.models.resnet import RESNET_DEPTHS, ResNet
from heatpose.models.simple_baseline import DECONV_CFG, MAX_DECONV_LAYERS, DeconvHead, SimpleBaseline

if TYPE_CHECKING:
    from heatpose.config import ModelConfig

__all__ = [
    "ARCHS",
    "CFA",
    "DeconvHead",
    "ResNet",
    "SimpleBaseline",
    "build_model",
    "fuse_stages",
    "load_backbone_weights",
    "load_model_weights",
    "make_model",
    "migrate_state_dict",
]

ARCHS: dict[str, type[nn.Module]] = {"simple_baseline": SimpleBaseline, "cfa": CFA}


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
    if cfg.arch == "cfa":
        _validate_cfa(cfg)


def _validate_cfa(cfg: ModelConfig) -> None:
    if cfg.num_stages < 1:
        raise HeatposeError(f"model.num_stages must be >= 1, got {cfg.num_stages}")
    if not 1 <= cfg.fuse_last_k <= cfg.num_stages:
        raise HeatposeError(
            f"model.fuse_last_k must be 1..model.num_stages ({cfg.num_stages}), got {cfg.fuse_last_k}"
        )
    if cfg.num_deconv_layers != 3:
        raise HeatposeError(
            "model.num_deconv_layers must be 3 for arch cfa (stages decode to 1/4), "
            f"got {cfg.num_deconv_layers}"
        )
    if cfg.stage_type not in STAGE_TYPES:
        raise HeatposeError(
            f"model.stage_type must be one of {', '.join(STAGE_TYPES)}, got {cfg.stage_type!r}"
        )
    if cfg.stage_input not in STAGE_INPUTS:
        raise HeatposeError(
            f"model.stage_input must be one of {', '.join(STAGE_INPUTS)}, got {cfg.stage_input!r}"
        )
    if cfg.stage_input == "features" and not cfg.aggregate and cfg.num_stages > 1:
        raise HeatposeError("model.stage_input 'features' links the stages: it needs model.aggregate true")
    if cfg.final_conv_kernel != 1:
        raise HeatposeError(f"model.final_conv_kernel must be 1 for arch cfa, got {cfg.final_conv_kernel}")
    if cfg.stage_type == "hourglass":
        if cfg.hourglass_depth < 1:
            raise HeatposeError(f"model.hourglass_depth must be >= 1, got {cfg.hourglass_depth}")
        if cfg.pretrained:
            raise HeatposeError("model.pretrained (ImageNet ResNet weights) needs model.stage_type resnet")


def make_model(cfg: ModelConfig) -> nn.Module:
    """Construct the network ``cfg`` describes, with its initialisation and no weights loaded."""
    _validate(cfg)
    if cfg.arch == "cfa":
        return CFA(
            num_stages=cfg.num_stages,
            backbone_depth=cfg.backbone_depth,
            num_joints=cfg.num_joints,
            fuse_last_k=cfg.fuse_last_k,
            aggregate=cfg.aggregate,
            stage_type=cfg.stage_type,
            stage_input=cfg.stage_input,
            num_filters=cfg.num_deconv_filters,
            deconv_kernel=cfg.deconv_kernel,
            hourglass_depth=cfg.hourglass_depth,
        )
    backbone = ResNet(cfg.backbone_depth)
    head = DeconvHead(
        backbone.out_channels,
        cfg.num_joints,
        num_deconv_layers=cfg.num_deconv_layers,
        num_deconv_filters=cfg.num_deconv_filters,
        deconv_kernel=cfg.deconv_kernel,
        final_conv_kernel=cfg.final_conv_kernel,
    )
    return ARCHS[cfg.arch](backbone, head)


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the network described by ``cfg`` and load its weights.

    ``cfg.pretrained`` (ImageNet backbone; for CFA, stage 1's encoder, as in the paper) is
    loaded first, then ``cfg.weights`` (a full checkpoint in any supported layout), which
    overrides it.
    """
    model = make_model(cfg)
    if cfg.pretrained:
        backbone = model.stages[0].backbone if isinstance(model, CFA) else model.backbone
        load_backbone_weights(backbone, cfg.pretrained)
    if cfg.weights:
        load_model_weights(model, cfg.weights)
    return model
