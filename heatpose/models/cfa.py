"""Cascade Feature Aggregation (Su, Ye, Zhang, Dai, Sheng, arXiv 1902.07837, 2019).

A cascade of S encoder-decoder stages. Every stage predicts K heatmaps at stride 4 and is
supervised; the prediction is the average of the last ``fuse_last_k`` stages
(:func:`fuse_stages`). Between consecutive stages the previous stage's features are
*aggregated* into the next one.

Stage types (``stage_type``):

* ``"resnet"`` (the paper's): a ResNet-``backbone_depth`` encoder (torchvision parameter
  names, so stage 1 loads ImageNet files with ``load_backbone_weights``) giving C2..C5 at
  strides 4, 8, 16, 32; a decoder of three kernel-4 stride-2 deconvolutions (BN, ReLU), each
  followed by a skip connection from the encoder level of the same resolution (1x1 conv +
  BN, added before the ReLU); a 1x1 conv to K heatmaps. Names follow Simple Baselines
  (``backbone.*``, ``head.deconv_layers.*``, ``head.final_layer.*``) so a SimpleBaseline
  checkpoint can seed stage 1 (:mod:`heatpose.models.growth`).
* ``"hourglass"``: one Newell et al. (2016) hourglass per stage (:mod:`heatpose.models.hourglass`)
  of ``hourglass_depth`` poolings at ``num_filters`` channels, levels at strides 4 .. 4 * 2**depth.

Aggregation from stage s into stage s+1 (``aggregate=True``), our reading of the paper
(the paper fixes "low-, middle- and high-level features added element-wise", not the tensors;
MSPN's cross-stage aggregation is the close published design):

* at every resolution level both stages have (1/4 .. 1/32 for ResNet stages), the previous
  stage's encoder feature and, where it exists, its decoder feature at that level each go
  through a 1x1 conv + BN and are added to the next stage's *encoder* feature of that level
  (ResNet: the output of ``layer1`` .. ``layer4``; hourglass: the feature on the way down),
  so they flow on through the rest of the next stage;
* the previous stage's heatmaps go through a 1x1 conv + BN and are added at the next stage's
  input (the stride-4 map that enters ``layer1`` / the hourglass).

What later stages see (``stage_input``, a config value for the ablation):

* ``"image"`` (default): every stage has its own stem on the image (ResNet ``conv1``-``maxpool``
  or the hourglass stem); the previous stage reaches it only through the aggregation above.
  This keeps every stage a full ImageNet-shaped ResNet (any stage can be initialised from
  ImageNet or from a stage-1 checkpoint) and is the only choice compatible with
  ``aggregate=False``.
* ``"features"``: stages 2.. have no stem; their input is the previous stage's last
  stride-4 decoder feature through a 1x1 conv + BN (plus the heatmap embedding), as in
  MSPN and Newell's stacking. Cheaper (no second stem), but only with ``aggregate=True``.

``aggregate=False`` removes every cross-stage tensor: the stages are independent networks
on the same image whose heatmaps are supervised separately and averaged (the ablation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from heatpose.models.hourglass import Hourglass, HourglassHead, HourglassStem
from heatpose.models.resnet import ResNet
from heatpose.models.simple_baseline import DeconvHead

STAGE_TYPES: tuple[str, ...] = ("resnet", "hourglass")
STAGE_INPUTS: tuple[str, ...] = ("image", "features")
CFA_STRIDE = 4  # heatmaps are at 1/4 of the input for both stage types


def fuse_stages(heatmaps: Sequence[Tensor], k: int) -> Tensor:
    """Average of the last ``k`` stages' heatmaps: list of S x (N, K, h, w) -> (N, K, h, w)."""
    if not 1 <= k <= len(heatmaps):
        raise ValueError(f"cannot fuse the last {k} of {len(heatmaps)} stages")
    return torch.stack(list(heatmaps[-k:])).mean(0)


