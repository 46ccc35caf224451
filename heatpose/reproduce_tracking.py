"""``heatpose reproduce sb-tracking``: the Simple Baselines tracker ablation, with a model trained here.

Why: the paper's tracking ablation (Xiao et al., ECCV 2018: box propagation on/off x
similarity box IoU / OKS / flow-OKS / multi-flow) is the half of the paper whose code was never
released. ``benchmarks/tracking_ablation.py`` runs it with oracle poses (ground truth plus noise),
which isolates the association; this table runs it the way a user would: one SimpleBaseline
trained here on synthetic stills (the demo's recipe, :func:`heatpose.demo.demo_config`, sized to
``--minutes-per-row`` minutes by :mod:`heatpose.budget`), or any COCO-17 checkpoint given with
``--checkpoint``, tracks synthetic clips (``heatpose synth --video --layout coco``) with the
generator's noisy detections (boxes scoring >= 0.5), and every row scores the same model's tracks
with poseval's metrics. Only the tracker settings change between rows.

Every step is a heatpose command (:mod:`heatpose.steps`): ``synth``, ``train``, ``eval`` (the
model's AP on held-out stills, for context), ``synth --video``, then per row one ``track`` of every
clip (one model load) with the row's ``--tracker`` settings and two ``score --metric posetrack``
(poseval-compat and corrected). Outputs in ``OUT``: ``table.md`` (ours beside the paper's mAP /
MOTA), ``table.png``, ``results.json``, ``model.json`` (which checkpoint the rows used) and per row
its tracks and scores. An interrupted run continues where it stopped; a different checkpoint in
the same ``OUT`` is refused, so rows never mix two models.

One model serves every row, so ``--minutes-per-row`` is that model's training budget (the rows
themselves only track and score: the pose network on every box, with flip test, about 22 ms a person
on an idle 2-core machine, docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heatpose.demo import PRESETS, DemoPreset, demo_config
from heatpose.errors import HeatposeError
from heatpose.io import atomic_write, atomic_write_json, atomic_write_text, load_json
from heatpose.steps import CommandStep, check_minutes_per_row, pick_rows, run_steps, step_seconds, synth_steps

TITLE = "Simple Baselines tracking ablation, re-run on synthetic clips with a model trained here"
PAPER_SETTING = "PoseTrack 2017 val, ResNet-50 at 256x192, FPN-DCN detector (Xiao et al. 2018)"
# Every row: the paper's detector threshold (the tracker's default, spelled out in the commands).
COMMON_SETTINGS = ("det_score_thr=0.5",)
CLIP_SEED = 100  # the clips of benchmarks/tracking_ablation.py (there in PoseTrack layout)
SPLIT = "val"


@dataclass(frozen=True)
class TrackingRow:
    """One row of the ablation: the tracker settings it changes and the paper's numbers for it."""

    name: str
    label: str
    similarity: str  # TrackerConfig.similarity
    propagate: bool  # TrackerConfig.propagate
    paper_map: float
    paper_mota: float

    @property
    def tracker_settings(self) -> list[str]:
        """The row's ``--tracker KEY=VALUE`` values for ``heatpose track``."""
        return [*COMMON_SETTINGS, f"similarity={self.similarity}", f"propagate={str(self.propagate).lower()}"]


ROWS: tuple[TrackingRow, ...] = (  # the paper's table order; PoseTrack 2017 val mAP / MOTA
    TrackingRow("noprop_iou", "no propagation, box IoU", "box_iou", False, 69.3, 59.8),
    TrackingRow("noprop_oks", "no propagation, OKS", "oks", False, 69.3, 59.7),
    TrackingRow("prop_iou", "propagation, box IoU", "box_iou", True, 72.4, 62.1),
    TrackingRow("prop_oks", "propagation, OKS", "oks", True, 72.4, 61.8),
    TrackingRow("prop_flow", "propagation, flow-OKS", "flow_oks", True, 72.4, 62.4),
    TrackingRow("prop_multiflow", "propagation, multi-flow", "multi_flow", True, 72.4, 62.9),
)

