"""Stacked-hourglass building blocks (Newell, Yang & Deng, "Stacked Hourglass Networks for
Human Pose Estimation", ECCV 2016), used as CFA's second stage type.

The paper's pieces, written out non-recursively so that every resolution level is visible
to the cross-stage aggregation of :mod:`heatpose.models.cfa`:

* :class:`Residual`: the pre-activation bottleneck (BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1,
  half the channels inside), with a 1x1 projection on the skip when the width changes;
* :class:`HourglassStem`: 7x7/2 conv, residual, max-pool, two residuals: (N, 3, H, W) ->
  (N, C, H/4, W/4), where the hourglasses work;
* :class:`Hourglass`: ``depth`` times (max-pool, residual) down to H/4 / 2**depth, a residual
  at the bottom, then ``depth`` times (residual, nearest 2x upsampling, + a residual skip
  branch from the same level on the way down);
* :class:`HourglassHead`: residual, 1x1 conv-BN-ReLU, 1x1 conv to K heatmaps (the paper's
  per-stack intermediate prediction).

The paper stacks 8 hourglasses of depth 4 with C = 256 on one shared stem; in CFA each
stage is one hourglass and stages talk through :mod:`heatpose.models.cfa`'s aggregation.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


class Residual(nn.Module):
    """Pre-activation bottleneck: (N, in, h, w) -> (N, out, h, w)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = max(1, out_channels // 2)
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1),
        )
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        # Not in place on x: the pre-activation BN/ReLU act on a copy made by BN.
        identity = x if self.skip is None else self.skip(x)
        return self.body(x) + identity


class HourglassStem(nn.Module):
    """(N, 3, H, W) -> (N, channels, H/4, W/4): the paper's pre-hourglass layers."""

    def __init__(self, channels: int = 256):
        super().__init__()
        half = max(1, channels // 2)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.res1 = Residual(64, half)
        self.res2 = Residual(half, half)
        self.res3 = Residual(half, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(self.res1(x), 2)
        return self.res3(self.res2(x))


class Hourglass(nn.Module):
    """One hourglass of ``depth`` poolings at constant width ``channels``.

    :meth:`forward` takes the input (N, C, h, w) and optional per-level additions and returns
    ``(out, down, up)``: ``down[i]`` is the feature on the way down at stride 2**i relative to
    the input (i = 0..depth; ``down[0]`` is the input itself), ``up[i]`` the feature on the
    way up at the same stride (i = 0..depth; ``up[depth]`` is the bottom residual's output),
    and ``out = up[0]``. ``h`` and ``w`` must be divisible by 2**depth.
    """

    def __init__(self, channels: int = 256, depth: int = 4):
        super().__init__()
        if depth < 1:
            raise ValueError(f"hourglass depth must be >= 1, got {depth}")
        self.depth = depth
        self.skip_res = nn.ModuleList(Residual(channels, channels) for _ in range(depth))
        self.down_res = nn.ModuleList(Residual(channels, channels) for _ in range(depth))
        self.bottom_res = Residual(channels, channels)
        self.up_res = nn.ModuleList(Residual(channels, channels) for _ in range(depth))

    def forward(
        self, x: Tensor, additions: list[Tensor | None] | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        adds = additions or [None] * (self.depth + 1)
        down: list[Tensor] = []
        skips: list[Tensor] = []
        for i in range(self.depth + 1):
            if adds[i] is not None:
                x = x + adds[i]
            down.append(x)
            if i < self.depth:
                skips.append(self.skip_res[i](x))
                x = self.down_res[i](F.max_pool2d(x, 2))
        y = self.bottom_res(x)
        up: list[Tensor] = [y]
        for i in reversed(range(self.depth)):
            y = F.interpolate(self.up_res[i](y), scale_factor=2.0, mode="nearest") + skips[i]
            up.insert(0, y)
        return y, down, up


class HourglassHead(nn.Module):
    """(N, C, h, w) -> (features (N, C, h, w), heatmaps (N, K, h, w)), as after each stack."""

    def __init__(self, channels: int, num_joints: int):
        super().__init__()
        self.res = Residual(channels, channels)
        self.lin = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        self.final_layer = nn.Conv2d(channels, num_joints, 1)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.constant_(self.final_layer.bias, 0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.lin(self.res(x))
        return features, self.final_layer(features)
