"""``heatpose track VIDEO_OR_FRAME_DIR --checkpoint CKPT (--boxes DETS.json | --detector hog) --out T.json``.

Several inputs (``heatpose track A B C ... --out DIR``) share one model load and write
``DIR/<video name>.json`` each, as a PoseTrack results folder that ``heatpose score`` reads.

Reads the frames (an OpenCV-readable video, or a folder of images in name order), gets person boxes
from a detection file or the HOG detector, runs the tracker with the checkpoint's pose estimator,
and writes a PoseTrack18 results json (``tracking/output.py``), optionally a video with each track
drawn in its own colour. Prints a per-stage time breakdown at the end.

Per-frame tables (``--csv``, ``--jsonl``, ``heatpose/video_tables.py``) carry the track ids and each
frame's time in seconds (the container's timestamps; frame / fps for a folder, at 10 fps unless a
video); ``--smooth one-euro|savgol`` smooths the reported keypoints per track
(``heatpose/video_outputs.py``). With ``savgol`` (offline) the json, the csv and the drawn video
are smoothed once the clip is done; the ``--jsonl`` stream keeps the raw per-frame poses.

Frame naming, so results score against PoseTrack ground truth: frame ``t`` of a video ``NAME`` is
``NAME/<image file>`` (a folder) or ``NAME/<t:06d>.jpg`` (a video file). When ``NAME`` starts with
digits (PoseTrack's ``003418_mpii_test``, the synthetic ``000001_synthetic``), frame ids are
PoseTrack's ``10000000000 + video * 10000 + frame number`` (the number in the image name, else
``t``), which is what PoseTrack detection files use as ``image_id``; otherwise the frame id is ``t``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from heatpose.data.posetrack import read_detections
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_json
from heatpose.keypoints import KeypointSchema
from heatpose.media import frame_time
from heatpose.tracking.draw import draw_tracks
from heatpose.tracking.output import FrameInfo, tracks_to_posetrack
from heatpose.tracking.tracker import STAGES, PoseEstimate, PoseTracker, TrackerConfig
from heatpose.video_outputs import TrackSmoother, frame_from_tracks
from heatpose.video_tables import FrameTableWriter

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class FrameSource:
    name: str
    infos: list[FrameInfo]
    fps: float
    frames: Callable[[], Iterator[np.ndarray]]
    times: list[float] = field(default_factory=list)  # seconds of each frame read so far


def _frame_id(video_number: int | None, t: int, stem: str) -> int:
    if video_number is None:
        return t
    number = int(stem) if stem.isdigit() and int(stem) < 10_000 else t
    return 10_000_000_000 + video_number * 10_000 + number


def open_frames(path: str | Path) -> FrameSource:
    """The frames of a video file or an image folder, with their output names and frame ids."""
    path = Path(path)
    if not path.exists():
        raise HeatposeError(f"video or frame folder not found: {path}")
    name = path.name if path.is_dir() else path.stem
    digits = re.match(r"\d+", name)
    number = int(digits.group()) if digits and int(digits.group()) < 1_000_000 else None
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise HeatposeError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise HeatposeError(f"{files[0]}: not a readable image")
        h, w = first.shape[:2]
        infos = [
            FrameInfo(f"{name}/{f.name}", _frame_id(number, t, f.stem), w, h) for t, f in enumerate(files)
        ]

        def read_folder() -> Iterator[np.ndarray]:
            source.times.clear()
            for t, f in enumerate(files):
                frame = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if frame is None:
                    raise HeatposeError(f"{f}: not a readable image")
                if frame.shape[:2] != (h, w):
                    raise HeatposeError(
                        f"{f}: size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's {w}x{h}"
                    )
                source.times.append(t / source.fps)
                yield frame

        source = FrameSource(name, infos, 10.0, read_folder)
        return source
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise HeatposeError(f"{path}: OpenCV cannot read this video")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 10.0
    w, h = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    if count <= 0 or w <= 0 or h <= 0:
        raise HeatposeError(f"{path}: the video has no frames")
    infos = [FrameInfo(f"{name}/{t:06d}.jpg", _frame_id(number, t, ""), w, h) for t in range(count)]

    def read_video() -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(str(path))
        source.times.clear()
        try:
            for t in range(count):
                ok, frame = cap.read()
                if not ok:
                    break
                source.times.append(frame_time(cap, t, fps, source.times[-1] if source.times else None))
                yield frame
        finally:
            cap.release()

    source = FrameSource(name, infos, fps, read_video)
    return source


class _VideoOut:
    """Frames appended to an mp4 under a temporary name, renamed when complete."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp = path, path.with_name(f".{path.stem}.tmp{path.suffix or '.mp4'}")
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise HeatposeError(f"{path}: OpenCV cannot write a video here")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def close(self, ok: bool) -> None:
        self.writer.release()
        if ok:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def track_video(
    source: FrameSource,
    estimate: PoseEstimate,
    schema: KeypointSchema,
    config: TrackerConfig,
    out_path: str | Path,
    detections: str | Path | None = None,
    detector: Detector | None = None,
    vis_path: str | Path | None = None,
    progress: bool = True,
    csv_path: str | Path | None = None,
    jsonl_path: str | Path | None = None,
    kpt_thr: float | None = None,
    smoother: TrackSmoother | None = None,
) -> dict:
    """Track every frame of ``source``; write the results json (and the drawn video, the tables).

    ``kpt_thr`` blanks joints below it in the csv and hides them in the drawing (default: the
    tracker's ``joint_score_thr``). Returns timings.
    """
    if (detections is None) == (detector is None):
        raise HeatposeError(
            "give exactly one box source: a detection file (--boxes) or a detector (--detector)"
        )
    dets = read_detections(detections) if detections is not None else None
    if dets is not None and not any(info.frame_id in dets for info in source.infos):
        ids = f"{source.infos[0].frame_id}..{source.infos[-1].frame_id}"
        raise HeatposeError(f"{detections}: no detection has an image_id of this video's frames ({ids})")
    tracker = PoseTracker(estimate, schema.oks_sigmas(), config)
    times = dict.fromkeys(("decode", "detect", *STAGES, "smooth", "tables", "draw"), 0.0)
    results = []
    first = source.infos[0]
    smoother = smoother or TrackSmoother()
    offline = smoother.method == "savgol"
    draw_thr = config.joint_score_thr if kpt_thr is None else kpt_thr
    k = schema.num_joints
    video = None
    if vis_path and not offline:
        video = _VideoOut(Path(vis_path), source.fps, (first.width, first.height))
    tables = FrameTableWriter(
        schema.joint_names,
        None if offline else csv_path,
        jsonl_path,
        tracking=True,
        kpt_thr=kpt_thr or 0.0,
    )
    start = time.perf_counter()
    ok = interrupted = False
    try:
        frames = source.frames()
        bar = tqdm(source.infos, desc=f"track {source.name}", unit="frame", disable=not progress)
        for info in bar:
            tick = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            times["decode"] += time.perf_counter() - tick
            tick = time.perf_counter()
            if dets is not None:
                boxes, scores = dets.get(info.frame_id, (np.zeros((0, 4)), np.zeros(0)))
            else:
                boxes, scores = detector(frame)
            times["detect"] += time.perf_counter() - tick
            people = tracker.step(frame, boxes, scores)
            seconds = source.times[-1] if source.times else len(results) / source.fps
            tick = time.perf_counter()
            results.append(smoother.step(people, seconds))
            tick = _lap(times, "smooth", tick)
            tables.write(frame_from_tracks(results[-1], len(results) - 1, seconds, k))
            _lap(times, "tables", tick)
            if video is not None:
                tick = time.perf_counter()
                video.write(draw_tracks(frame, results[-1], schema, draw_thr))
                times["draw"] += time.perf_counter() - tick
        ok = True
    except KeyboardInterrupt:
        ok = interrupted = True  # Ctrl-C: keep what is done (json, csv, video of the finished frames)
    finally:
        if video is not None:
            video.close(ok)
        tables.close(keep_csv=ok)
    if offline:
        tick = time.perf_counter()
        results = smoother.finish(results)
        tick = _lap(times, "smooth", tick)
        if csv_path is not None:
            with FrameTableWriter(schema.joint_names, csv_path, tracking=True, kpt_thr=kpt_thr or 0.0) as w:
                for t, people in enumerate(results):
                    w.write(frame_from_tracks(people, t, source.times[t], k))
        _lap(times, "tables", tick)
        if vis_path:
            _draw_offline(source, results, schema, draw_thr, Path(vis_path), times)
    wall = time.perf_counter() - start
    for stage in STAGES:
        times[stage] = tracker.timings[stage]
    infos = source.infos[: len(results)]
    atomic_write_json(
        out_path, tracks_to_posetrack(infos, results, schema, config.joint_score_thr), compact=True
    )
    return {
        "frames": len(results),
        "tracks": len({p.track_id for people in results for p in people}),
        "seconds": wall,
        "fps": len(results) / wall if wall > 0 else float("inf"),
        "stages": times,
        "interrupted": interrupted,
    }


