"""``heatpose demo``: the whole product on a machine with nothing but heatpose installed.

Why: a newcomer has no COCO, no GPU and no checkpoint. The demo draws a synthetic dataset,
trains a small SimpleBaseline for a few minutes, scores it on held-out images, predicts and
draws skeletons, tracks the people of a synthetic clip and writes one folder with an
``index.html`` report (metrics table, curves, pictures, the tracked clip) and the exact
commands that reproduce each step.

Every step *is* a heatpose command, run in-process through :func:`heatpose.cli.main` with the
argument list the report prints, so what the report says is what ran. A step that finished
leaves a marker in ``OUT/.steps/``; running the same ``heatpose demo --out OUT`` again after
Ctrl-C skips finished steps and resumes training from ``latest.pth``. Every file a step writes
is written atomically by the command itself, so an interrupted step leaves no half files.
"""

from __future__ import annotations

import html
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_bytes, atomic_write_json, atomic_write_text, load_json
from heatpose.steps import CommandStep, run_steps, synth_steps


@dataclass(frozen=True)
class DemoPreset:
    """Sizes of one demo: data, crop, and the training budget (minutes of ``heatpose train``)."""

    train_images: int
    val_images: int
    image_size: tuple[int, int]  # synthetic image width, height
    input_size: tuple[int, int]  # network input width, height
    deconv: tuple[int, int]  # (layers, filters)
    minutes: float
    batch_size: int
    clip_frames: int
    pictures: int  # held-out images drawn by the predict step


PRESETS: dict[str, DemoPreset] = {
    # at most 10 minutes on 2 CPU cores (docs/results.md has what it measured and scored)
    "standard": DemoPreset(1600, 200, (320, 256), (96, 128), (3, 128), 8.5, 32, 48, 6),
    # seconds: the test suite's setting (the numbers mean nothing)
    "tiny": DemoPreset(6, 3, (96, 96), (64, 64), (2, 16), 0.0, 4, 6, 2),
}


def demo_config(out: Path, preset: DemoPreset, epochs: int, amp: str = "auto") -> dict:
    """The training config of the demo, as the YAML mapping it writes to ``OUT/demo_config.yaml``."""
    data = out / "data"
    layers, filters = preset.deconv
    steps = [max(1, round(epochs * 0.7)), max(1, round(epochs * 0.9))] if epochs >= 4 else [epochs + 1]
    return {
        "model": {"backbone_depth": 18, "num_deconv_layers": layers, "num_deconv_filters": filters},
        "data": {
            "train_ann": str(data / "annotations" / "person_keypoints_train.json"),
            "train_images": str(data / "images" / "train"),
            "val_ann": str(data / "annotations" / "person_keypoints_val.json"),
            "val_images": str(data / "images" / "val"),
            "input_size": list(preset.input_size),
            "subpixel_targets": True,
            "codec": "udp",
            "sigma": 1.5,
            "box_enlarge": 1.1,
            "rot_factor": 15.0,
        },
        "train": {
            "epochs": epochs,
            "batch_size": preset.batch_size,
            "lr_steps": steps,
            "amp": amp,
            "channels_last": True,
            "num_workers": 2 if preset.minutes > 0 else 0,
            "val_interval": max(1, epochs),
        },
        "test": {"batch_size": 64, "flip": True, "flip_shift": "exact", "decode": "dark", "boxes": "gt"},
    }


