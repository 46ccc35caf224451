"""ONNX export with the preprocessing metadata inside, a parity check, and the runtime wrapper.

``heatpose export --checkpoint CKPT --out model.onnx`` folds BatchNorm into the convolutions,
exports ``input`` (batch, 3, H, W) -> ``heatmaps`` (batch, K, h, w) with a dynamic batch axis,
stores in the model's ``metadata_props`` everything needed to feed it (schema, joint names,
flip index, input/heatmap size, colour order, mean/std, the full heatpose config as json),
writes the file atomically, and compares it with PyTorch on the same crops.
:class:`OnnxRunner` runs such a file through onnxruntime as a drop-in for the torch model in
:mod:`heatpose.inference`.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from heatpose.codec import HeatmapCodec
from heatpose.config import ExperimentConfig, config_from_dict, config_to_dict
from heatpose.errors import HeatposeError
from heatpose.fastpath import fold_batchnorm
from heatpose.io import atomic_write_bytes
from heatpose.keypoints import KeypointSchema
from heatpose.schema_io import schema_for_config, schema_from_dict, schema_to_dict

INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 11, 21  # opsets checked with the TorchScript exporter of torch 2.13
CONFIG_KEY = "heatpose_config"
SCHEMA_KEY = "keypoint_schema"


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise HeatposeError("ONNX export needs the 'onnx' package: pip install 'heatpose[export]'") from None
    return onnx


def onnx_metadata(cfg: ExperimentConfig, schema: KeypointSchema | None = None) -> dict[str, str]:
    """String metadata props: what a consumer of the file needs to prepare its input."""
    schema = schema or schema_for_config(cfg)
    return {
        "schema": schema.name,
        "joint_names": json.dumps(list(schema.joint_names)),
        "flip_index": json.dumps(schema.flip_index()),
        "skeleton": json.dumps([list(e) for e in schema.skeleton]),
        "input_size": json.dumps(list(cfg.data.input_size)),
        "heatmap_size": json.dumps(list(cfg.heatmap_size)),
        "color_order": cfg.data.color_order,
        "mean": json.dumps(list(cfg.data.mean)),
        "std": json.dumps(list(cfg.data.std)),
        "input_layout": "NCHW float32, (pixel / 255 - mean) / std in color_order",
        CONFIG_KEY: json.dumps(config_to_dict(cfg)),
        SCHEMA_KEY: json.dumps(schema_to_dict(schema)),
    }


def export_onnx(
    model: nn.Module,
    cfg: ExperimentConfig,
    out: str | Path,
    input_size: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
    schema: KeypointSchema | None = None,
) -> Path:
    """Export ``model`` (BN folded) to ``out`` atomically; ``input_size`` (W, H) defaults to the config's."""
    return atomic_write_bytes(out, onnx_bytes(model, cfg, input_size, opset, schema))


def onnx_bytes(
    model: nn.Module,
    cfg: ExperimentConfig,
    input_size: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
    schema: KeypointSchema | None = None,
) -> bytes:
    """The serialised ONNX model of :func:`export_onnx`, checked by ``onnx.checker``."""
    onnx = _require_onnx()
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise HeatposeError(f"--opset {opset}: use an ONNX opset from {MIN_OPSET} to {MAX_OPSET}")
    w, h = input_size or tuple(cfg.data.input_size)
    if w % 32 or h % 32 or w <= 0 or h <= 0:
        raise HeatposeError(f"--input-size {w} {h}: width and height must be positive multiples of 32")
    if input_size is not None and list(input_size) != list(cfg.data.input_size):
        cfg = config_from_dict(config_to_dict(cfg), [f"data.input_size=[{w}, {h}]"])
    folded = fold_batchnorm(model).cpu().float()  # a cascade: its one output is the fused prediction
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            folded,
            (torch.zeros(1, 3, h, w),),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in onnx_metadata(cfg, schema).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


