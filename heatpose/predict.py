"""``heatpose predict``: poses for images, folders and videos -> COCO results json and pictures.

Each input is handled on its own: one that cannot be read (missing, corrupt, an unsupported
video) is named on stderr and skipped, the run goes on, and :func:`run_predict` reports it so
the command exits with status 1 (2 is kept for bad arguments, as everywhere in heatpose).

The json is a list in COCO keypoint-results format (``image_id``, ``category_id``,
``keypoints`` [x, y, score] * K, ``score``) plus ``file_name``, ``box`` [x, y, w, h],
``box_score`` and ``box_source``; video entries add ``frame`` (0-based) and use the frame
index as ``image_id``. ``image_id`` is the integer file name for COCO-named images
(``000000000785.jpg`` -> 785), else the file name, so ``heatpose score`` reads the file as is.
One entry per person box: no OKS-NMS is applied here (``heatpose eval`` applies it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_bytes, atomic_write_json
from heatpose.media import AtomicVideoWriter, VideoReader, expand_inputs, is_video, read_photo
from heatpose.predictor import PersonPose, PoseEstimator
from heatpose.visualize import draw_poses


@dataclass
class PredictReport:
    """What a run did: counts, the result entries and the inputs that failed (path, reason)."""

    images: int = 0
    frames: int = 0
    people: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def image_id_for(path: Path) -> int | str:
    return int(path.stem) if path.stem.isdigit() else path.name


def _entries(poses: list[PersonPose], image_id: int | str, file_name: str, frame: int | None) -> list[dict]:
    out = []
    for pose in poses:
        entry: dict[str, Any] = {"image_id": image_id, "category_id": 1, "file_name": file_name}
        if frame is not None:
            entry["frame"] = frame
        entry.update(pose.to_json())
        out.append(entry)
    return out


def _vis_path(vis_dir: Path, path: Path, video: bool) -> Path:
    if video:
        return vis_dir / (
            path.stem + (path.suffix.lower() if path.suffix.lower() in (".mp4", ".avi") else ".mp4")
        )
    return vis_dir / (path.stem + (".png" if path.suffix.lower() == ".png" else ".jpg"))


def _predict_image(
    estimator: PoseEstimator, path: Path, vis_dir: Path | None, score_thr: float, report: PredictReport
) -> None:
    image = read_photo(path)
    poses = estimator.predict_bgr(image, estimator.person_boxes(image, path))
    report.results += _entries(poses, image_id_for(path), path.name, None)
    report.images += 1
    report.people += len(poses)
    if vis_dir is not None:
        out = _vis_path(vis_dir, path, video=False)
        ok, data = cv2.imencode(out.suffix, draw_poses(image, poses, estimator.schema, score_thr))
        if not ok:
            raise HeatposeError(f"cannot encode {out}")
        report.written.append(atomic_write_bytes(out, data.tobytes()))


def _predict_video(
    estimator: PoseEstimator,
    path: Path,
    vis_dir: Path | None,
    score_thr: float,
    report: PredictReport,
    progress: bool,
) -> None:
    reader = VideoReader(path)
    writer = None
    frame_index = -1
    entries: list[dict] = []
    try:
        bar = tqdm(
            reader, total=reader.frame_count or None, desc=path.name, unit="frame", disable=not progress
        )
        for frame_index, frame in enumerate(bar):
            poses = estimator.predict_bgr(frame, estimator.person_boxes(frame, path))
            entries += _entries(poses, frame_index, path.name, frame_index)
            report.people += len(poses)
            if vis_dir is not None:
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = AtomicVideoWriter(_vis_path(vis_dir, path, video=True), reader.fps, size)
                writer.write(draw_poses(frame, poses, estimator.schema, score_thr))
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    if frame_index < 0:
        raise HeatposeError(f"no frames could be decoded from video {path}")
    if writer is not None:
        report.written.append(writer.close())
    report.frames += frame_index + 1
    report.results += entries


def run_predict(
    inputs: list[str],
    estimator: PoseEstimator,
    out: str | Path | None = None,
    vis_dir: str | Path | None = None,
    score_thr: float = 0.3,
    progress: bool = True,
) -> PredictReport:
    """Predict every input; write the results json (``out``) and pictures/videos (``vis_dir``)."""
    paths = expand_inputs(inputs)
    if not paths:
        raise HeatposeError(f"no images or videos found in {', '.join(inputs)}")
    vis = Path(vis_dir) if vis_dir is not None else None
    report = PredictReport()
    images = [p for p in paths if not is_video(p)]
    bar = tqdm(images, desc="images", unit="image", disable=not progress or len(images) < 2)
    for path in bar:
        try:
            _predict_image(estimator, path, vis, score_thr, report)
        except (HeatposeError, cv2.error) as err:
            _skip(report, path, err)
    for path in (p for p in paths if is_video(p)):
        try:
            _predict_video(estimator, path, vis, score_thr, report, progress)
        except (HeatposeError, cv2.error) as err:
            _skip(report, path, err)
    if out is not None:
        atomic_write_json(out, report.results)
    return report


def _skip(report: PredictReport, path: Path, err: Exception) -> None:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    report.failed.append((str(path), reason))
    print(f"heatpose: warning: skipped {path}: {reason}", file=sys.stderr)


def summary(report: PredictReport, estimator: PoseEstimator, out: str | None) -> str:
    """The lines the command prints: what was read, where boxes came from, what was written."""
    detector = estimator.detector
    boxes = detector if isinstance(detector, str) else getattr(detector, "source", type(detector).__name__)
    lines = [
        f"checkpoint: {estimator.source} ({estimator.backend}, {_precision(estimator)}, "
        f"flip test {'on' if estimator.settings.flip else 'off'})",
        f"boxes: {boxes}",
        f"{report.images} images, {report.frames} video frames, {report.people} people",
    ]
    if out:
        lines.append(f"predictions: {out}")
    if report.written:
        lines.append(f"pictures: {len(report.written)} files in {report.written[0].parent}")
    if report.failed:
        lines.append(f"failed: {len(report.failed)} inputs ({', '.join(p for p, _ in report.failed[:3])}"
                     + (", ..." if len(report.failed) > 3 else "") + ")")  # fmt: skip
    return "\n".join(lines)


def _precision(estimator: PoseEstimator) -> str:
    return "bf16" if estimator.settings.amp_dtype is not None else "fp32"


def predict_command(
    inputs: list[str],
    checkpoint: str,
    config: str | None = None,
    overrides: tuple[str, ...] = (),
    boxes: str | None = None,
    detector: str | None = None,
    whole_image: bool = False,
    det_score_thr: float = 0.5,
    out: str | None = None,
    vis_dir: str | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    flip: bool | None = None,
    score_thr: float = 0.3,
    progress: bool = True,
) -> int:
    """``heatpose predict``: 0 when every input was read, 1 when some were skipped."""
    from heatpose.detection import HOG, WHOLE_IMAGE, DetectionFile

    if boxes is not None:
        box_source: Any = DetectionFile(boxes, det_score_thr)
    elif whole_image:
        box_source = WHOLE_IMAGE
    elif detector not in (None, HOG):
        from heatpose.onnx_detector import OnnxPersonDetector

        box_source = OnnxPersonDetector(str(detector), score_thr=det_score_thr)
        box_source.source = f"{detector} (score >= {det_score_thr:g})"
    else:
        box_source = HOG
    estimator = PoseEstimator.from_checkpoint(
        checkpoint,
        config=config,
        backend=backend,
        precision=precision,
        detector=box_source,
        flip=flip,
        overrides=tuple(overrides),
    )
    report = run_predict(inputs, estimator, out=out, vis_dir=vis_dir, score_thr=score_thr, progress=progress)
    print(summary(report, estimator, out))
    return 1 if report.failed else 0
