"""``heatpose reproduce TABLE``: a seed paper's ablation table, re-run on synthetic data in one command.

Why: the papers' tables were measured on COCO / MPII / PoseTrack with GPUs for days; a reader
who wants to see whether a trend holds (bigger input > deeper backbone > more deconv layers >
kernel size) needs the same rows run the same way, at a budget a laptop affords. Every row
here trains for the same wall-clock budget on this machine (``--minutes-per-row``; epochs come
from a timed probe of that row's model, :mod:`heatpose.budget`), on one shared synthetic
dataset, and is scored the same way; rows that share a budget are comparable, and a cheaper
model gets more epochs, which is part of the comparison.

Outputs in ``OUT``: ``table.md`` (our numbers beside the paper's), ``table.png``,
``results.json``, and per row a work dir with the config, logs, curves and checkpoints. Every
row is a sequence of heatpose commands (:mod:`heatpose.steps`), printed in ``table.md``;
an interrupted run continues where it stopped.
"""

from __future__ import annotations

import copy
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write, atomic_write_json, atomic_write_text, load_json
from heatpose.steps import (
    CommandStep,
    check_minutes_per_row,
    pick_rows,
    run_steps,
    step_seconds,
    synth_steps,
    train_eval_steps,
)


@dataclass(frozen=True)
class TableRow:
    """One row: what changes against the base config, and the paper's row it stands for."""

    name: str
    label: str
    overrides: dict[str, Any]
    paper_row: str
    paper_value: float | None