@dataclass
class StageOutput:
    """What one stage hands to the next: heatmaps (N, K, h, w) at stride 4; ``encoder[i]`` and
    ``decoder[i]`` the features at stride 4 * 2**i (``decoder[i]`` None where the stage has
    none); ``features`` the stride-4 map the heatmaps were predicted from."""

    heatmaps: Tensor
    encoder: list[Tensor]
    decoder: list[Tensor | None]
    features: Tensor


def _proj(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 conv + BN: the one projection used for every cross-stage connection."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))


class SkipDeconvHead(DeconvHead):
    """Simple Baselines' 3-layer deconv head plus 1x1 conv + BN skips from C4, C3, C2.

    ``forward([C2, C3, C4, C5])`` -> (decoder features [D4, D8, D16] with ``num_filters``
    channels at strides 4, 8, 16; heatmaps (N, K, H/4, W/4)). Each skip is added after the
    deconv's BN and before its ReLU. Parameter names extend :class:`DeconvHead`'s, so a
    SimpleBaseline head loads into it with only ``skip_layers`` new.
    """

    def __init__(
        self, encoder_channels: Sequence[int], num_joints: int, num_filters: int = 256, deconv_kernel: int = 4
    ):
        super().__init__(encoder_channels[-1], num_joints, 3, num_filters, deconv_kernel, 1)
        # from the coarsest skip (C4, stride 16) to the finest (C2, stride 4)
        self.skip_layers = nn.ModuleList(_proj(c, num_filters) for c in reversed(encoder_channels[:3]))

    def forward(self, encoder: list[Tensor]) -> tuple[list[Tensor], Tensor]:  # type: ignore[override]
        x = encoder[3]
        decoder: list[Tensor] = []
        for i, skip in enumerate(self.skip_layers):
            deconv, bn, relu = self.deconv_layers[3 * i : 3 * i + 3]
            x = relu(bn(deconv(x)) + skip(encoder[2 - i]))
            decoder.insert(0, x)
        return decoder, self.final_layer(x)


class ResNetStage(nn.Module):
    """One ResNet encoder-decoder stage: stride-4 input (N, 64, H/4, W/4) -> :class:`StageOutput`.

    ``with_stem=False`` drops ``conv1``/``bn1`` (stages fed by the previous stage's features).
    The ResNet's ``layer1``..``layer4`` run one by one here rather than through
    ``ResNet.forward_features``, because the aggregation adds into each level between them.
    """

    def __init__(
        self,
        depth: int,
        num_joints: int,
        num_filters: int = 256,
        deconv_kernel: int = 4,
        with_stem: bool = True,
    ):
        super().__init__()
        self.backbone = ResNet(depth)
        if not with_stem:
            self.backbone.conv1 = None  # type: ignore[assignment]
            self.backbone.bn1 = None  # type: ignore[assignment]
        self.head = SkipDeconvHead(self.backbone.feature_channels, num_joints, num_filters, deconv_kernel)
        self.input_channels = 64
        self.encoder_channels: tuple[int, ...] = self.backbone.feature_channels
        self.decoder_channels: tuple[int | None, ...] = (num_filters, num_filters, num_filters, None)
        self.feature_channels = num_filters

    @property
    def has_stem(self) -> bool:
        return self.backbone.conv1 is not None

    def stem(self, image: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, 64, H/4, W/4): conv1, bn1, relu, maxpool."""
        b = self.backbone
        return b.maxpool(b.relu(b.bn1(b.conv1(image))))

    def forward(self, x: Tensor, additions: Sequence[Tensor | None] | None = None) -> StageOutput:
        b = self.backbone
        encoder: list[Tensor] = []
        for i, layer in enumerate((b.layer1, b.layer2, b.layer3, b.layer4)):
            x = layer(x)
            if additions is not None and additions[i] is not None:
                x = x + additions[i]
            encoder.append(x)
        decoder, heatmaps = self.head(encoder)
        return StageOutput(heatmaps, encoder, [*decoder, None], decoder[0])


class HourglassStage(nn.Module):
    """One hourglass stage: stride-4 input (N, C, H/4, W/4) -> :class:`StageOutput`."""

    def __init__(self, num_joints: int, channels: int = 256, depth: int = 4, with_stem: bool = True):
        super().__init__()
        self.stem_layers = HourglassStem(channels) if with_stem else None
        self.hourglass = Hourglass(channels, depth)
        self.head = HourglassHead(channels, num_joints)
        self.input_channels = channels
        self.encoder_channels: tuple[int, ...] = (channels,) * (depth + 1)
        self.decoder_channels: tuple[int | None, ...] = (channels,) * (depth + 1)
        self.feature_channels = channels

    @property
    def has_stem(self) -> bool:
        return self.stem_layers is not None

    def stem(self, image: Tensor) -> Tensor:
        assert self.stem_layers is not None
        return self.stem_layers(image)

    def forward(self, x: Tensor, additions: Sequence[Tensor | None] | None = None) -> StageOutput:
        depth = self.hourglass.depth
        if x.shape[-1] % 2**depth or x.shape[-2] % 2**depth:
            raise ValueError(
                f"hourglass of depth {depth} needs input sides divisible by {4 * 2**depth}, "
                f"got a stride-4 map of {tuple(x.shape[-2:])}"
            )
        out, down, up = self.hourglass(x, list(additions) if additions is not None else None)
        features, heatmaps = self.head(out)
        return StageOutput(heatmaps, down, list(up), features)


Stage = ResNetStage | HourglassStage


class CrossStage(nn.Module):
    """Aggregation from one stage into the next (see the module docstring).

    ``forward(prev)`` -> (term added at the next stage's stride-4 input, per-level additions
    to its encoder features). Keys read ``encoder.stride8.0.weight``, ``decoder.stride4.1.bias`` ...
    """

    def __init__(self, prev: Stage, nxt: Stage, num_joints: int, feed_features: bool):
        super().__init__()
        self.num_levels = min(len(prev.encoder_channels), len(nxt.encoder_channels))
        self.encoder = nn.ModuleDict()
        self.decoder = nn.ModuleDict()
        for i in range(self.num_levels):
            name = f"stride{CFA_STRIDE * 2**i}"
            self.encoder[name] = _proj(prev.encoder_channels[i], nxt.encoder_channels[i])
            dec = prev.decoder_channels[i]
            if dec is not None:
                self.decoder[name] = _proj(dec, nxt.encoder_channels[i])
        self.heatmap_embed = _proj(num_joints, nxt.input_channels)
        self.input_proj = _proj(prev.feature_channels, nxt.input_channels) if feed_features else None

    def forward(self, prev: StageOutput) -> tuple[Tensor, list[Tensor | None]]:
        term = self.heatmap_embed(prev.heatmaps)
        if self.input_proj is not None:
            term = term + self.input_proj(prev.features)
        additions: list[Tensor | None] = []
        for i in range(self.num_levels):
            name = f"stride{CFA_STRIDE * 2**i}"
            add = self.encoder[name](prev.encoder[i])
            dec = prev.decoder[i]
            if name in self.decoder and dec is not None:
                add = add + self.decoder[name](dec)
            additions.append(add)
        return term, additions


class CFA(nn.Module):
    """Cascade of ``num_stages`` stages: (N, 3, H, W) -> list of S heatmaps (N, K, H/4, W/4).

    ``forward`` returns every stage's heatmaps (all supervised); :meth:`fuse` (or
    :func:`fuse_stages`) averages the last ``fuse_last_k`` into the prediction. H and W must
    be multiples of 32 (ResNet stages) or of 4 * 2**hourglass_depth (hourglass stages).
    Parameters: ``stages.{s}.*`` per stage, ``aggregations.{s}.*`` from stage s into s+1
    (empty with ``aggregate=False``).
    """

    def __init__(
        self,
        num_stages: int,
        backbone_depth: int,
        num_joints: int,
        fuse_last_k: int = 2,
        aggregate: bool = True,
        stage_type: str = "resnet",
        stage_input: str = "image",
        num_filters: int = 256,
        deconv_kernel: int = 4,
        hourglass_depth: int = 4,
    ):
        super().__init__()
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        if not 1 <= fuse_last_k <= num_stages:
            raise ValueError(f"fuse_last_k must be 1..num_stages ({num_stages}), got {fuse_last_k}")
        if stage_type not in STAGE_TYPES:
            raise ValueError(f"stage_type must be one of {STAGE_TYPES}, got {stage_type!r}")
        if stage_input not in STAGE_INPUTS:
            raise ValueError(f"stage_input must be one of {STAGE_INPUTS}, got {stage_input!r}")
        if stage_input == "features" and not aggregate and num_stages > 1:
            raise ValueError("stage_input='features' links the stages, so it needs aggregate=True")
        if num_joints < 1 or num_filters < 1:
            raise ValueError(f"num_joints and num_filters must be >= 1, got {num_joints}, {num_filters}")
        self.num_stages = num_stages
        self.fuse_last_k = fuse_last_k
        self.aggregate = aggregate
        self.stage_type = stage_type
        self.stage_input = stage_input
        self._num_joints = num_joints
        stages: list[Stage] = []
        for s in range(num_stages):
            with_stem = s == 0 or stage_input == "image"
            if stage_type == "resnet":
                stages.append(ResNetStage(backbone_depth, num_joints, num_filters, deconv_kernel, with_stem))
            else:
                stages.append(HourglassStage(num_joints, num_filters, hourglass_depth, with_stem))
        self.stages = nn.ModuleList(stages)
        self.aggregations = nn.ModuleList(
            CrossStage(stages[s], stages[s + 1], num_joints, feed_features=stage_input == "features")
            for s in range(num_stages - 1)
            if aggregate
        )

    @property
    def num_joints(self) -> int:
        return self._num_joints

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return CFA_STRIDE

    def fuse(self, heatmaps: Sequence[Tensor]) -> Tensor:
        """The model's prediction from its per-stage outputs: mean of the last ``fuse_last_k``."""
        return fuse_stages(heatmaps, self.fuse_last_k)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs: list[StageOutput] = []
        for s, stage in enumerate(self.stages):
            stage_in = stage.stem(x) if stage.has_stem else None
            additions = None
            if s > 0 and self.aggregate:
                term, additions = self.aggregations[s - 1](outputs[-1])
                stage_in = term if stage_in is None else stage_in + term
            assert stage_in is not None  # guaranteed by the constructor's checks
            outputs.append(stage(stage_in, additions))
        return [out.heatmaps for out in outputs]


