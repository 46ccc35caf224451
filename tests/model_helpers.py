"""Helpers shared by the tests of the inference rewrites (folding, fusion, export, predict)."""

from __future__ import annotations

from torch import nn


def randomize_batchnorm(model: nn.Module, affine: bool = True) -> nn.Module:
    """Give every BatchNorm2d non-trivial statistics (and, with ``affine``, scale and shift), so
    that folding, fusion and export have real work to do; returns ``model`` in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            if affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()
