"""Experiment configuration: typed dataclasses loaded from YAML.

Unknown keys are an error naming the key, values are checked against the field types,
and ``--set a.b=value`` overrides are parsed as YAML scalars. The resolved config is
what a run saves into its work dir, so every run can be reproduced from that file alone.
Defaults are the official Simple Baselines COCO recipe (R50, 256x192, Adam 1e-3, 140 epochs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heatpose.errors import HeatposeError

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@dataclass
class ModelConfig:
    arch: str = "simple_baseline"
    backbone_depth: int = 50
    num_joints: int = 17
    num_deconv_layers: int = 3
    num_deconv_filters: int = 256
    deconv_kernel: int = 4
    final_conv_kernel: int = 1
    pretrained: str = ""  # torchvision ImageNet ResNet file for the backbone
    weights: str = ""  # full-model checkpoint (official, MMPose or heatpose layout)
    init_from: str = ""  # stage-wise growth: a CFA or SimpleBaseline checkpoint for the first stages
    # CFA (arch: cfa, heatpose/models/cfa.py); num_deconv_filters is the decoder width
    num_stages: int = 2
    fuse_last_k: int = 2  # the prediction is the mean of the last k stages' heatmaps
    aggregate: bool = True  # false: no cross-stage tensors (independent stages, the ablation)
    stage_type: str = "resnet"  # resnet | hourglass
    stage_input: str = "image"  # what stages 2.. start from: image | features (previous stride-4 map)
    hourglass_depth: int = 4  # poolings per hourglass (stage_type: hourglass)


@dataclass
class TrainSetConfig:
    """One dataset of a multi-dataset training mix (``data.train_sets``)."""

    dataset: str = "coco"  # annotation format: coco | mpii (official json list) | aic
    schema: str = "coco"  # its keypoint schema; mapped onto data.schema (keypoints.schema_mapping)
    ann: str = ""
    images: str = ""
    ratio: float = 1.0  # share of each epoch's samples drawn from this set (relative)


@dataclass
class DataConfig:
    dataset: str = "coco"
    schema: str = "coco"  # keypoint schema: coco | mpii | lip | auto (the annotation's category) | FILE.yaml
    train_ann: str = ""
    train_images: str = ""
    val_ann: str = ""
    val_images: str = ""
    input_size: list[int] = field(default_factory=lambda: [192, 256])  # width, height
    sigma: float = 2.0
    subpixel_targets: bool = False  # False: the official integer-centre Gaussian
    codec: str = "official"  # official | udp (pixel-index crops and heatmaps; flip test unshifted)
    color_order: str = "rgb"  # channel order the network was trained on
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN_RGB))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD_RGB))
    box_enlarge: float = 1.25
    scale_factor: float = 0.3
    rot_factor: float = 40.0
    rot_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.0  # 0 = the paper's recipe; HRNet/MMPose use 0.3
    half_body_min_joints: int = 8  # half body only for people with MORE than this many visible joints
    half_body_rule: str = "heatpose"  # heatpose | hrnet | mmpose: upper/lower choice (docs/training.md)
    half_body_upper_prob: float | None = None  # None: the rule's (heatpose 0.5, hrnet 0.6915, mmpose 0.7)
    half_body_min_upper: int | None = None  # None: the rule's (heatpose 3, hrnet 3, mmpose 2)
    half_body_min_lower: int | None = None  # None: the rule's (heatpose 2, hrnet 3, mmpose 3)
    category: str | int = ""  # GT keypoint category (name or id); "": the only one, else 'person'
    max_bad_image_share: float = 0.01  # training skips truncated/mis-sized images up to this share
    train_sets: list[TrainSetConfig] = field(default_factory=list)  # non-empty: mix these for training


@dataclass
class TrainConfig:
    epochs: int = 140
    batch_size: int = 32  # per process
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_steps: list[int] = field(default_factory=lambda: [90, 120])
    lr_factor: float = 0.1
    warmup_iters: int = 0  # linear warm-up from lr * warmup_ratio
    warmup_ratio: float = 0.001
    amp: str = "none"  # none | bf16 | fp16 | auto
    channels_last: bool = False
    grad_clip: float = 0.0  # max grad norm; 0 disables
    seed: int = 0
    num_workers: int = 2
    val_interval: int = 1  # epochs between validations
    save_metric: str = "AP"  # validation metric that picks the best checkpoint
    stage_weights: list[float] = field(default_factory=list)  # per-stage loss weights; [] = all 1
    val_per_stage: bool = True  # multi-stage models: also score every stage alone at validation


@dataclass
class TestConfig:
    batch_size: int = 32
    flip: bool = True
    shift_heatmap: bool = True  # shift flipped-back heatmaps right (official)
    flip_shift: str = "official"  # official: 1 heatmap px | exact: (stride - 1) / stride px (UDP)
    decode: str = "argmax"  # argmax (+ quarter step) | dark
    boxes: str = "gt"  # "gt" or a COCO detection-results json
    det_score_thr: float = 0.0
    oks_nms_thr: float = 0.9
    rescore_thr: float = 0.2


@dataclass
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(width, height) of the output heatmap: input / 32 * 2**num_deconv_layers."""
        factor = 2**self.model.num_deconv_layers
        w, h = self.data.input_size
        return (w // 32 * factor, h // 32 * factor)


_CHOICES: dict[str, tuple[str, ...]] = {
    "model.arch": ("simple_baseline", "cfa"),
    "model.stage_type": ("resnet", "hourglass"),
    "model.stage_input": ("image", "features"),
    "data.dataset": ("coco", "mpii", "lip"),
    "data.color_order": ("rgb", "bgr"),
    "data.half_body_rule": ("heatpose", "hrnet", "mmpose"),
    "data.codec": ("official", "udp"),
    "train.amp": ("none", "bf16", "fp16", "auto"),
    "test.decode": ("argmax", "dark"),
    "test.flip_shift": ("official", "exact"),
}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except HeatposeError:
                continue
        raise HeatposeError(f"config key {key!r}: {value!r} is not a {tp}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{key}.")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise HeatposeError(f"config key {key!r}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is type(None):
        if value is None:
            return None
        raise HeatposeError(f"config key {key!r}: expected null, got {value!r}")
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise HeatposeError(f"config key {key!r}: {value!r} is not a finite number")
        return float(value)
    if tp is str and value is None:
        return ""
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise HeatposeError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise HeatposeError(f"config section {prefix.rstrip('.') or 'top level'!r} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise HeatposeError(
            f"unknown config key {prefix + unknown[0]!r} (known in this section: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value or {}, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, prefix + name)
            choices = _CHOICES.get(prefix + name)
            if choices and kwargs[name] not in choices:
                raise HeatposeError(
                    f"config key {prefix + name!r}: {kwargs[name]!r} is not one of {', '.join(choices)}"
                )
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise HeatposeError(f"override {dotted!r}: {part!r} is not a section")
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=1e-4"`` -> ``("train.lr", 0.0001)``; the value is read as a YAML scalar or list."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise HeatposeError(f"override {text!r} must look like section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML reads "1e-4" as a string; give numbers their numeric type.
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if any(c in value for c in ".eE") else int(value)
    return key.strip(), value


def config_from_dict(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    tree = dict(data or {})
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    cfg = _build(ExperimentConfig, tree, "")
    validate(cfg)
    return cfg


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    Plain YAML loading keeps the last of two equal keys, so a second ``train:`` section would
    silently replace the first.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            with contextlib.suppress(TypeError):  # unhashable keys: let SafeLoader report them
                if key in seen:
                    raise HeatposeError(
                        f"duplicate key {key!r} at line {line} (first given at line {seen[key]})"
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file strictly (duplicate keys are an error); errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HeatposeError(f"{path}: cannot read config file: {err}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no python tags
    except HeatposeError as err:
        raise HeatposeError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise HeatposeError(f"{path}: not valid YAML{where}") from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a YAML experiment file and apply ``section.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise HeatposeError(f"config file not found: {path}")
    data = load_yaml(path)
    if data is None:
        raise HeatposeError(f"{path}: config file is empty (expected model/data/train/test sections)")
    if not isinstance(data, dict):
        raise HeatposeError(f"{path}: top level must be a mapping of sections")
    try:
        return config_from_dict(data, overrides)
    except HeatposeError as err:
        raise HeatposeError(f"{path}: {err}") from None


def validate(cfg: ExperimentConfig) -> None:
    """Cross-field checks that a type annotation cannot express."""
    w, h = cfg.data.input_size if len(cfg.data.input_size) == 2 else (0, 0)
    if len(cfg.data.input_size) != 2 or w % 32 or h % 32 or w <= 0 or h <= 0:
        raise HeatposeError(
            f"config key 'data.input_size': {cfg.data.input_size} must be [width, height], multiples of 32"
        )
    if len(cfg.data.mean) != 3 or len(cfg.data.std) != 3 or min(cfg.data.std) <= 0:
        raise HeatposeError("config keys 'data.mean'/'data.std' need 3 values each, std > 0")
    from heatpose.keypoints import SCHEMAS

    schema = cfg.data.schema
    if schema not in (*SCHEMAS, "auto") and not schema.endswith((".yaml", ".yml", ".json")):
        raise HeatposeError(
            f"config key 'data.schema': {schema!r} is not one of {', '.join(SCHEMAS)}, auto "
            "or a schema file (.yaml, .yml, .json)"
        )
    if cfg.data.sigma <= 0:
        raise HeatposeError(f"config key 'data.sigma': {cfg.data.sigma} must be > 0")
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        raise HeatposeError("config keys 'train.epochs' and 'train.batch_size' must be >= 1")
    _check_ranges(cfg)
    _validate_multi_stage(cfg)


def _validate_multi_stage(cfg: ExperimentConfig) -> None:
    """CFA loss weights and the multi-dataset list."""
    m = cfg.model
    if m.arch == "cfa" and m.stage_type == "hourglass" and m.hourglass_depth >= 1:
        unit = 4 * 2**m.hourglass_depth
        if any(side % unit for side in cfg.data.input_size):
            raise HeatposeError(
                f"config key 'data.input_size': {cfg.data.input_size} must be multiples of {unit} "
                f"for hourglass stages of depth {m.hourglass_depth} (4 * 2**depth)"
            )
    weights = cfg.train.stage_weights
    outputs = cfg.model.num_stages if cfg.model.arch == "cfa" else 1
    if weights and (len(weights) != outputs or min(weights) < 0 or sum(weights) <= 0):
        raise HeatposeError(
            f"config key 'train.stage_weights': {weights} must be {outputs} value(s) >= 0 "
            "(one per stage), not all 0"
        )
    for i, ts in enumerate(cfg.data.train_sets):
        where = f"config key 'data.train_sets[{i}]"
        if ts.dataset not in ("coco", "mpii", "aic"):
            raise HeatposeError(f"{where}.dataset': {ts.dataset!r} is not one of coco, mpii, aic")
        if not ts.ratio > 0:
            raise HeatposeError(f"{where}.ratio': {ts.ratio} must be > 0")
        if not ts.ann or not ts.images:
            raise HeatposeError(f"{where}': 'ann' and 'images' must both be set")


# (key, lowest, highest, lowest allowed?, highest allowed?): None = unbounded on that side.
_RANGES: tuple[tuple[str, float | None, float | None, bool, bool], ...] = (
    ("train.lr", 0, None, False, True),
    ("train.lr_factor", 0, 1, False, True),
    ("train.weight_decay", 0, None, True, True),
    ("train.warmup_iters", 0, None, True, True),
    ("train.warmup_ratio", 0, 1, True, True),
    ("train.grad_clip", 0, None, True, True),
    ("train.seed", 0, 2**32, True, False),
    ("train.num_workers", 0, None, True, True),
    ("train.val_interval", 0, None, True, True),
    ("train.batch_size", 1, None, True, True),
    ("test.batch_size", 1, None, True, True),
    ("data.box_enlarge", 0, None, False, True),
    ("data.scale_factor", 0, None, True, True),
    ("data.rot_factor", 0, None, True, True),
    ("data.rot_prob", 0, 1, True, True),
    ("data.half_body_prob", 0, 1, True, True),
    ("data.half_body_min_joints", 0, None, True, True),
    ("data.half_body_upper_prob", 0, 1, True, True),
    ("data.half_body_min_upper", 0, None, True, True),
    ("data.half_body_min_lower", 0, None, True, True),
    ("data.max_bad_image_share", 0, 1, True, True),
    ("test.det_score_thr", 0, 1, True, True),
    ("test.oks_nms_thr", 0, 1, True, True),
    ("test.rescore_thr", 0, 1, True, True),
)


def _check_ranges(cfg: ExperimentConfig) -> None:
    """Values, not just types: learning rates, probabilities, factors, sizes and seeds."""
    for key, low, high, low_ok, high_ok in _RANGES:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name, None)
        if value is None:  # a key this version of the config does not have
            continue
        too_low = low is not None and (value < low or (value == low and not low_ok))
        too_high = high is not None and (value > high or (value == high and not high_ok))
        if too_low or too_high:
            lo = "" if low is None else f"{low:g} {'<=' if low_ok else '<'} "
            hi = "" if high is None else f" {'<=' if high_ok else '<'} {high:g}"
            raise HeatposeError(f"config key {key!r}: {value!r} is out of range (need {lo}{name}{hi})")
    bad_steps = [s for s in cfg.train.lr_steps if s < 0]
    if bad_steps:
        raise HeatposeError(f"config key 'train.lr_steps': {bad_steps[0]} is negative (epochs count from 0)")


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
