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

For one video or a live source (``--camera N``, ``--source URL``, ``heatpose/live.py``),
``--csv`` / ``--jsonl`` write per-frame tables (``heatpose/video_tables.py``); ``--kpt-thr``
blanks low joints there and hides them in the pictures. ``--draw-heatmaps`` blends each person's
heatmaps (all joints' maximum, or ``--heatmap-joint``) under the skeleton. Ctrl-C ends a video
or a live run cleanly: the finished frames' json, csv, jsonl and video are kept.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_bytes, atomic_write_json
from heatpose.media import AtomicVideoWriter, VideoReader, expand_inputs, is_video, read_photo
from heatpose.predictor import PersonPose, PoseEstimator
from heatpose.video_outputs import frame_from_poses
from heatpose.video_tables import FrameTableWriter
from heatpose.visualize import draw_poses


@dataclass
class DrawOptions:
    """How pictures are drawn: faded below ``score_thr``, hidden below ``kpt_thr``, heatmaps."""

    score_thr: float = 0.3
    kpt_thr: float = 0.0
    heatmaps: bool = False
    heatmap_joint: int | None = None


def draw_picture(
    estimator: PoseEstimator, image: np.ndarray, poses: list[PersonPose], maps: Any, opts: DrawOptions
) -> np.ndarray:
    """The picture of one image or frame: heatmaps (when asked) under the skeletons."""
    if opts.heatmaps and maps is not None and len(maps.heatmaps):
        from heatpose.heatmap_vis import overlay_heatmaps

        image = overlay_heatmaps(
            image, maps.heatmaps, maps.centers, maps.scales, opts.heatmap_joint, udp=maps.udp
        )
    return draw_poses(image, poses, estimator.schema, opts.score_thr, hide_thr=opts.kpt_thr)


def _poses(estimator: PoseEstimator, image: np.ndarray, path: Path | None, opts: DrawOptions) -> tuple:
    boxes = estimator.person_boxes(image, path)
    if opts.heatmaps:
        return estimator.predict_bgr(image, boxes, with_heatmaps=True)
    return estimator.predict_bgr(image, boxes), None


@dataclass
class PredictReport:
    """What a run did: counts, the result entries and the inputs that failed (path, reason)."""

    images: int = 0
    frames: int = 0
    people: int = 0
    dropped: int = 0  # live input: frames the model was too slow for (or over --max-fps)
    interrupted: bool = False  # Ctrl-C (or the --show window closed) ended the run
    results: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    no_people: list[str] = field(default_factory=list)  # images read fine in which no box was found
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
    estimator: PoseEstimator, path: Path, vis_dir: Path | None, opts: DrawOptions, report: PredictReport
) -> None:
    image = read_photo(path)
    poses, maps = _poses(estimator, image, path, opts)
    report.results += _entries(poses, image_id_for(path), path.name, None)
    report.images += 1
    report.people += len(poses)
    if not poses:
        report.no_people.append(path.name)
    if vis_dir is not None:
        out = _vis_path(vis_dir, path, video=False)
        ok, data = cv2.imencode(out.suffix, draw_picture(estimator, image, poses, maps, opts))
        if not ok:
            raise HeatposeError(f"cannot encode {out}")
        report.written.append(atomic_write_bytes(out, data.tobytes()))


def _predict_video(
    estimator: PoseEstimator,
    path: Path,
    vis_dir: Path | None,
    opts: DrawOptions,
    report: PredictReport,
    progress: bool,
    tables: FrameTableWriter | None = None,
) -> None:
    reader = VideoReader(path)
    timed = ((frame, reader.times[-1]) for frame in reader)
    vis = _vis_path(vis_dir, path, video=True) if vis_dir is not None else None
    predict_frames(
        estimator, timed, path.name, reader.fps, vis, opts, report, progress, tables, reader.frame_count, path
    )


