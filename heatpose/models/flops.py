"""Model cost: parameter count and FLOPs of one forward pass, from forward hooks.

FLOPs here are **multiply-accumulates** of the convolution, transposed-convolution and linear
layers, the convention of the pose papers (Simple Baselines' "8.9 GFLOPs" for ResNet-50 at
256x192 and HRNet's tables count multiply-adds). BatchNorm, ReLU, pooling, upsampling,
additions and biases are left out; they are a few per cent at most. Per layer, for one image:

* ``Conv2d``: ``C_out * H_out * W_out * (C_in / groups) * k_h * k_w``
* ``ConvTranspose2d``: ``C_in * H_in * W_in * (C_out / groups) * k_h * k_w`` (every input
  pixel scatters one kernel)
* ``Linear``: ``in_features * out_features`` per output row

The pass runs on the ``meta`` device when the model is there (shapes only, no arithmetic and
no memory), so :func:`config_cost` prices a 4-stage ResNet-152 cascade in a fraction of a second.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelCost:
    """Parameters and multiply-accumulates of one forward pass on one (3, H, W) image."""

    params: int
    flops: int
    input_size: tuple[int, int]  # width, height

    def describe(self) -> str:
        w, h = self.input_size
        gflops = self.flops / 1e9
        return f"{self.params / 1e6:.2f} M parameters, {gflops:.2f} GFLOPs (multiply-adds) at {w}x{h}"


def _layer_flops(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.ConvTranspose2d):
        x = inputs[0]
        kh, kw = module.kernel_size
        per_pixel = module.out_channels // module.groups * kh * kw
        return module.in_channels * x.shape[-2] * x.shape[-1] * per_pixel
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        per_output = module.in_channels // module.groups * kh * kw
        return module.out_channels * output.shape[-2] * output.shape[-1] * per_output
    if isinstance(module, nn.Linear):
        rows = output.numel() // output.shape[-1] // output.shape[0] if output.dim() > 1 else 1
        return module.in_features * module.out_features * rows
    return 0


def count_cost(model: nn.Module, input_size: tuple[int, int]) -> ModelCost:
    """Parameters and FLOPs of ``model`` on one image of ``input_size`` = (width, height).

    Runs one forward pass of batch 1 in eval mode on the device of the model's parameters
    (``meta`` for free); the model's training mode is restored afterwards.
    """
    params = sum(p.numel() for p in model.parameters())
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    total = [0]

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        total[0] += _layer_flops(module, inputs, output)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    was_training = model.training
    w, h = input_size
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return ModelCost(params=params, flops=total[0], input_size=(w, h))


def config_cost(model_cfg: object, input_size: tuple[int, int]) -> ModelCost:
    """Cost of the network a ``ModelConfig`` describes, built on the meta device (no weights
    are read or allocated)."""
    from heatpose.models import make_model

    cfg = dataclasses.replace(model_cfg, pretrained="", weights="")  # type: ignore[type-var]
    with torch.device("meta"):
        model = make_model(cfg)
    return count_cost(model, input_size)