def build_steps(out: Path, preset: DemoPreset, checkpoint: str | None) -> list[CommandStep]:
    """The demo's commands in order (training is left out when a checkpoint is given)."""
    data, cfg = out / "data", out / "demo_config.yaml"
    w, h = preset.image_size
    # --overwrite: a step that runs again (its marker missing after a kill) replaces its partial split
    size = ["--width", str(w), "--height", str(h), "--quiet", "--overwrite"]
    ckpt = checkpoint or str(out / "train" / "best.pth")
    steps = synth_steps(data, preset.train_images, preset.val_images, w, h)
    if checkpoint is None:
        steps.append(
            CommandStep(
                "train",
                "Train a SimpleBaseline (ResNet-18) from scratch",
                ["train", str(cfg), "--work-dir", str(out / "train")],
                [out / "train" / "best.pth"],
            )
        )
    pictures = [str(data / "images" / "val" / f"{i:012d}.jpg") for i in range(1, preset.pictures + 1)]
    clip = out / "clip"
    video = clip / "videos" / "demo" / "000001_synthetic.mp4"
    predict_out = ["--out", str(out / "predict" / "predictions.json"), "--vis", str(out / "predict")]
    track_out = ["--out", str(out / "track" / "tracks.json"), "--vis", str(out / "track" / "tracked.mp4")]
    clip_args = ["--video", "--num-videos", "1", "--frames", str(preset.clip_frames), "--layout", "coco"]
    steps += [
        CommandStep(
            "eval",
            "Score it on the held-out split (COCO AP, GT boxes, flip test)",
            ["eval", str(cfg), "--checkpoint", ckpt, "--out-dir", str(out / "eval")],
            [out / "eval" / "eval_meta.json"],
        ),
        CommandStep(
            "predict",
            "Predict and draw skeletons on held-out images (person boxes: the split's GT boxes)",
            [
                "predict",
                *pictures,
                "--checkpoint",
                ckpt,
                "--boxes",
                str(out / "val_boxes.json"),
                *predict_out,
            ],
            [out / "predict" / "predictions.json"],
        ),
        CommandStep(
            "synth_clip",
            "Draw a short synthetic clip with moving, crossing people (and noisy detections)",
            ["synth", str(clip), *clip_args, "--split", "demo", "--mp4", *size],
            [video],
        ),
        CommandStep(
            "track",
            "Track the people of the clip (flow-based tracker, the clip's detections)",
            [
                "track",
                str(video),
                "--checkpoint",
                ckpt,
                "--boxes",
                str(clip / "annotations" / "demo_human_detections.json"),
                *track_out,
            ],
            [out / "track" / "tracked.mp4"],
        ),
    ]
    return steps


def write_gt_boxes(ann: Path, path: Path, limit: int) -> Path:
    """The GT person boxes of the first ``limit`` images of a COCO file as a detection-results json
    (score 1), so the demo's pictures show the network's poses rather than a detector's misses."""
    data = load_json(ann, "annotation")
    ids = sorted(int(img["id"]) for img in data["images"])[:limit]
    dets = [
        {"image_id": int(a["image_id"]), "category_id": 1, "bbox": a["bbox"], "score": 1.0}
        for a in data["annotations"]
        if int(a["image_id"]) in ids and not a.get("iscrowd", 0)
    ]
    return atomic_write_json(path, dets)