NOTES = (
    "One model for every row: only the tracker settings differ (`--tracker` in the commands); the other "
    "tracker values are heatpose's defaults (L_Q 5, box NMS IoU 0.7, DIS flow; docs/tracking.md).",
    "Boxes: the synthetic generator's simulated detector (jitter, misses growing with occlusion, false "
    "positives), those scoring >= 0.5 used, as the paper's FPN-DCN boxes.",
    "AP and MOTA in %, poseval-compat mode (as published numbers) over the 17 COCO joints of the clips; "
    "MOTA (corrected) without poseval's two quirks; ID switches, misses and false positives summed over "
    "joints. Paper: " + PAPER_SETTING + "; its R-152 multi-flow row (76.7 / 65.4) needs a second model and "
    "is not re-run.",
    "AP ignores identities, so it can only change with box propagation (as in the paper).",
)


@dataclass(frozen=True)
class TrackingSize:
    """Data of one run: the training recipe (the demo's preset) and the clips tracked."""

    model: DemoPreset  # training images, image/crop size, deconv head, batch size
    clips: int
    frames: int
    clip_size: tuple[int, int]  # width, height


SIZES: dict[str, TrackingSize] = {
    # the demo's model (AP 0.724 on held-out stills after 7 min 45 s of training, docs/results.md) and
    # the 16 clips of the oracle ablation in docs/results.md
    "standard": TrackingSize(PRESETS["standard"], 16, 24, (320, 256)),
    # seconds: the test suite's setting (the numbers mean nothing)
    "tiny": TrackingSize(PRESETS["tiny"], 1, 4, (96, 96)),
}


def clip_names(size: TrackingSize) -> list[str]:
    return [f"{i:06d}_synthetic" for i in range(1, size.clips + 1)]


def build_steps(
    out: Path, rows: tuple[TrackingRow, ...], size: TrackingSize, checkpoint: str | None
) -> list[CommandStep]:
    """The commands in order: (synth, train, eval unless ``checkpoint``), the clips, then per row one
    ``track`` of every clip and its two scores."""
    data, clips = out / "data", out / "clips"
    ckpt = checkpoint or str(out / "train" / "best.pth")
    steps: list[CommandStep] = []
    if checkpoint is None:
        preset = size.model
        cfg = str(out / "train_config.yaml")
        steps += synth_steps(data, preset.train_images, preset.val_images, *preset.image_size)
        steps += [
            CommandStep(
                "train",
                "train the pose model every row uses (SimpleBaseline R-18, the demo's recipe)",
                ["train", cfg, "--work-dir", str(out / "train")],
                [out / "train" / "best.pth"],
            ),
            CommandStep(
                "eval",
                "score the model on held-out synthetic stills (COCO AP, GT boxes, for context)",
                ["eval", cfg, "--checkpoint", ckpt, "--out-dir", str(out / "eval")],
                [out / "eval" / "eval_meta.json"],
            ),
        ]
    w, h = size.clip_size
    size_args = ["--width", str(w), "--height", str(h), "--quiet", "--overwrite"]
    clip_args = ["--video", "--layout", "coco", "--num-videos", str(size.clips), "--frames", str(size.frames)]
    steps.append(
        CommandStep(
            "synth_clips",
            f"draw {size.clips} synthetic clips (COCO joints, noisy detections)",
            ["synth", str(clips), *clip_args, "--seed", str(CLIP_SEED), "--split", SPLIT, *size_args],
            [clips / "annotations" / f"{SPLIT}_human_detections.json"],
        )
    )
    dets = str(clips / "annotations" / f"{SPLIT}_human_detections.json")
    gt = str(clips / "annotations" / SPLIT)
    names = clip_names(size)
    for r, row in enumerate(rows, 1):
        row_dir = out / "rows" / row.name
        tracker = [*(a for s in row.tracker_settings for a in ("--tracker", s)), "--quiet"]
        tracks = row_dir / "tracks"
        frames = [str(clips / "images" / SPLIT / name) for name in names]
        to = tracks if len(names) > 1 else tracks / f"{names[0]}.json"  # one input: --out is the file
        steps.append(
            CommandStep(
                f"track_{row.name}",
                f"[row {r}/{len(rows)} {row.name}] track {len(names)} clip(s) ({row.label})",
                ["track", *frames, "--checkpoint", ckpt, "--boxes", dets, "--out", str(to), *tracker],
                [tracks / f"{name}.json" for name in names],
            )
        )
        for mode, flag in (("compat", "--poseval-compat"), ("corrected", "--no-poseval-compat")):
            score_dir, preds = row_dir / f"score_{mode}", str(row_dir / "tracks")
            steps.append(
                CommandStep(
                    f"score_{row.name}_{mode}",
                    f"[row {r}/{len(rows)} {row.name}] score the tracks ({mode})",
                    [
                        "score",
                        "--metric",
                        "posetrack",
                        "--gt",
                        gt,
                        "--preds",
                        preds,
                        flag,
                        "--out",
                        str(score_dir),
                    ],
                    [score_dir / "posetrack.json"],
                )
            )
    return steps