def predict_frames(
    estimator: PoseEstimator,
    frames: Iterable[tuple[np.ndarray, float]],
    name: str,
    fps: float,
    vis_path: Path | None,
    opts: DrawOptions,
    report: PredictReport,
    progress: bool = True,
    tables: FrameTableWriter | None = None,
    total: int | None = None,
    path: Path | None = None,
    window: Any = None,
) -> None:
    """Poses of a stream of ``(frame BGR, seconds)``: json entries (``image_id`` = frame index),
    table rows, the drawn video and the ``--show`` window. Ctrl-C stops it and keeps what is done;
    any other error discards the video."""
    writer = None
    done = 0
    entries: list[dict] = []
    k = estimator.schema.num_joints
    try:
        bar = tqdm(frames, total=total or None, desc=name, unit="frame", disable=not progress)
        for frame_index, (frame, seconds) in enumerate(bar):
            poses, maps = _poses(estimator, frame, path, opts)
            entries += _entries(poses, frame_index, name, frame_index)
            report.people += len(poses)
            if tables is not None:
                tables.write(frame_from_poses(poses, frame_index, seconds, k))
            if vis_path is not None or window is not None:
                picture = draw_picture(estimator, frame, poses, maps, opts)
                if vis_path is not None:
                    if writer is None:
                        writer = AtomicVideoWriter(vis_path, fps, (frame.shape[1], frame.shape[0]))
                    writer.write(picture)
                if window is not None and not window.show(picture):
                    report.interrupted = True
                    done += 1
                    break
            done += 1
    except KeyboardInterrupt:
        report.interrupted = True
        entries = [e for e in entries if e["frame"] < done]  # the frame cut short is not kept
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    if done == 0 and not report.interrupted:
        raise HeatposeError(f"no frames could be decoded from {name}")
    if writer is not None:
        report.written.append(writer.close())
    report.frames += done
    report.results += entries


def run_predict(
    inputs: list[str],
    estimator: PoseEstimator,
    out: str | Path | None = None,
    vis_dir: str | Path | None = None,
    score_thr: float = 0.3,
    progress: bool = True,
    csv_path: str | Path | None = None,
    jsonl_path: str | Path | None = None,
    opts: DrawOptions | None = None,
) -> PredictReport:
    """Predict every input; write the results json (``out``) and pictures/videos (``vis_dir``).

    ``csv_path`` / ``jsonl_path`` need exactly one input, a video (the tables have no file column).
    """
    opts = opts or DrawOptions(score_thr=score_thr)
    paths = expand_inputs(inputs)
    if not paths:
        raise HeatposeError(f"no images or videos found in {', '.join(inputs)}")
    if (csv_path or jsonl_path) and (len(paths) != 1 or not is_video(paths[0])):
        raise HeatposeError("--csv/--jsonl need exactly one video input (or --camera/--source)")
    vis = Path(vis_dir) if vis_dir is not None else None
    report = PredictReport()
    images = [p for p in paths if not is_video(p)]
    bar = tqdm(images, desc="images", unit="image", disable=not progress or len(images) < 2)
    for path in bar:
        try:
            _predict_image(estimator, path, vis, opts, report)
        except (HeatposeError, cv2.error) as err:
            _skip(report, path, err)
    for path in (p for p in paths if is_video(p)):
        try:
            with _tables(estimator, csv_path, jsonl_path, opts) as tables:
                _predict_video(estimator, path, vis, opts, report, progress, tables)
        except (HeatposeError, cv2.error) as err:
            _skip(report, path, err)
        if report.interrupted:
            break
    if out is not None:
        atomic_write_json(out, report.results)
    return report


def _tables(estimator: PoseEstimator, csv_path: Any, jsonl_path: Any, opts: DrawOptions) -> FrameTableWriter:
    return FrameTableWriter(estimator.schema.joint_names, csv_path, jsonl_path, kpt_thr=opts.kpt_thr)