def _lap(times: dict, stage: str, tick: float) -> float:
    now = time.perf_counter()
    times[stage] += now - tick
    return now


def _draw_offline(
    source: FrameSource, results: list, schema: KeypointSchema, thr: float, path: Path, times: dict
) -> None:
    """The drawn video of offline-smoothed tracks: a second pass over the frames."""
    tick = time.perf_counter()
    first = source.infos[0]
    video = _VideoOut(path, source.fps, (first.width, first.height))
    ok = False
    try:
        for frame, people in zip(source.frames(), results, strict=False):
            video.write(draw_tracks(frame, people, schema, thr))
        ok = True
    finally:
        video.close(ok)
    times["draw"] += time.perf_counter() - tick


def format_breakdown(summary: dict) -> str:
    """The per-stage time table printed at the end of ``heatpose track``."""
    n = max(summary["frames"], 1)
    total = summary["seconds"]
    lines = [f"{'stage':<10} {'total s':>8} {'ms/frame':>9} {'share':>6}"]
    for stage, seconds in summary["stages"].items():
        share = 100 * seconds / total if total > 0 else 0.0
        lines.append(f"{stage:<10} {seconds:8.2f} {1000 * seconds / n:9.1f} {share:5.1f}%")
    lines.append(
        f"{'all':<10} {total:8.2f} {1000 * total / n:9.1f}  -> {summary['fps']:.1f} frames/s, "
        f"{summary['frames']} frames, {summary['tracks']} tracks"
    )
    return "\n".join(lines)