def _write_train_config(out: Path, preset: DemoPreset) -> Path:
    """The demo's config with the epochs that fit ``preset.minutes`` here (kept when resuming)."""
    import yaml

    from heatpose.budget import epochs_for_budget, people_in, probe_samples_per_s
    from heatpose.config import config_from_dict

    path = out / "train_config.yaml"
    if path.is_file() and (out / "train" / "latest.pth").is_file():
        return path  # resuming a started training: keep its epochs
    people = people_in(out / "data" / "annotations" / "person_keypoints_train.json")
    speed = probe_samples_per_s(config_from_dict(demo_config(out, preset, 1))) if preset.minutes > 0 else 1.0
    epochs = epochs_for_budget(preset.minutes, people, speed)
    header = (
        f"# heatpose reproduce sb-tracking: every row's model, {epochs} epochs = {preset.minutes:g} min\n"
    )
    return atomic_write_text(path, header + yaml.safe_dump(demo_config(out, preset, epochs), sort_keys=False))


def _claim_model(out: Path, checkpoint: str) -> None:
    """Record the checkpoint the rows use in ``OUT/model.json``; refuse a different one there."""
    path = out / "model.json"
    if path.is_file():
        before = load_json(path, "reproduce model record").get("checkpoint")
        if before != checkpoint:
            raise HeatposeError(
                f"{out} holds tracks of checkpoint {before}, not {checkpoint}; choose another --out"
            )
        return
    atomic_write_json(path, {"checkpoint": checkpoint}, indent=2)


def _check_schema(checkpoint: str, gt_dir: Path) -> None:
    """The clips carry COCO-17 joints: a checkpoint predicting other joints cannot be scored on them."""
    from heatpose.data.posetrack import read_posetrack
    from heatpose.tracking.estimator import load_pose_estimator

    _, schema, _ = load_pose_estimator(checkpoint)
    names = read_posetrack(gt_dir)[0].joint_names
    if tuple(schema.joint_names) != tuple(names):
        raise HeatposeError(
            f"{checkpoint}: predicts the {schema.num_joints} joints of schema {schema.name!r}; "
            f"sb-tracking scores the {len(names)} COCO joints of its clips, so it needs a COCO-17 model"
        )


def _quiet_stdout(argv: list[str]) -> int:
    """Run a heatpose command; ``track`` and ``score`` print tables their output files already hold."""
    from heatpose.cli import main as cli_main

    if argv[:1] in (["track"], ["score"]):
        with contextlib.redirect_stdout(io.StringIO()):
            return cli_main(argv)
    return cli_main(argv)


