"""``heatpose reproduce cfa-stages``: CFA's stage, aggregation and extra-data ablations on synthetic people.

Why: the CFA paper (Su et al. 2019) makes four claims a reader may want to see for themselves:
more stages help, a little, on MPII alone; cross-stage feature aggregation helps; more than 3
randomly initialised stages train badly, so the recipe trains 3 and grows the cascade; extra
data (MPII + AI Challenger, keypoints mapped between the schemas) makes more stages pay off.
This table re-runs those rows the way :mod:`heatpose.reproduce` runs Simple Baselines' table:
every row trains for the same wall-clock budget on this machine (epochs from a timed probe of
that row's model, :mod:`heatpose.budget`), on one shared synthetic dataset in the MPII layout,
scored by PCKh@0.5 as MPII is (flip test, the annotated centre and scale, head boxes).

What differs from ``sb-table1``, and why it has its own runner here:
- the data: ``heatpose synth --layout mpii`` for the training and validation splits, plus a
  COCO-layout split drawn with another seed as the "extra" set, mapped onto the 16 MPII joints
  through ``data.train_sets`` (joints COCO lacks get target weight 0), as the paper adds AI Challenger;
- rows depend on each other: a grown row (``model.init_from``) starts from another row's
  trained checkpoint, so selecting it with ``--rows`` also runs the row it grows from;
- the table shows per-stage PCKh (the training's final validation scores every stage alone)
  and says, from the numbers it prints, which of the paper's trends it reproduces.

The paper reports these ablations as trends, not as numbers we could check; its one number
is the final model's MPII test PCKh@0.5 93.9, shown beside the row that stands for it.
"""

from __future__ import annotations

import math
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write, atomic_write_json, atomic_write_text
from heatpose.reproduce import Table, TableRow, _merge, collect_results
from heatpose.steps import CommandStep, check_minutes_per_row, pick_rows, run_steps, train_eval_steps

NAME = "cfa-stages"


def _stages(n: int, aggregate: bool = True) -> dict[str, Any]:
    """Model overrides of an n-stage cascade; fusion as configs/cfa/: last 1, 2, 2, 3 stages."""
    return {"model": {"num_stages": n, "fuse_last_k": {1: 1, 2: 2, 3: 2}.get(n, 3), "aggregate": aggregate}}


CFA_STAGES = Table(
    title="CFA stages, aggregation and extra data (Su et al. 2019), re-run on synthetic people",
    metric="PCKh",
    paper_metric="MPII PCKh@0.5",
    rows=(
        TableRow("s1", "S = 1", _stages(1), "1 stage: the reference", None),
        TableRow("s2", "S = 2, aggregation", _stages(2), "more stages help a little on MPII alone", None),
        TableRow("s3", "S = 3, aggregation", _stages(3), "3 stages: the recipe's first phase", None),
        TableRow(
            "s4",
            "S = 4, aggregation, all from scratch",
            _stages(4),
            "> 3 random stages: no convergence",
            None,
        ),
        TableRow("s4_grow", "S = 4 grown from row s3", _stages(4), "grow 3 -> 4: the recipe", None),
        TableRow("s2_noagg", "S = 2, no aggregation", _stages(2, False), "no aggregation: worse", None),
        TableRow("s3_noagg", "S = 3, no aggregation", _stages(3, False), "no aggregation: worse", None),
        TableRow("s3_extra", "S = 3, + extra data", _stages(3), "+ AI Challenger (mapped)", None),
        TableRow(
            "s4_grow_extra",
            "S = 4 grown from row s3_extra, + extra data",
            _stages(4),
            "final model (grown, MPII + AIC), MPII test",
            93.9,
        ),
    ),
    notes=(
        "ResNet-18 stages from scratch at 64x64 (16x16 heatmaps, 32 decoder filters) stand in for the "
        "paper's ImageNet-initialised ResNet-101 stages at 256x256 (configs/cfa/*_synthetic_*.yaml).",
        "Every row trains for the same minutes here, so a deeper cascade gets fewer epochs; the paper "
        "trained every model to convergence. A grown row trains its own minutes on top of the row it "
        "starts from (twice the budget in all), as the paper's recipe spends more on grown models too.",
        "Extra data: a COCO-layout synthetic split (another seed, as many images as the training split), "
        "mapped onto the 16 MPII joints by data.train_sets (pelvis, thorax, upper neck and head top get "
        "target weight 0) and mixed 1:1 per epoch, standing in for AI Challenger.",
        "The paper states these ablations as trends; its only number is the final model's MPII test "
        "PCKh@0.5, 93.9 (a grown cascade of ResNet stages, MPII + AI Challenger, flip test).",
        "Single runs, no repeated seeds: differences under the noise band below are not evidence either way.",
    ),
)