def run_live(
    frames: Any,
    name: str,
    estimator: PoseEstimator,
    out: str | Path | None = None,
    vis_dir: str | Path | None = None,
    progress: bool = True,
    csv_path: str | Path | None = None,
    jsonl_path: str | Path | None = None,
    opts: DrawOptions | None = None,
    show: bool = False,
) -> PredictReport:
    """Predict a live source (:class:`heatpose.live.LiveFrames`) until it ends, Ctrl-C or the
    ``--show`` window is closed; every output is closed cleanly either way."""
    from heatpose.live import Window

    opts = opts or DrawOptions()
    report = PredictReport()
    window = Window(f"heatpose {name}") if show else None
    vis = Path(vis_dir) / f"{name}.mp4" if vis_dir is not None else None
    try:
        with _tables(estimator, csv_path, jsonl_path, opts) as tables:
            predict_frames(
                estimator, frames, name, frames.fps, vis, opts, report, progress, tables, window=window
            )
    finally:
        if window is not None:
            window.close()
    report.dropped = frames.dropped
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
        f"{_count(report.images, 'image')}, {_count(report.frames, 'video frame')}, "
        f"{_count(report.people, 'person', 'people')}",
    ]
    if report.no_people:
        lines.append(
            f"no person found in {_count(len(report.no_people), 'image')}: {_first_few(report.no_people)}"
        )
    if report.dropped:
        lines.append(f"dropped: {report.dropped} frames (the model was slower than the source, or --max-fps)")
    if report.interrupted:
        lines.append("interrupted: the outputs hold every finished frame")
    if out:
        lines.append(f"predictions: {out}")
    if report.written:
        lines.append(f"pictures: {_count(len(report.written), 'file')} in {report.written[0].parent}")
    if report.failed:
        names = _first_few([p for p, _ in report.failed])
        lines.append(f"failed: {_count(len(report.failed), 'input')} ({names})")
    return "\n".join(lines)


def _first_few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


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
    csv_path: str | None = None,
    jsonl_path: str | None = None,
    kpt_thr: float | None = None,
    draw_heatmaps: bool = False,
    heatmap_joint: str | None = None,
    camera: str | None = None,
    max_fps: float | None = None,
    show: bool = False,
) -> int:
    """``heatpose predict``: 0 when every input was read, 1 when some were skipped.

    ``camera`` (an index, device path or capture URL) replaces ``inputs`` with a live source.
    """
    if kpt_thr is not None and not 0.0 <= kpt_thr <= 1.0:
        raise HeatposeError(f"--kpt-thr must be in [0, 1], got {kpt_thr}")
    if heatmap_joint is not None and not draw_heatmaps:
        raise HeatposeError("--heatmap-joint needs --draw-heatmaps")
    if inputs and camera is not None:
        raise HeatposeError("give inputs (images, folders, videos) or --camera/--source, not both")
    if not inputs and camera is None:
        raise HeatposeError("nothing to predict on: give images, folders or videos, or --camera/--source")
    if camera is None and (show or max_fps is not None):
        raise HeatposeError("--show and --max-fps work with a live source (--camera N or --source URL)")
    if show:
        from heatpose.live import check_display

        check_display()
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
    opts = DrawOptions(score_thr, kpt_thr or 0.0, draw_heatmaps, estimator.joint_index(heatmap_joint))
    tables = {"csv_path": csv_path, "jsonl_path": jsonl_path}
    if camera is not None:
        from heatpose.live import LiveFrames, open_capture

        # a file given to --source is not live: read every frame in order (--max-fps still applies)
        frames = LiveFrames(open_capture(camera), max_fps=max_fps, drop=not Path(str(camera)).is_file())
        name = f"camera{camera}" if str(camera).isdigit() else "stream"
        report = run_live(frames, name, estimator, out, vis_dir, progress, opts=opts, show=show, **tables)
    else:
        report = run_predict(inputs, estimator, out, vis_dir, score_thr, progress, opts=opts, **tables)
    print(summary(report, estimator, out))
    if report.interrupted and camera is None:
        # files: Ctrl-C means "stop early", exit 130 as everywhere in heatpose (outputs are kept);
        # a live source (camera, stream) has no end, so Ctrl-C is its normal way to stop (exit 0)
        print("heatpose: interrupted", file=sys.stderr)
        return 130
    return 1 if report.failed else 0