def reproduce_tracking(
    out: str | Path,
    minutes: float = 2.0,
    only: list[str] | None = None,
    size: str = "standard",
    checkpoint: str | None = None,
) -> Path:
    """Run every step of the tracker ablation not yet done; write table.md, table.png, results.json."""
    check_minutes_per_row(minutes)
    if size not in SIZES:
        raise HeatposeError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise HeatposeError(f"checkpoint not found: {checkpoint}")
    rows = pick_rows(ROWS, only)
    run_size = SIZES[size]
    run_size = dataclasses.replace(
        run_size, model=dataclasses.replace(run_size.model, minutes=float(minutes))
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = str(Path(checkpoint).resolve()) if checkpoint else str(out / "train" / "best.pth")
    _claim_model(out, ckpt)
    steps = build_steps(out, rows, run_size, ckpt if checkpoint else None)
    frames = len(rows) * run_size.clips * run_size.frames
    training = "" if checkpoint else f"{minutes:g} min of training, then "
    # ~70 ms a frame (3 people, flip test) on an idle 2-core machine; ~1 min to draw data and score
    total = (0.0 if checkpoint else minutes) + frames * 0.07 / 60 + 1
    print(
        f"heatpose reproduce sb-tracking: {training}{len(rows)} rows x {run_size.clips} clips "
        f"({frames} frames to track), about {total:.0f} minutes in all; output in {out}",
        file=sys.stderr,
    )
    checked: list[bool] = []

    def prepare(step: CommandStep) -> None:
        if step.name == "train":
            _write_train_config(out, run_size.model)
        elif step.name.startswith("track_") and not checked:
            _check_schema(ckpt, out / "clips" / "annotations" / SPLIT)
            checked.append(True)

    resume = f"heatpose reproduce sb-tracking --out {shlex.quote(str(out))} --minutes-per-row {minutes:g}"
    if checkpoint:
        resume += f" --checkpoint {shlex.quote(ckpt)}"
    run_steps(out, steps, resume, prepare, _quiet_stdout)
    results = collect_results(out, rows, run_size, ckpt, trained_here=checkpoint is None)
    atomic_write_json(out / "results.json", results, indent=2)
    atomic_write_text(out / "table.md", format_table(results, steps))
    plot_table(results, out / "table.png")
    print(f"wrote {out / 'table.md'} and {out / 'table.png'}", file=sys.stderr)
    return out / "table.md"


def _model_summary(out: Path, checkpoint: str, trained_here: bool) -> dict[str, Any]:
    model: dict[str, Any] = {"checkpoint": checkpoint, "trained_here": trained_here}
    if trained_here:
        meta = load_json(out / "eval" / "eval_meta.json", "evaluation metadata")
        ap = meta.get("metrics", {}).get("AP")
        cfg = meta.get("config", {})
        model.update(
            {
                "still_AP": None if ap is None or ap != ap or ap < 0 else float(ap),
                "epochs": cfg.get("train", {}).get("epochs"),
                "train_s": step_seconds(out, "train"),
                "backbone_depth": cfg.get("model", {}).get("backbone_depth"),
                "input_size": cfg.get("data", {}).get("input_size"),
            }
        )
    return model


def collect_results(
    out: Path, rows: tuple[TrackingRow, ...], size: TrackingSize, checkpoint: str, trained_here: bool
) -> dict[str, Any]:
    """``results.json``: the model, the clips and per row the poseval numbers of both modes."""
    results = []
    for row in rows:
        compat = load_json(out / "rows" / row.name / "score_compat" / "posetrack.json", "posetrack scores")
        fixed = load_json(out / "rows" / row.name / "score_corrected" / "posetrack.json", "posetrack scores")
        track_s = step_seconds(out, f"track_{row.name}")
        results.append(
            {
                "row": row.name,
                "label": row.label,
                "tracker": row.tracker_settings,
                "AP": compat["AP"],
                "MOTA": compat["MOTA"],
                "MOTA_corrected": fixed["MOTA"],
                "MOTP": compat["MOTP"],
                "switches": compat["num_switches"],
                "misses": compat["num_misses"],
                "false_positives": compat["num_false_positives"],
                "objects": compat["num_objects"],
                "track_s": track_s,
                "paper_mAP": row.paper_map,
                "paper_MOTA": row.paper_mota,
            }
        )
    clips = {"count": size.clips, "frames": size.frames, "size": list(size.clip_size), "seed": CLIP_SEED}
    return {"model": _model_summary(out, checkpoint, trained_here), "clips": clips, "rows": results}


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(results: dict[str, Any], steps: list[CommandStep]) -> str:
    model, clips = results["model"], results["clips"]
    if model["trained_here"]:
        w, h = model["input_size"] or (0, 0)
        about = (
            f"SimpleBaseline R-{model['backbone_depth']} at {h}x{w}, trained here from scratch for "
            f"{model['epochs']} epoch(s) ({_num(model['train_s'], 0)} s) on synthetic stills; "
            f"held-out still AP {_num(model['still_AP'], 3)} (GT boxes, flip test)"
        )
    else:
        about = f"the checkpoint {model['checkpoint']}"
    lines = [
        f"# {TITLE}",
        "",
        f"Model: {about}. Clips: {clips['count']} synthetic clip(s) x {clips['frames']} frames at "
        f"{clips['size'][0]}x{clips['size'][1]} (seed {clips['seed']}), COCO-17 joints.",
        "",
        "| row | setting | ours: AP | ours: MOTA | MOTA (corrected) | ID switches | misses | FP | track s "
        "| paper mAP | paper MOTA |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['row']} | {r['label']} | {_num(r['AP'])} | {_num(r['MOTA'])} "
            f"| {_num(r['MOTA_corrected'])} | {r['switches']} | {r['misses']} | {r['false_positives']} "
            f"| {_num(r['track_s'], 0)} "
            f"| {r['paper_mAP']:.1f} | {r['paper_MOTA']:.1f} |"
        )
    lines += ["", *[f"- {n}" for n in NOTES], "", "Commands:", "", "```bash"]
    lines += [s.command for s in steps]
    lines += ["```", ""]
    return "\n".join(lines)


def plot_table(results: dict[str, Any], path: Path) -> Path:
    """Three panels per row: our AP and MOTA, our ID switches, the paper's mAP and MOTA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = results["rows"]
    labels = [r["label"] for r in rows]
    ys = np.arange(len(rows))[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.55 * len(rows) + 1.8), sharey=True)

    def pair(ax, first, second, names, colours, title, xlim):
        for offset, values, name, colour in zip((0.2, -0.2), (first, second), names, colours, strict=True):
            shown = [v if v is not None else 0.0 for v in values]
            ax.barh(ys + offset, shown, height=0.38, color=colour, label=name)
            for y, v in zip(ys + offset, values, strict=True):
                ax.text(
                    max(v or 0.0, xlim[0]), y, " n/a" if v is None else f" {v:.1f}", va="center", fontsize=8
                )
        ax.set(title=title, xlim=xlim)
        ax.axvline(0.0, color="black", linewidth=0.6)
        ax.legend(loc="lower right", fontsize=8)

    ours = [v for r in rows for v in (r["AP"], r["MOTA"]) if v is not None]
    low = min([0.0, *ours])
    pair(
        axes[0],
        [r["AP"] for r in rows],
        [r["MOTA"] for r in rows],
        ("AP", "MOTA"),
        ("tab:cyan", "tab:blue"),
        "ours: synthetic clips, one trained model (%)",
        (low, 112),
    )
    axes[0].set(yticks=ys, yticklabels=labels)
    switches = [r["switches"] for r in rows]
    axes[1].barh(ys, switches, color="tab:red")
    for y, v in zip(ys, switches, strict=True):
        axes[1].text(v, y, f" {v}", va="center", fontsize=8)
    axes[1].set(title="ours: ID switches (summed over joints)", xlim=(0, max([1, *switches]) * 1.2))
    pair(
        axes[2],
        [r["paper_mAP"] for r in rows],
        [r["paper_MOTA"] for r in rows],
        ("mAP", "MOTA"),
        ("silver", "tab:gray"),
        "paper: PoseTrack 2017 val, R-50 (%)",
        (50, 80),
    )
    fig.suptitle(TITLE)
    fig.tight_layout()
    written = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close(fig)
    return written