EXTRA_DATA_ROWS = frozenset({"s3_extra", "s4_grow_extra"})
GROWN_FROM = {"s4_grow": "s3", "s4_grow_extra": "s3_extra"}

# A difference of two single-run rows smaller than this (PCKh points) is called "within noise": a
# guess, not a measurement (no repeated seeds); a difference of differences gets sqrt(2) times it.
NOISE_PCKH = 2.0


@dataclass(frozen=True)
class Trend:
    """A claim of the paper, tested as ``sum(rows plus) - sum(rows minus) > 0`` on our PCKh."""

    claim: str
    plus: tuple[str, ...]
    minus: tuple[str, ...]
    caveat: str = ""


TRENDS = (
    Trend("more stages help (a little) on MPII alone: S = 2 > S = 1", ("s2",), ("s1",)),
    Trend("more stages help (a little) on MPII alone: S = 3 > S = 2", ("s3",), ("s2",)),
    Trend("cross-stage aggregation helps: S = 2", ("s2",), ("s2_noagg",)),
    Trend("cross-stage aggregation helps: S = 3", ("s3",), ("s3_noagg",)),
    Trend(
        "4 random stages train worse than 4 grown from 3",
        ("s4_grow",),
        ("s4",),
        "the grown row had twice the training time",
    ),
    Trend("extra (mapped) data helps: S = 3", ("s3_extra",), ("s3",)),
    Trend(
        "extra data makes more stages pay off: (S4 grown - S3) larger with extra data",
        ("s4_grow_extra", "s3"),
        ("s3_extra", "s4_grow"),
    ),
)

# Images per split, image size, network input and loader workers. Tiny is the tests' setting: 32x32
# crops (the same networks, a quarter of the convolution work) and data loaded in the main process,
# since starting loader workers for each of a few one-batch passes costs more than the passes.
SIZES = {
    "standard": {
        "train": 300,
        "val": 150,
        "extra": 300,
        "width": 128,
        "height": 128,
        "input": 64,
        "workers": 2,
    },
    "tiny": {"train": 6, "val": 3, "extra": 6, "width": 96, "height": 96, "input": 32, "workers": 0},
}


def base_config(data: Path) -> dict[str, Any]:
    """The synthetic CFA recipe (configs/cfa/res18_64x64_d32x3_adam_lr1e-3_synthetic_s3.yaml) on ``data``."""
    ann = data / "annotations"
    return {
        "model": {
            "arch": "cfa",
            "backbone_depth": 18,
            "num_joints": 16,
            "num_deconv_layers": 3,
            "num_deconv_filters": 32,
            "deconv_kernel": 4,
            "stage_type": "resnet",
            "stage_input": "image",
        },
        "data": {
            "dataset": "mpii",
            "schema": "mpii",
            "train_ann": str(ann / "mpii_train.json"),
            "train_images": str(data / "images" / "train"),
            "val_ann": str(ann / "mpii_val.json"),
            "val_images": str(data / "images" / "val"),
            "input_size": [64, 64],  # the tiny setting: 32x32
            "sigma": 2.0,
            "scale_factor": 0.25,
            "rot_factor": 30.0,
        },
        "train": {
            "batch_size": 32,
            "lr": 1e-3,
            "amp": "none",
            "save_metric": "PCKh",
            "stage_weights": [],  # every stage supervised with weight 1
            "val_per_stage": True,
        },
        "test": {"batch_size": 64, "flip": True, "flip_shift": "official", "decode": "argmax", "boxes": "gt"},
    }


def extra_train_sets(data: Path) -> list[dict[str, Any]]:
    """``data.train_sets`` of an extra-data row: the MPII-layout split + the COCO-layout one, 1:1."""
    ann, images = data / "annotations", data / "images"
    return [
        {"dataset": "mpii", "schema": "mpii", "ann": str(ann / "mpii_train.json"),
         "images": str(images / "train"), "ratio": 1.0},
        {"dataset": "coco", "schema": "coco", "ann": str(ann / "person_keypoints_extra.json"),
         "images": str(images / "extra"), "ratio": 1.0},
    ]  # fmt: skip


