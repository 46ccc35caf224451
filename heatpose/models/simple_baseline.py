"""Simple Baselines for human pose estimation (Xiao, Wu & Wei, ECCV 2018).

A ResNet backbone followed by a few stride-2 transposed convolutions and a 1x1 conv that
predicts one heatmap per joint. With the paper's 3 deconv layers a 256x192 crop gives
64x48 heatmaps (stride 4). Module and parameter names follow the official
microsoft/human-pose-estimation.pytorch code (``deconv_layers.{0,1,3,4,6,7}``,
``final_layer``), nested under ``head.`` as in MMPose 1.x.
"""

from __future__ import annotations

from torch import Tensor, nn

from heatpose.models.resnet import ResNet

# kernel -> (padding, output_padding) so that every deconv exactly doubles H and W
# (official get_deconv_cfg).
DECONV_CFG: dict[int, tuple[int, int]] = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
MAX_DECONV_LAYERS = 3


class DeconvHead(nn.Module):
    """(N, in_channels, h, w) -> heatmaps (N, num_joints, h * 2**num_deconv_layers, ...).

    ``deconv_layers`` is [ConvTranspose2d(bias=False), BatchNorm2d, ReLU] x n, so deconv
    weights sit at indices 0, 3, 6 and BN at 1, 4, 7 like the official checkpoints;
    ``final_layer`` is a Conv2d with bias. Init as in the paper: deconv and final conv
    weights ~ N(0, 0.001), biases 0, BN weight 1.
    """

    def __init__(
        self,
        in_channels: int,
        num_joints: int,
        num_deconv_layers: int = 3,
        num_deconv_filters: int = 256,
        deconv_kernel: int = 4,
        final_conv_kernel: int = 1,
    ):
        super().__init__()
        if not 1 <= num_deconv_layers <= MAX_DECONV_LAYERS:
            raise ValueError(f"num_deconv_layers must be 1..{MAX_DECONV_LAYERS}, got {num_deconv_layers}")
        if deconv_kernel not in DECONV_CFG:
            raise ValueError(f"deconv_kernel must be one of {sorted(DECONV_CFG)}, got {deconv_kernel}")
        if final_conv_kernel < 1 or final_conv_kernel % 2 == 0:
            raise ValueError(f"final_conv_kernel must be odd and >= 1, got {final_conv_kernel}")
        if in_channels < 1 or num_joints < 1 or num_deconv_filters < 1:
            raise ValueError(
                f"in_channels, num_joints and num_deconv_filters must be >= 1, "
                f"got {in_channels}, {num_joints}, {num_deconv_filters}"
            )
        self.num_joints = num_joints
        self.num_deconv_layers = num_deconv_layers
        padding, output_padding = DECONV_CFG[deconv_kernel]
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_deconv_layers):
            layers += [
                nn.ConvTranspose2d(
                    channels,
                    num_deconv_filters,
                    kernel_size=deconv_kernel,
                    stride=2,
                    padding=padding,
                    output_padding=output_padding,
                    bias=False,
                ),
                nn.BatchNorm2d(num_deconv_filters),
                nn.ReLU(inplace=True),
            ]
            channels = num_deconv_filters
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(
            channels, num_joints, kernel_size=final_conv_kernel, padding=final_conv_kernel // 2
        )
        self.init_weights()

    @property
    def upsample_factor(self) -> int:
        return 2**self.num_deconv_layers

    def init_weights(self) -> None:
        """The paper's (and official code's) init: N(0, 0.001) weights, zero biases."""
        for m in self.deconv_layers.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.constant_(self.final_layer.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.final_layer(self.deconv_layers(x))


class SimpleBaseline(nn.Module):
    """ResNet + deconv head: (N, 3, H, W) -> heatmaps (N, K, H/32 * 2**n, W/32 * 2**n).

    With n = 3 deconv layers (the paper) heatmaps are at stride 4, e.g. 256x192 -> 64x48.
    """

    def __init__(self, backbone: ResNet, head: DeconvHead):
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def num_joints(self) -> int:
        return self.head.num_joints

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel (4 for the paper's setting)."""
        return 32 // self.head.upsample_factor

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))
