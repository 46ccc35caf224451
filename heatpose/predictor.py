"""``PoseEstimator``: poses of the people in a photo, from Python, in three lines.

    from heatpose.predictor import PoseEstimator
    est = PoseEstimator.from_checkpoint("best.pth")              # a heatpose checkpoint
    people = est.predict("photo.jpg")                             # boxes from the HOG detector

Each person is a :class:`PersonPose`: keypoints (K, 3) ``x, y, score`` in pixels of the
upright image, the person box ``x, y, w, h``, its score and where it came from.

Which preprocessing a checkpoint needs comes with it: a heatpose checkpoint carries its config
(architecture, schema, input size, colour order, mean/std); an ONNX file made by
``heatpose export`` carries the same in its metadata. A **foreign** checkpoint (the official
Simple Baselines release ``pose_resnet_50_256x192.pth.tar``, an MMPose ``.pth``) carries only
weights, so ``config=`` must name the recipe config it was trained with; the official release
was trained on **BGR** images normalised with RGB mean/std, so its config needs
``data.color_order: bgr`` (docs/predict.md lists the pairings).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heatpose import allocator
from heatpose.codec import HeatmapCodec
from heatpose.config import ExperimentConfig, config_from_dict, config_to_dict, load_config
from heatpose.data.dataset import build_codec
from heatpose.data.transforms import box_to_center_scale
from heatpose.detection import (
    HOG,
    WHOLE_IMAGE,
    DetectionFile,
    HogPersonDetector,
    PersonBoxes,
    as_person_boxes,
    whole_image_box,
)
from heatpose.engine.checkpoint import meta_mismatches
from heatpose.errors import HeatposeError
from heatpose.evaluation.coco import rescore
from heatpose.fastpath import optimize_for_inference
from heatpose.inference import InferenceSettings, configured_flip_shift, estimate_poses
from heatpose.keypoints import KeypointSchema
from heatpose.media import read_photo, to_color_order
from heatpose.models import build_model, load_model_weights
from heatpose.models.checkpoint import migrate_state_dict, read_checkpoint
from heatpose.schema_io import resolve_num_joints, schema_for_config, schema_from_checkpoint

BACKENDS = ("torch", "onnx")
PRECISIONS = ("fp32", "bf16")
FOREIGN_HINT = (
    "pass config= (CLI: --config) the recipe it was trained with, e.g. "
    "configs/coco/res50_256x192_d256x3_adam_lr1e-3.yaml; the official Simple Baselines release "
    "files were trained on BGR input, so add data.color_order=bgr (see docs/predict.md)"
)


@dataclass
class PersonPose:
    """One person: ``keypoints`` (K, 3) x, y, score in image pixels; ``box`` (4,) x, y, w, h.

    ``score`` is the official pose score: box score x mean of the keypoint scores above 0.2.
    """

    keypoints: np.ndarray
    box: np.ndarray
    box_score: float
    box_source: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "keypoints": [round(float(v), 3) for v in self.keypoints.reshape(-1)],
            "score": float(self.score),
            "box": [round(float(v), 2) for v in self.box],
            "box_score": float(self.box_score),
            "box_source": self.box_source,
        }


@dataclass
class PersonHeatmaps:
    """The heatmaps behind a list of poses: ``heatmaps`` (N, K, h, w) float32 and each crop's
    ``centers``/``scales`` (N, 2) (official box units), what ``heatmap_vis.overlay_heatmaps`` needs."""

    heatmaps: np.ndarray
    centers: np.ndarray
    scales: np.ndarray
    udp: bool = False


# --------------------------------------------------------------------------- configs


def _config_from_meta(meta: dict[str, Any], obj: Any) -> ExperimentConfig:
    """A config from a checkpoint's ``meta`` when it has no full ``config`` (older heatpose files).

    ``meta`` has no head shape, so the deconv layers, filters and kernels are read off the
    weights (``head.deconv_layers.{0,3,6}.weight`` is (in, filters, k, k)).
    """
    state = migrate_state_dict(obj)
    deconvs = [k for k in state if k.startswith("head.deconv_layers.") and k.endswith(".weight")]
    deconvs = [k for k in deconvs if state[k].ndim == 4]
    model: dict[str, Any] = {
        "arch": meta.get("arch", "simple_baseline"),
        "backbone_depth": meta.get("backbone_depth", 50),
        "num_joints": meta.get("num_joints", 17),
    }
    if deconvs:
        first = state[deconvs[0]]
        model.update(
            num_deconv_layers=len(deconvs), num_deconv_filters=first.shape[1], deconv_kernel=first.shape[2]
        )
    final = state.get("head.final_layer.weight")
    if final is not None and final.ndim == 4:
        model["final_conv_kernel"] = final.shape[2]
    data = {k: meta[k] for k in ("schema", "input_size", "color_order", "mean", "std", "sigma") if k in meta}
    return config_from_dict({"model": model, "data": data})


def checkpoint_config(
    obj: Any, path: str | Path, config: str | Path | ExperimentConfig | None, overrides: tuple[str, ...] = ()
) -> ExperimentConfig:
    """The config that says how to build and feed the network of checkpoint ``obj``.

    ``config`` wins when given (a warning names every metadata entry of a heatpose checkpoint it
    contradicts); else the checkpoint's own config or ``meta``; a foreign checkpoint without
    ``config`` is an error that says what to pass.
    """
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if config is not None:
        cfg = config if isinstance(config, ExperimentConfig) else load_config(config, overrides)
        if isinstance(meta, dict):
            for problem in meta_mismatches(meta, cfg):
                print(f"heatpose: warning: {path}: checkpoint metadata differs from the config: {problem}",
                      file=sys.stderr)  # fmt: skip
        return cfg
    if isinstance(obj, dict) and isinstance(obj.get("config"), dict):
        return config_from_dict(obj["config"], overrides)
    if isinstance(meta, dict) and "input_size" in meta and "color_order" in meta:
        return config_from_dict(config_to_dict(_config_from_meta(meta, obj)), overrides)
    raise HeatposeError(f"{path} carries no heatpose metadata (a foreign checkpoint): {FOREIGN_HINT}")


def load_network(
    path: str | Path, config: str | Path | ExperimentConfig | None = None, overrides: tuple[str, ...] = ()
) -> tuple[torch.nn.Module, ExperimentConfig, KeypointSchema]:
    """Network (eval mode, weights loaded), its config and keypoint schema from any checkpoint.

    The schema saved in a heatpose checkpoint wins (it decides the number of heatmaps), as in
    ``heatpose eval``; otherwise the config's ``data.schema``.
    """
    return network_from_checkpoint(read_checkpoint(path), path, config, overrides)


def network_from_checkpoint(
    obj: Any,
    path: str | Path,
    config: str | Path | ExperimentConfig | None = None,
    overrides: tuple[str, ...] = (),
) -> tuple[torch.nn.Module, ExperimentConfig, KeypointSchema]:
    """:func:`load_network` for a checkpoint object already read (``path`` names it in messages)."""
    cfg = checkpoint_config(obj, path, config, overrides)
    saved = schema_from_checkpoint(obj)
    schema = saved or schema_for_config(cfg)
    if saved is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_joints=saved.num_joints))
    cfg = resolve_num_joints(cfg, schema)
    net = build_model(dataclasses.replace(cfg.model, pretrained="", weights=""))
    load_model_weights(net, obj, name=path)
    return net.eval(), cfg, schema


# --------------------------------------------------------------------------- the estimator


class PoseEstimator:
    """Top-down pose estimation on photos and video frames: person boxes -> crops -> poses.

    Build it with :meth:`from_checkpoint`. ``detector`` is the default box source of
    :meth:`predict`: ``"hog"``, ``"whole-image"``, a :class:`~heatpose.detection.DetectionFile`
    or any callable ``image -> PersonBoxes``.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        cfg: ExperimentConfig,
        device: torch.device,
        settings: InferenceSettings,
        backend: str = "torch",
        detector: str | DetectionFile | Callable[[np.ndarray], PersonBoxes] = HOG,
        source: str = "",
        schema: KeypointSchema | None = None,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.device = device
        self.settings = settings
        self.backend = backend
        self.source = source
        self.schema: KeypointSchema = schema or schema_for_config(cfg)
        self.codec: HeatmapCodec = build_codec(cfg)
        self.color_order = cfg.data.color_order
        self.mean = np.asarray(cfg.data.mean, np.float32)
        self.std = np.asarray(cfg.data.std, np.float32)
        self.detector = HogPersonDetector() if detector == HOG else detector
        if isinstance(self.detector, str) and self.detector != WHOLE_IMAGE:
            raise HeatposeError("detector must be 'hog', 'whole-image', a detection file or a callable")

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: str | Path | ExperimentConfig | None = None,
        device: str | torch.device = "cpu",
        backend: str = "torch",
        precision: str = "fp32",
        detector: str | DetectionFile | Callable[[np.ndarray], PersonBoxes] = HOG,
        flip: bool | None = None,
        batch_size: int = 32,
        overrides: tuple[str, ...] = (),
        keep_freed_memory: bool = True,
    ) -> PoseEstimator:
        """Load a heatpose checkpoint, a foreign one (with ``config=``) or an exported ``.onnx``.

        ``backend="onnx"`` runs an ``.onnx`` file through onnxruntime, or exports a ``.pth``
        checkpoint in memory first. ``precision="bf16"`` runs the torch backend under bf16
        autocast (fast on CPUs with AMX or AVX512-BF16). ``flip`` defaults to ``test.flip``.
        On the CPU, ``keep_freed_memory`` makes this process's glibc reuse freed memory instead of
        page-faulting in fresh memory on every forward (:mod:`heatpose.allocator`; process-wide).
        """
        if backend not in BACKENDS:
            raise HeatposeError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        if precision not in PRECISIONS:
            raise HeatposeError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        device = torch.device(device)
        if keep_freed_memory and device.type == "cpu":
            allocator.keep_freed_memory()
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            if backend != "onnx":
                raise HeatposeError(f"{path} is an ONNX model: use backend='onnx' (CLI: --backend onnx)")
            from heatpose.export import OnnxRunner

            runner = OnnxRunner(path)
            cfg = runner.config() if config is None else checkpoint_config({}, path, config, overrides)
            schema = runner.schema() if config is None else None
            model: Callable[[torch.Tensor], torch.Tensor] = runner
        else:
            net, cfg, schema = load_network(path, config, overrides)
            if backend == "onnx":
                from heatpose.export import OnnxRunner, onnx_bytes

                model = OnnxRunner(onnx_bytes(net, cfg, schema=schema))
            else:
                model = optimize_for_inference(net, device, fold_bn=True, channels_last=True)
        if backend == "onnx" and (precision != "fp32" or device.type != "cpu"):
            raise HeatposeError("the onnx backend runs fp32 on CPU; use backend='torch' for bf16 or CUDA")
        settings = InferenceSettings(
            flip=cfg.test.flip if flip is None else flip,
            shift=configured_flip_shift(cfg),
            decode=cfg.test.decode,
            batch_size=batch_size,
            amp_dtype=torch.bfloat16 if precision == "bf16" else None,
            channels_last=backend == "torch",
        )
        return cls(
            model, cfg, device, settings, backend=backend, detector=detector, source=str(path), schema=schema
        )

    # ------------------------------------------------------------------ boxes
    def person_boxes(self, image_bgr: np.ndarray, image_path: str | Path | None = None) -> PersonBoxes:
        """Boxes from the default detector for one image (BGR, upright)."""
        h, w = image_bgr.shape[:2]
        if self.detector == WHOLE_IMAGE:
            return whole_image_box(w, h)
        if isinstance(self.detector, DetectionFile):
            if image_path is None:
                raise HeatposeError("a detection file matches images by file name: pass the image path")
            return self.detector.boxes_for(image_path)
        found = self.detector(image_bgr)
        if isinstance(found, PersonBoxes):
            return found
        boxes, scores = found  # a detector returning (N, 4) x, y, w, h and (N,) scores
        source = getattr(self.detector, "source", None) or str(getattr(self.detector, "path", "detector"))
        return as_person_boxes(boxes, scores, source=source)

    # ------------------------------------------------------------------ poses
    def predict(
        self,
        image: str | Path | np.ndarray,
        boxes: Any = None,
        color_order: str | None = None,
        box_scores: Any = None,
    ) -> list[PersonPose]:
        """Poses of the people in ``image``.

        ``image``: a file path (read upright by its EXIF orientation) or an HxWx3 uint8 array
        whose ``color_order`` (``"rgb"`` or ``"bgr"``) must be stated. ``boxes``: None (the
        default detector), ``"whole-image"``, ``"hog"``, a :class:`PersonBoxes`, or an (N, 4)
        ``x, y, w, h`` / (N, 5) with score array (then ``box_scores`` or 1).
        """
        path = None
        if isinstance(image, (str, Path)):
            path = image
            bgr = read_photo(image)
        else:
            if color_order is None:
                raise HeatposeError("an image array needs color_order='rgb' or 'bgr'")
            bgr = to_color_order(image, color_order, "bgr")
        return self.predict_bgr(bgr, self._boxes(bgr, boxes, box_scores, path))

    def _boxes(self, bgr: np.ndarray, boxes: Any, box_scores: Any, path: str | Path | None) -> PersonBoxes:
        if boxes is None:
            return self.person_boxes(bgr, path)
        if isinstance(boxes, PersonBoxes):
            return boxes
        if isinstance(boxes, str):
            if boxes == WHOLE_IMAGE:
                return whole_image_box(bgr.shape[1], bgr.shape[0])
            if boxes == HOG:
                return HogPersonDetector()(bgr)
            raise HeatposeError(f"boxes={boxes!r}: use 'whole-image', 'hog' or an (N, 4) array")
        return as_person_boxes(boxes, box_scores)

    def predict_bgr(
        self, image_bgr: np.ndarray, boxes: PersonBoxes, with_heatmaps: bool = False
    ) -> list[PersonPose] | tuple[list[PersonPose], PersonHeatmaps]:
        """Poses for given boxes in an upright BGR image (the path ``predict`` and the CLI share).

        ``with_heatmaps`` also returns the :class:`PersonHeatmaps` the poses were decoded from.
        """
        k = self.schema.num_joints
        hw = (self.codec.heatmap_size[1], self.codec.heatmap_size[0])
        if len(boxes) == 0:
            none = PersonHeatmaps(np.zeros((0, k, *hw), np.float32), np.zeros((0, 2)), np.zeros((0, 2)))
            return ([], none) if with_heatmaps else []
        image = to_color_order(image_bgr, "bgr", self.color_order)
        centers, scales = self._centers_scales(boxes.boxes)
        keypoints, scores, *maps = estimate_poses(
            self.model,
            image,
            centers,
            scales,
            self.codec,
            self.schema.flip_index(),
            self.mean,
            self.std,
            self.settings,
            self.device,
            return_heatmaps=with_heatmaps,
        )
        pose_scores = rescore(scores, boxes.scores, self.cfg.test.rescore_thr)
        poses = [
            PersonPose(
                keypoints=np.concatenate([keypoints[i], scores[i][:, None]], axis=1),
                box=boxes.boxes[i].copy(),
                box_score=float(boxes.scores[i]),
                box_source=boxes.source,
                score=float(pose_scores[i]),
            )
            for i in range(len(boxes))
        ]
        if with_heatmaps:
            return poses, PersonHeatmaps(maps[0], centers, scales, self.codec.udp)
        return poses

    def _centers_scales(self, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.codec.input_size
        cs = [box_to_center_scale(b, w / h, self.cfg.data.box_enlarge) for b in boxes_xywh]
        return np.stack([c for c, _ in cs]), np.stack([s for _, s in cs])

    def heatmap_picture(self, image_bgr: np.ndarray, box: Any, joint: int | str | None = None) -> np.ndarray:
        """One person's crop beside the same crop with its heatmaps blended in, (H, 2 W, 3) BGR.

        ``box`` is x, y, w, h in ``image_bgr`` pixels; ``joint`` a joint index or name (None:
        the maximum over joints). For looking at why a joint went wrong, from Python.
        """
        from heatpose.data.transforms import get_affine_transform, warp_crop
        from heatpose.heatmap_vis import crop_heatmap_picture

        people = as_person_boxes(np.asarray(box, np.float64).reshape(1, 4), None)
        _, maps = self.predict_bgr(image_bgr, people, with_heatmaps=True)
        size = self.codec.input_size
        matrix = get_affine_transform(maps.centers[0], maps.scales[0], 0.0, size, udp=self.codec.udp)
        crop = warp_crop(image_bgr, matrix, size)
        return crop_heatmap_picture(crop, maps.heatmaps[0], self.joint_index(joint))

    def joint_index(self, joint: int | str | None) -> int | None:
        """A joint given by index or schema name -> its index (None stays None)."""
        if joint is None or isinstance(joint, int):
            return joint
        names = list(self.schema.joint_names)
        if joint not in names:
            raise HeatposeError(
                f"unknown joint {joint!r}; the schema {self.schema.name!r} has {', '.join(names)}"
            )
        return names.index(joint)