class StageView(nn.Module):
    """One stage of a cascade as a model of its own (for per-stage validation scores):
    ``forward(x)`` is ``cascade(x)[stage]``. Shares the cascade's parameters."""

    def __init__(self, cascade: CFA, stage: int):
        super().__init__()
        if not 0 <= stage < cascade.num_stages:
            raise ValueError(f"stage {stage} out of range for {cascade.num_stages} stages")
        self.cascade = cascade
        self.stage = stage
        self.train(cascade.training)  # a new Module starts in training mode; keep the cascade's

    @property
    def num_joints(self) -> int:
        return self.cascade.num_joints

    def forward(self, x: Tensor) -> Tensor:
        return self.cascade(x)[self.stage]


class FusedOutput(nn.Module):
    """A cascade as a one-output model: ``forward(x)`` is ``cascade.fuse(cascade(x))``, the
    (N, K, H/4, W/4) prediction. For exporters and runtimes that expect a single tensor."""

    def __init__(self, cascade: CFA):
        super().__init__()
        self.cascade = cascade
        self.train(cascade.training)  # a new Module starts in training mode; keep the cascade's

    @property
    def num_joints(self) -> int:
        return self.cascade.num_joints

    def forward(self, x: Tensor) -> Tensor:
        return self.cascade.fuse(self.cascade(x))