def grown_checkpoint(out: Path, row_name: str) -> Path:
    """The checkpoint a grown row starts from: the best one of the row it grows from."""
    return out / "rows" / GROWN_FROM[row_name] / "train" / "best.pth"


def row_config(out: Path, row: TableRow, epochs: int, size: str = "standard") -> dict[str, Any]:
    """The full config of ``row`` trained for ``epochs`` on ``out/data`` (lr x0.1 at 70 % and 90 %)."""
    data = out / "data"
    cfg = _merge(base_config(data), row.overrides)
    cfg["data"]["input_size"] = [SIZES[size]["input"]] * 2
    if row.name in EXTRA_DATA_ROWS:
        cfg["data"]["train_sets"] = extra_train_sets(data)
    if row.name in GROWN_FROM:
        cfg["model"]["init_from"] = str(grown_checkpoint(out, row.name))
    steps = [max(1, round(epochs * 0.7)), max(1, round(epochs * 0.9))] if epochs >= 4 else [epochs + 1]
    cfg["train"].update(
        {"epochs": epochs, "lr_steps": steps, "val_interval": epochs, "num_workers": SIZES[size]["workers"]}
    )
    return cfg


def train_people(data: Path, row: TableRow) -> int:
    """People one epoch of ``row`` trains on (the extra split's too: a mixed epoch has all sets)."""
    from heatpose.budget import people_in

    splits = ("train", "extra") if row.name in EXTRA_DATA_ROWS else ("train",)
    return sum(people_in(data / "annotations" / f"person_keypoints_{s}.json") for s in splits)