def tracker_config(settings: list[str]) -> TrackerConfig:
    """A validated :class:`TrackerConfig` from ``KEY=VALUE`` strings (``--tracker``)."""
    from heatpose.config import parse_override

    config = TrackerConfig()
    fields = TrackerConfig.__dataclass_fields__
    for text in settings:
        key, value = parse_override(text)
        if key not in fields:
            raise HeatposeError(f"unknown tracker setting {key!r}; known: {', '.join(fields)}")
        default = getattr(config, key)
        if isinstance(default, bool):
            words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            if str(value).lower() not in words:
                raise HeatposeError(f"tracker.{key} must be true or false, got {value!r}")
            value = words[str(value).lower()]
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise HeatposeError(f"tracker.{key} must be a number, got {value!r}")
            if isinstance(default, float):
                value = float(value)
        else:
            value = str(value)
        setattr(config, key, value)
    return config.validate()


def track_command(args) -> int:
    """The ``heatpose track`` subcommand (see cli.py for the arguments)."""
    from heatpose.tracking.estimator import XyxyDetector, load_pose_estimator

    config = tracker_config(args.tracker)
    inputs = [args.input] if isinstance(args.input, str) else list(args.input)
    sources = [open_frames(path) for path in inputs]
    outs = _outputs_of([source.name for source in sources], args)
    estimate, schema, _ = load_pose_estimator(args.checkpoint, args.config, args.set, flip=args.flip)
    detector = None
    if args.detector == "hog":
        detector = XyxyDetector()
    elif args.detector is not None:
        detector = _onnx_detector(args.detector, config.det_score_thr)
    if args.kpt_thr is not None and not 0.0 <= args.kpt_thr <= 1.0:
        raise HeatposeError(f"--kpt-thr must be in [0, 1], got {args.kpt_thr}")
    for source, out in zip(sources, outs, strict=True):
        smoother = TrackSmoother(
            args.smooth,
            args.one_euro if args.smooth == "one-euro" else args.savgol if args.smooth == "savgol" else None,
            fps=source.fps,
        )
        summary = track_video(
            source,
            estimate,
            schema,
            config,
            out,
            detections=args.boxes,
            detector=detector,
            vis_path=args.vis,
            progress=not args.quiet,
            csv_path=args.csv,
            jsonl_path=args.jsonl,
            kpt_thr=args.kpt_thr,
            smoother=smoother,
        )
        written = [str(p) for p in (out, args.vis, args.csv, args.jsonl) if p]
        smoothing = f" ({args.smooth} smoothing)" if args.smooth != "none" else ""
        print(f"wrote {', '.join(written)}{smoothing}")
        print(format_breakdown(summary), file=sys.stdout)
        if summary["interrupted"]:
            print("heatpose: interrupted (the outputs hold every finished frame)", file=sys.stderr)
            return 130
    return 0


def _outputs_of(names: list[str], args) -> list[Path]:
    """The tracks json of each input: ``--out`` itself for one input, ``--out/<video name>.json`` for
    several (one model load for a whole PoseTrack split); the per-frame outputs take one input."""
    if len(names) == 1:
        return [Path(args.out)]
    if args.vis or args.csv or args.jsonl:
        raise HeatposeError("--vis, --csv and --jsonl take one input; track the videos one at a time")
    if Path(args.out).suffix.lower() == ".json":
        raise HeatposeError(f"--out {args.out}: with several inputs --out is a folder (one json per video)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise HeatposeError(
            f"several inputs are named {repeated[0]!r}; their tracks would overwrite each other"
        )
    return [Path(args.out) / f"{n}.json" for n in names]


def _onnx_detector(path: str, score_thr: float) -> Detector:
    """A YOLOX/RTMDet ONNX person detector (``heatpose/onnx_detector.py``) as ``frame -> xyxy, scores``."""
    if not str(path).lower().endswith(".onnx"):
        raise HeatposeError(f"--detector must be 'hog' or a .onnx person detector, got {path!r}")
    from heatpose.onnx_detector import OnnxPersonDetector
    from heatpose.tracking.estimator import XyxyDetector

    return XyxyDetector(OnnxPersonDetector(str(path), score_thr=score_thr))