@dataclass(frozen=True)
class Table:
    title: str
    metric: str  # the validation metric we report (COCO AP)
    paper_metric: str
    rows: tuple[TableRow, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


# Simple Baselines (Xiao et al., ECCV 2018), Table 1: COCO val2017 AP, ResNet-50, 256x192,
# 3 deconv layers x 256, kernel 4 unless the row says otherwise.
SB_TABLE1 = Table(
    title="Simple Baselines Table 1 (ablation), re-run on synthetic people",
    metric="AP",
    paper_metric="COCO val2017 AP",
    rows=(
        TableRow(
            "base", "R-18, 128x96, 3 deconv x 256, kernel 4", {}, "a) R-50, 256x192, 3 x 256, k 4", 70.4
        ),
        TableRow(
            "layers2", "2 deconv layers", {"model": {"num_deconv_layers": 2}}, "b) 2 deconv layers", 67.9
        ),
        TableRow(
            "layers1", "1 deconv layer", {"model": {"num_deconv_layers": 1}}, "(not in the paper)", None
        ),
        TableRow("kernel2", "deconv kernel 2", {"model": {"deconv_kernel": 2}}, "c) kernel 2", 70.1),
        TableRow("kernel3", "deconv kernel 3", {"model": {"deconv_kernel": 3}}, "d) kernel 3", 70.3),
        TableRow("depth34", "ResNet-34", {"model": {"backbone_depth": 34}}, "e) ResNet-101", 71.4),
        TableRow("depth50", "ResNet-50", {"model": {"backbone_depth": 50}}, "f) ResNet-152", 72.0),
        TableRow("input96x64", "input 96x64", {"data": {"input_size": [64, 96]}}, "g) input 128x96", 60.6),
        TableRow(
            "input192x128", "input 192x128", {"data": {"input_size": [128, 192]}}, "h) input 384x288", 72.2
        ),
    ),
    notes=(
        "Backbones: ResNet-18 / 34 / 50 from scratch stand in for the paper's ImageNet-initialised "
        "50 / 101 / 152, which do not fit a CPU budget.",
        "Input sizes: the network needs multiples of 32, so the low and high rows use a 2:3 crop (96x64, "
        "192x128) against the base row's 4:3 (128x96); boxes are padded to each row's aspect.",
        "Every row trains for the same minutes; a cheaper row gets more epochs.",
    ),
)

TABLES: dict[str, Table] = {"sb-table1": SB_TABLE1}


def base_config(data: Path) -> dict[str, Any]:
    """The synthetic 128x96 recipe (configs/synthetic/res18_128x96_d256x3_adam_lr1e-3.yaml) on ``data``."""
    return {
        "model": {
            "backbone_depth": 18,
            "num_deconv_layers": 3,
            "num_deconv_filters": 256,
            "deconv_kernel": 4,
        },
        "data": {
            "train_ann": str(data / "annotations" / "person_keypoints_train.json"),
            "train_images": str(data / "images" / "train"),
            "val_ann": str(data / "annotations" / "person_keypoints_val.json"),
            "val_images": str(data / "images" / "val"),
            "input_size": [96, 128],
            "subpixel_targets": True,
            "box_enlarge": 1.1,
            "rot_factor": 15.0,
        },
        "train": {"batch_size": 32, "amp": "auto", "channels_last": True, "num_workers": 2},
        "test": {"batch_size": 64, "flip": True, "flip_shift": "exact", "decode": "dark", "boxes": "gt"},
    }


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for section, values in overrides.items():
        out.setdefault(section, {}).update(values)
    return out


def row_config(data: Path, row: TableRow, epochs: int) -> dict[str, Any]:
    cfg = _merge(base_config(data), row.overrides)
    steps = [max(1, round(epochs * 0.7)), max(1, round(epochs * 0.9))] if epochs >= 4 else [epochs + 1]
    cfg["train"].update({"epochs": epochs, "lr_steps": steps, "val_interval": epochs})
    return cfg


def _write_row_config(out: Path, data: Path, row: TableRow, minutes: float) -> Path:
    import yaml

    from heatpose.budget import epochs_for_budget, people_in, probe_samples_per_s
    from heatpose.config import config_from_dict

    path = out / "rows" / row.name / "config.yaml"
    if path.is_file() and (path.parent / "train" / "latest.pth").is_file():
        return path  # resuming a started row: keep its epochs
    people = people_in(data / "annotations" / "person_keypoints_train.json")
    speed = probe_samples_per_s(config_from_dict(row_config(data, row, 1))) if minutes > 0 else 1.0
    epochs = epochs_for_budget(minutes, people, speed)
    header = f"# heatpose reproduce: row {row.name} ({row.label}), {epochs} epochs = {minutes:g} min here\n"
    atomic_write_text(path, header + yaml.safe_dump(row_config(data, row, epochs), sort_keys=False))
    return path


def build_steps(
    out: Path, table: Table, rows: tuple[TableRow, ...], sizes: dict[str, int]
) -> list[CommandStep]:
    data = out / "data"
    steps = synth_steps(data, sizes["train"], sizes["val"], sizes["width"], sizes["height"])
    for row in rows:
        steps += train_eval_steps(row.name, row.label, out / "rows" / row.name)
    return steps


SIZES = {
    "standard": {"train": 1200, "val": 200, "width": 320, "height": 256},
    "tiny": {"train": 6, "val": 3, "width": 96, "height": 96},
}


def reproduce(
    table_name: str,
    out: str | Path,
    minutes_per_row: float = 2.0,
    only: list[str] | None = None,
    size: str = "standard",
    checkpoint: str | None = None,
) -> Path:
    """Run every row of ``table_name`` not yet done; write table.md, table.png and results.json."""
    if table_name == "sb-tracking":  # one trained model, tracked with each row's settings
        from heatpose.reproduce_tracking import reproduce_tracking

        return reproduce_tracking(out, minutes_per_row, only, size, checkpoint)
    if checkpoint is not None:
        raise HeatposeError(f"--checkpoint is for sb-tracking; {table_name} trains a model per row")
    if table_name == "cfa-stages":  # its own data, row dependencies and PCKh: heatpose/reproduce_cfa.py
        from heatpose.reproduce_cfa import reproduce_cfa_stages

        return reproduce_cfa_stages(out, minutes_per_row, only, size)
    if table_name not in TABLES:
        names = ", ".join([*TABLES, "sb-tracking", "cfa-stages"])
        raise HeatposeError(f"unknown table {table_name!r}; choose one of {names}")
    check_minutes_per_row(minutes_per_row)
    table = TABLES[table_name]
    rows = pick_rows(table.rows, only)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    steps = build_steps(out, table, rows, SIZES[size])
    by_name = {r.name: r for r in rows}
    print(
        f"heatpose reproduce {table_name}: {len(rows)} rows x {minutes_per_row:g} min of training "
        f"(about {len(rows) * (minutes_per_row + 0.7) + 1:.0f} minutes in all); output in {out}",
        file=sys.stderr,
    )

    def prepare(step: CommandStep) -> None:
        if step.name.startswith("train_"):
            _write_row_config(out, data, by_name[step.name.removeprefix("train_")], minutes_per_row)

    resume = (
        f"heatpose reproduce {table_name} --out {shlex.quote(str(out))} --minutes-per-row {minutes_per_row:g}"
    )
    run_steps(out, steps, resume, prepare)
    results = collect_results(out, table, rows)
    atomic_write_json(out / "results.json", results, indent=2)
    atomic_write_text(out / "table.md", format_table(table, results, steps))
    plot_table(table, results, out / "table.png")
    print(f"wrote {out / 'table.md'} and {out / 'table.png'}", file=sys.stderr)
    return out / "table.md"


def collect_results(out: Path, table: Table, rows: tuple[TableRow, ...]) -> list[dict[str, Any]]:
    results = []
    for row in rows:
        meta = load_json(out / "rows" / row.name / "eval" / "eval_meta.json", "evaluation metadata")
        value = meta.get("metrics", {}).get(table.metric)
        epochs = meta.get("config", {}).get("train", {}).get("epochs")
        results.append(
            {
                "row": row.name,
                "label": row.label,
                "ours": None if value is None or value != value or value < 0 else float(value),
                "epochs": epochs,
                "train_s": step_seconds(out, f"train_{row.name}"),
                "paper_row": row.paper_row,
                "paper": row.paper_value,
            }
        )
    return results


def format_table(table: Table, results: list[dict[str, Any]], steps: list[CommandStep]) -> str:
    lines = [
        f"# {table.title}",
        "",
        f"| row | change | ours: synthetic {table.metric} | epochs | train s | paper row "
        f"| paper {table.paper_metric} |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ours = "n/a" if r["ours"] is None else f"{r['ours']:.3f}"
        paper = "-" if r["paper"] is None else f"{r['paper']:.1f}"
        secs = "-" if r["train_s"] is None else f"{r['train_s']:.0f}"
        lines.append(
            f"| {r['row']} | {r['label']} | {ours} | {r['epochs']} | {secs} | {r['paper_row']} | {paper} |"
        )
    lines += ["", *[f"- {n}" for n in table.notes], "", "Commands:", "", "```bash"]
    lines += [s.command for s in steps]
    lines += ["```", ""]
    return "\n".join(lines)


def plot_table(table: Table, results: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in results]
    ours = [r["ours"] if r["ours"] is not None else 0.0 for r in results]
    known = [r["paper"] for r in results if r["paper"] is not None]
    floor = min(known or [0.0]) - 15
    paper = [r["paper"] if r["paper"] is not None else floor for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(results) + 1.6), sharey=True)
    ys = list(range(len(results)))[::-1]
    axes[0].barh(ys, ours, color="tab:blue")
    axes[0].set(title=f"ours: synthetic {table.metric} (same minutes per row)", yticks=ys, yticklabels=labels)
    axes[0].set_xlim(0, 1.08)
    for y, r, v in zip(ys, results, ours, strict=True):
        axes[0].text(v, y, " n/a" if r["ours"] is None else f" {r['ours']:.3f}", va="center")
    axes[1].barh(ys, paper, color="tab:gray")
    axes[1].set(title=f"paper: {table.paper_metric}", xlim=(floor, max(known or [1.0]) + 8))
    for y, r, v in zip(ys, results, paper, strict=True):
        axes[1].text(v, y, " not in the paper" if r["paper"] is None else f" {r['paper']:.1f}", va="center")
    fig.suptitle(table.title)
    fig.tight_layout()
    written = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close(fig)
    return written