def _write_row_config(out: Path, row: TableRow, minutes: float, size: str) -> Path:
    import yaml

    from heatpose.budget import epochs_for_budget, probe_samples_per_s
    from heatpose.config import config_from_dict

    path = out / "rows" / row.name / "config.yaml"
    if path.is_file() and (path.parent / "train" / "latest.pth").is_file():
        return path  # resuming a started row: keep its epochs
    if row.name in GROWN_FROM and not grown_checkpoint(out, row.name).is_file():
        raise HeatposeError(
            f"row {row.name} grows from row {GROWN_FROM[row.name]}, whose checkpoint "
            f"{grown_checkpoint(out, row.name)} is missing"
        )
    probe_cfg = row_config(out, row, 1, size)
    probe_cfg["model"]["init_from"] = ""  # the probe times the architecture; no weights needed
    speed = probe_samples_per_s(config_from_dict(probe_cfg)) if minutes > 0 else 1.0
    people = train_people(out / "data", row)
    # Deep cascades fit one or two epochs in a minute or two, so round to the nearest epoch (half an
    # epoch more budget, floored) and allow a single one: flooring or a 2-epoch minimum would give
    # some rows half and others twice the minutes of the rest.
    half_epoch_min = 0.5 * people / speed / 60 if minutes > 0 else 0.0
    epochs = epochs_for_budget(minutes + half_epoch_min, people, speed, minimum=1)
    header = (
        f"# heatpose reproduce {NAME}: row {row.name} ({row.label}), {epochs} epochs = {minutes:g} min here\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(row_config(out, row, epochs, size), sort_keys=False))
    return path


def data_steps(data: Path, size: dict[str, int]) -> list[CommandStep]:
    """``heatpose synth``: MPII-layout training (seed 0) and validation (seed 1) splits, and the
    COCO-layout extra split (seed 2). ``--overwrite``: a rerun step replaces its partial split."""
    wh = ["--width", str(size["width"]), "--height", str(size["height"]), "--quiet", "--overwrite"]
    splits = (("train", "mpii", "0"), ("val", "mpii", "1"), ("extra", "coco", "2"))
    titles = {"train": "training set", "val": "held-out validation set", "extra": "extra COCO-layout set"}
    return [
        CommandStep(
            f"synth_{split}",
            f"Draw a synthetic {titles[split]}",
            ["synth", str(data), "--layout", layout, "--num-images", str(size[split]), "--seed", seed,
             "--split", split, *wh],
            [data / "annotations" / f"person_keypoints_{split}.json"],
        )
        for split, layout, seed in splits
    ]  # fmt: skip


def build_steps(out: Path, rows: tuple[TableRow, ...], size: dict[str, int]) -> list[CommandStep]:
    steps = data_steps(out / "data", size)
    for row in rows:
        steps += train_eval_steps(row.name, row.label, out / "rows" / row.name)
    return steps


def select_rows(only: list[str] | None) -> tuple[TableRow, ...]:
    """The rows to run, in table order; a grown row brings the row it grows from."""
    if not only:
        return CFA_STAGES.rows
    pick_rows(CFA_STAGES.rows, only)  # an unknown name is an error
    wanted = set(only) | {GROWN_FROM[n] for n in only if n in GROWN_FROM}
    for name in sorted(wanted - set(only)):
        print(f"row {name} added: a selected row grows from it", file=sys.stderr)
    return pick_rows(CFA_STAGES.rows, sorted(wanted))


def reproduce_cfa_stages(
    out: str | Path, minutes_per_row: float = 2.0, only: list[str] | None = None, size: str = "standard"
) -> Path:
    """Run every row of ``cfa-stages`` not yet done; write table.md, table.png and results.json."""
    check_minutes_per_row(minutes_per_row)
    rows = select_rows(only)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = build_steps(out, rows, SIZES[size])
    by_name = {r.name: r for r in rows}
    print(
        f"heatpose reproduce {NAME}: {len(rows)} rows x {minutes_per_row:g} min of training "
        f"(about {len(rows) * (minutes_per_row + 0.5) + 1:.0f} minutes in all); output in {out}",
        file=sys.stderr,
    )

    def prepare(step: CommandStep) -> None:
        if step.name.startswith("train_"):
            row = by_name[step.name.removeprefix("train_")]
            _write_row_config(out, row, minutes_per_row, size)

    resume = f"heatpose reproduce {NAME} --out {shlex.quote(str(out))} --minutes-per-row {minutes_per_row:g}"
    if only:
        resume += " --rows " + " ".join(r.name for r in rows)
    run_steps(out, steps, resume, prepare)
    results = [add_row_facts(out, r) for r in collect_results(out, CFA_STAGES, rows)]
    atomic_write_json(out / "results.json", results, indent=2)
    atomic_write_text(out / "table.md", format_table(results, steps))
    plot_table(results, out / "table.png")
    print(f"wrote {out / 'table.md'} and {out / 'table.png'}", file=sys.stderr)
    return out / "table.md"


def add_row_facts(out: Path, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` plus what the row's written config says (stages, aggregation, extra data, start)
    and the per-stage PCKh of the training's final validation (``metrics.csv``)."""
    from heatpose.config import load_config
    from heatpose.engine.logs import read_csv

    row_dir = out / "rows" / result["row"]
    cfg = load_config(row_dir / "config.yaml")
    last = (read_csv(row_dir / "train" / "metrics.csv") or [{}])[-1]
    per_stage = [last.get(f"stage{s}_PCKh") for s in range(1, cfg.model.num_stages + 1)]
    per_stage = [None if v is None or v != v else float(v) for v in per_stage]
    return {
        **result,
        "stages": cfg.model.num_stages,
        "fuse_last_k": cfg.model.fuse_last_k,
        "aggregate": cfg.model.aggregate,
        "extra_data": len(cfg.data.train_sets) > 1,
        "grown_from": GROWN_FROM.get(result["row"]),
        "per_stage": per_stage if cfg.model.num_stages > 1 else [],
    }


def judge(trend: Trend, ours: dict[str, float | None]) -> tuple[float | None, str]:
    """(our difference, verdict) of ``trend``: matches / within noise / does not match / not run."""
    values = [ours.get(n) for n in (*trend.plus, *trend.minus)]
    if any(v is None for v in values):
        return None, "not run (a row is missing or has no score)"
    diff = sum(ours[n] for n in trend.plus) - sum(ours[n] for n in trend.minus)  # type: ignore[misc]
    return diff, verdict(diff, NOISE_PCKH * math.sqrt((len(trend.plus) + len(trend.minus)) / 2))


def verdict(diff: float, band: float) -> str:
    """A difference that the paper says is positive: matches / does not match / within noise."""
    if diff > band:
        return "matches"
    if diff < -band:
        return "does not match"
    return f"within noise (|difference| <= {band:.1f})"


def refinement_lines(results: list[dict[str, Any]]) -> list[str]:
    """The paper's coarse to fine, per aggregated multi-stage row: last stage alone vs stage 1 alone."""
    lines = []
    for r in results:
        first, last = (r["per_stage"][0], r["per_stage"][-1]) if r["per_stage"] else (None, None)
        if not r["aggregate"] or first is None or last is None:
            continue
        diff = last - first
        lines.append(
            f"- later stages refine earlier ones (coarse to fine), row {r['row']}: stage {r['stages']} "
            f"- stage 1 = {diff:+.2f} -> **{verdict(diff, NOISE_PCKH)}**"
        )
    return lines


def format_table(results: list[dict[str, Any]], steps: list[CommandStep]) -> str:
    table = CFA_STAGES
    lines = [
        f"# {table.title}",
        "",
        f"| row | stages (fused) | aggregation | extra data | start | ours: synthetic PCKh@0.5 | per stage "
        f"| epochs | train s | paper | paper {table.paper_metric} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ours = "n/a" if r["ours"] is None else f"{r['ours']:.2f}"
        stages = ", ".join("n/a" if v is None else f"{v:.2f}" for v in r["per_stage"]) or "-"
        start = f"row {r['grown_from']}" if r["grown_from"] else "scratch"
        paper = "-" if r["paper"] is None else f"{r['paper']:.1f}"
        secs = "-" if r["train_s"] is None else f"{r['train_s']:.0f}"
        lines.append(
            f"| {r['row']} | {r['stages']} (last {r['fuse_last_k']}) | {'yes' if r['aggregate'] else 'no'} "
            f"| {'yes' if r['extra_data'] else 'no'} | {start} | {ours} | {stages} | {r['epochs']} | {secs} "
            f"| {r['paper_row']} | {paper} |"
        )
    ours = {r["row"]: r["ours"] for r in results}
    lines += ["", "## Which of the paper's trends this run reproduces", ""]
    for t in TRENDS:
        diff, said = judge(t, ours)
        terms = " ".join([*(f"+ {n}" for n in t.plus), *(f"- {n}" for n in t.minus)]).lstrip("+ ")
        shown = "" if diff is None else f": {terms} = {diff:+.2f}"
        caveat = f" ({t.caveat})" if t.caveat else ""
        lines.append(f"- {t.claim}{shown} -> **{said}**{caveat}")
    lines += refinement_lines(results)
    lines += [
        "",
        f"PCKh@0.5 Mean (official protocol, pelvis and thorax out) on the held-out synthetic split, flip "
        f"test; per stage: each stage alone at the training's final validation. Within noise: "
        f"|difference| <= {NOISE_PCKH:g} points for two rows, x sqrt(2) for a difference of differences "
        f"(a guess: single runs, no repeated seeds).",
        "",
        *[f"- {n}" for n in table.notes],
        "",
        "Commands:",
        "",
        "```bash",
        *[s.command for s in steps],
        "```",
        "",
    ]
    return "\n".join(lines)


def plot_table(results: list[dict[str, Any]], path: Path) -> Path:
    """Left: fused PCKh per row; right: PCKh of each stage alone, one line per multi-stage row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.45 * len(results) + 2.2))
    ys = list(range(len(results)))[::-1]
    ours = [r["ours"] or 0.0 for r in results]
    left.barh(ys, ours, color=["tab:orange" if r["extra_data"] else "tab:blue" for r in results])
    left.set(yticks=ys, yticklabels=[r["label"] for r in results], xlim=(0, 108))
    left.set(title="ours: fused PCKh@0.5 (equal minutes; orange: + extra data)", xlabel="PCKh@0.5")
    for y, r, v in zip(ys, results, ours, strict=True):
        left.text(v, y, " n/a" if r["ours"] is None else f" {r['ours']:.1f}", va="center")
    for r in results:
        if r["per_stage"]:
            xs = list(range(1, len(r["per_stage"]) + 1))
            vals = [math.nan if v is None else v for v in r["per_stage"]]
            right.plot(xs, vals, marker="o", linestyle="-" if r["aggregate"] else "--", label=r["row"])
    right.set(title="each stage alone (dashed: no aggregation)", xlabel="stage", ylabel="PCKh@0.5")
    right.set_xticks([1, 2, 3, 4])
    if right.get_lines():
        right.legend(fontsize=8)
    fig.suptitle(CFA_STAGES.title)
    fig.tight_layout()
    written = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close(fig)
    return written