class OnnxRunner:
    """An ONNX pose model as a callable ``(N, 3, H, W) tensor -> (N, K, h, w) tensor``.

    ``metadata`` holds the file's metadata props; :meth:`config` rebuilds the heatpose config.
    """

    def __init__(self, path_or_bytes: str | Path | bytes, num_threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise HeatposeError(
                "the onnx backend needs onnxruntime: pip install 'heatpose[export]'"
            ) from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = num_threads
        source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
        if not isinstance(path_or_bytes, bytes) and not Path(path_or_bytes).is_file():
            raise HeatposeError(f"ONNX model not found: {path_or_bytes}")
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise HeatposeError(f"cannot load ONNX model {path_or_bytes!s:.80}: {first}") from None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_name = self.session.get_inputs()[0].name

    def config(self) -> ExperimentConfig:
        if CONFIG_KEY not in self.metadata:
            raise HeatposeError("this ONNX file has no heatpose metadata; export it with `heatpose export`")
        return config_from_dict(json.loads(self.metadata[CONFIG_KEY]))

    def schema(self) -> KeypointSchema | None:
        """The keypoint schema saved at export (None for files exported before it was saved)."""
        if SCHEMA_KEY not in self.metadata:
            return None
        return schema_from_dict(json.loads(self.metadata[SCHEMA_KEY]), where=f"ONNX metadata {SCHEMA_KEY}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().float().cpu().contiguous().numpy()
        (heatmaps,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(heatmaps)


@dataclass
class Parity:
    """Largest differences between two backends on the same crops."""

    max_heatmap_diff: float
    max_keypoint_diff_px: float  # in input-crop pixels, after argmax + quarter-step decoding
    num_crops: int

    def describe(self) -> str:
        return (
            f"parity on {self.num_crops} crops: max heatmap difference {self.max_heatmap_diff:.3g}, "
            f"max keypoint difference {self.max_keypoint_diff_px:.3g} px"
        )


@torch.inference_mode()
def parity_check(
    reference: nn.Module, other: Any, codec: HeatmapCodec, num_crops: int = 4, seed: int = 0
) -> Parity:
    """Compare ``other`` with ``reference`` (fp32 torch) on smooth random crops.

    Crops are low-frequency noise (upsampled), closer to images than white noise, so the
    heatmap peaks are well defined. Keypoint differences are in input-crop pixels.
    """
    w, h = codec.input_size
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(num_crops, 3, max(1, h // 16), max(1, w // 16), generator=gen)
    crops = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    reference.eval()
    a = reference(crops)
    b = other(crops)
    if isinstance(a, (list, tuple)):
        a = reference.fuse(a) if hasattr(reference, "fuse") else a[-1]
    a = a.float()
    b = (b[-1] if isinstance(b, (list, tuple)) else b).float()
    ka, _ = codec.decode(a.numpy())
    kb, _ = codec.decode(b.numpy())
    stride = codec.stride
    return Parity(
        max_heatmap_diff=float((a - b).abs().max()),
        max_keypoint_diff_px=float(np.abs((ka - kb) * stride).max()),
        num_crops=num_crops,
    )


def export_command(
    checkpoint: str,
    out: str,
    config: str | None = None,
    overrides: tuple[str, ...] = (),
    input_size: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
) -> int:
    """``heatpose export``: write the ONNX file, then print its parity with PyTorch."""
    from heatpose.data.dataset import build_codec
    from heatpose.predictor import load_network

    extra = () if input_size is None else (f"data.input_size=[{input_size[0]}, {input_size[1]}]",)
    model, cfg, schema = load_network(checkpoint, config, (*overrides, *extra))
    path = export_onnx(model, cfg, out, opset=opset, schema=schema)
    runner = OnnxRunner(path)
    parity = parity_check(model, runner, build_codec(cfg))
    w, h = cfg.data.input_size
    order = cfg.data.color_order.upper()
    print(f"wrote {path}: input (batch, 3, {h}, {w}) {order}, opset {opset}, BatchNorm folded")
    joints = f"{schema.name} ({schema.num_joints} joints)"
    print(f"metadata: schema {joints}, mean {cfg.data.mean}, std {cfg.data.std}")
    print(parity.describe())
    return 0