def run_demo(
    out: str | Path = "heatpose_demo",
    preset_name: str = "standard",
    minutes: float | None = None,
    checkpoint: str | None = None,
    run_command: Callable[[list[str]], int] | None = None,
) -> Path:
    """Run every demo step not yet done and write ``OUT/index.html``; returns its path."""
    from heatpose.cli import main as cli_main

    run_command = run_command or cli_main
    if preset_name not in PRESETS:
        raise HeatposeError(f"unknown demo preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[preset_name]
    if minutes is not None:
        if not minutes > 0:
            raise HeatposeError(f"--minutes must be > 0, got {minutes}")
        preset = DemoPreset(**{**preset.__dict__, "minutes": float(minutes)})
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise HeatposeError(f"checkpoint not found: {checkpoint}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = build_steps(out, preset, checkpoint)
    total = preset.minutes + (0.0 if checkpoint is None else -preset.minutes)
    print(
        f"heatpose demo: about {max(1.0, total + 1.5):.0f} minutes on this machine "
        f"({preset_name} preset); everything goes to {out}",
        file=sys.stderr,
    )
    started = time.perf_counter()

    def prepare(step: CommandStep) -> None:
        if step.name == "train":
            _write_config(out, preset)
        elif step.name == "predict":
            ann = out / "data" / "annotations" / "person_keypoints_val.json"
            write_gt_boxes(ann, out / "val_boxes.json", preset.pictures)

    run_steps(out, steps, f"heatpose demo --out {shlex.quote(str(out))}", prepare, run_command)
    report = write_report(out, steps)
    print(f"demo: done in {time.perf_counter() - started:.0f} s; open {report}", file=sys.stderr)
    return report


def _write_config(out: Path, preset: DemoPreset) -> None:
    import yaml

    from heatpose.budget import epochs_for_budget, people_in, probe_samples_per_s
    from heatpose.config import config_from_dict

    cfg_path = out / "demo_config.yaml"
    if cfg_path.is_file() and (out / "train" / "latest.pth").is_file():
        return  # resuming: keep the config the run started with
    people = people_in(out / "data" / "annotations" / "person_keypoints_train.json")
    speed = probe_samples_per_s(config_from_dict(demo_config(out, preset, 1))) if preset.minutes > 0 else 1.0
    epochs = epochs_for_budget(preset.minutes, people, speed)
    print(
        f"demo: {people} training people at ~{speed:.0f} samples/s: {epochs} epochs "
        f"fit {preset.minutes:g} minutes",
        file=sys.stderr,
    )
    text = yaml.safe_dump(demo_config(out, preset, epochs), sort_keys=False)
    atomic_write_text(cfg_path, "# written by heatpose demo\n" + text)


def _metrics(out: Path) -> dict:
    meta = load_json(out / "eval" / "eval_meta.json", "evaluation metadata")
    return {k: v for k, v in meta.get("metrics", {}).items()}


def write_report(out: Path, steps: list[CommandStep]) -> Path:
    """``metrics.json`` and ``index.html``: metrics table, curves, pictures and every command."""
    metrics = _metrics(out)
    atomic_write_json(out / "metrics.json", metrics, indent=2)
    curves = out / "train" / "curves.png"
    if curves.is_file():
        shutil.copyfile(curves, out / "curves.png")
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{'n/a' if v is None or v != v or v < 0 else f'{v:.4f}'}</td></tr>"
        for k, v in metrics.items()
    )
    cmds = "".join(
        f"<li><b>{html.escape(s.title)}</b><pre>{html.escape(s.command)}</pre></li>" for s in steps
    )
    pictures = sorted((out / "predict").glob("*.jpg")) + sorted((out / "predict").glob("*.png"))
    imgs = "".join(
        f'<img src="{html.escape(p.relative_to(out).as_posix())}" width="320">' for p in pictures[:8]
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>heatpose demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 10px;"
        "text-align:left}pre{background:#f4f4f4;padding:6px;white-space:pre-wrap}</style></head><body>",
        "<h1>heatpose demo</h1>",
        "<h2>Held-out COCO keypoint metrics (GT boxes, flip test)</h2>",
        f"<table id='metrics'>{rows}</table>",
    ]
    if (out / "curves.png").is_file():
        parts.append("<h2>Training curves</h2><img src='curves.png' width='100%'>")
    if imgs:
        parts.append(f"<h2>Predictions on held-out images</h2>{imgs}")
    tracked = out / "track" / "tracked.mp4"
    if tracked.is_file():
        frames = "".join(
            f'<img src="{html.escape(p.relative_to(out).as_posix())}" width="260">'
            for p in clip_frames(tracked, out / "track" / "frames", 4)
        )
        parts.append(
            "<h2>Tracked clip</h2><p>Each track in its own colour with its id "
            "(<a href='track/tracked.mp4'>the whole clip</a>, "
            f"<a href='track/tracks.json'>PoseTrack json</a>).</p>{frames}"
        )
    parts.append(f"<h2>Reproduce every step</h2><ol>{cmds}</ol></body></html>")
    return atomic_write_text(out / "index.html", "\n".join(parts) + "\n")


def clip_frames(video: Path, folder: Path, count: int) -> list[Path]:
    """``count`` evenly spaced frames of ``video`` as JPEGs (browsers may not play OpenCV's mp4v)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = {round(i * (total - 1) / max(1, count - 1)) for i in range(count)} if total > 0 else set()
    paths, index = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            ok, buf = cv2.imencode(".jpg", frame)
            if ok:
                paths.append(atomic_write_bytes(folder / f"frame_{index:04d}.jpg", buf.tobytes()))
        index += 1
    cap.release()
    return paths


def metrics_from_report(index_html: str | Path) -> dict[str, str]:
    """The metrics table of a report, as printed (for tests and users comparing runs)."""
    import re

    text = Path(index_html).read_text()
    table = re.search(r"<table id='metrics'>(.*?)</table>", text, re.S)
    if table is None:
        raise HeatposeError(f"{index_html}: no metrics table")
    return dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table.group(1)))


def load_metrics(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
