"""Resumable sequences of heatpose commands, for ``heatpose demo`` and ``heatpose reproduce``.

Each :class:`CommandStep` *is* a heatpose command line, run in-process through
:func:`heatpose.cli.main`, so the command a report prints is exactly what ran. A finished step
leaves a marker in ``OUT/.steps/<name>`` (with its duration); running the sequence again skips
finished steps, and a training step whose work dir holds ``latest.pth`` continues with
``--resume``. The commands write their own files atomically, so Ctrl-C leaves no half files.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from heatpose.errors import HeatposeError
from heatpose.io import atomic_write_text


@dataclass
class CommandStep:
    """One heatpose command and what it must leave behind."""

    name: str
    title: str
    argv: list[str]
    outputs: list[Path] = field(default_factory=list)

    @property
    def command(self) -> str:
        return "heatpose " + " ".join(shlex.quote(a) for a in self.argv)

    @property
    def work_dir(self) -> Path | None:
        """The ``--work-dir`` of a ``train`` step, else None."""
        if self.argv[:1] == ["train"] and "--work-dir" in self.argv:
            return Path(self.argv[self.argv.index("--work-dir") + 1])
        return None


def synth_steps(data: Path, train_images: int, val_images: int, width: int, height: int) -> list[CommandStep]:
    """``heatpose synth`` of a training split (seed 0) and a held-out validation split (seed 1).

    ``--overwrite``: a step that runs again (its marker missing after a kill) replaces its partial split.
    """
    size = ["--width", str(width), "--height", str(height), "--quiet", "--overwrite"]
    return [
        CommandStep(
            f"synth_{split}",
            f"Draw a synthetic {title}",
            ["synth", str(data), "--num-images", str(n), "--seed", seed, "--split", split, *size],
            [data / "annotations" / f"person_keypoints_{split}.json"],
        )
        for split, n, seed, title in (
            ("train", train_images, "0", "training set"),
            ("val", val_images, "1", "held-out validation set"),
        )
    ]


def check_minutes_per_row(minutes: float) -> None:
    """``--minutes-per-row`` of every ``heatpose reproduce`` table: a finite number >= 0."""
    if not minutes >= 0 or not math.isfinite(minutes):
        raise HeatposeError(f"--minutes-per-row must be >= 0, got {minutes}")


def train_eval_steps(name: str, label: str, row_dir: Path) -> list[CommandStep]:
    """One table row: ``heatpose train ROW_DIR/config.yaml`` into ``ROW_DIR/train``, then ``eval`` of its
    ``best.pth`` into ``ROW_DIR/eval``."""
    cfg, ckpt = str(row_dir / "config.yaml"), row_dir / "train" / "best.pth"
    return [
        CommandStep(
            f"train_{name}",
            f"train row {name} ({label})",
            ["train", cfg, "--work-dir", str(row_dir / "train")],
            [ckpt],
        ),
        CommandStep(
            f"eval_{name}",
            f"score row {name}",
            ["eval", cfg, "--checkpoint", str(ckpt), "--out-dir", str(row_dir / "eval")],
            [row_dir / "eval" / "eval_meta.json"],
        ),
    ]


def pick_rows(rows: tuple, only: list[str] | None) -> tuple:
    """``rows`` (objects with a ``name``) kept to ``only``, in table order; an unknown name is an error."""
    if not only:
        return rows
    unknown = sorted(set(only) - {r.name for r in rows})
    if unknown:
        raise HeatposeError(f"unknown row(s) {', '.join(unknown)}; rows: {', '.join(r.name for r in rows)}")
    return tuple(r for r in rows if r.name in only)


def step_done(out: Path, step: CommandStep) -> bool:
    return (out / ".steps" / step.name).is_file() and all(p.exists() for p in step.outputs)


def run_steps(
    out: Path,
    steps: list[CommandStep],
    resume_command: str,
    prepare: Callable[[CommandStep], None] | None = None,
    run_command: Callable[[list[str]], int] | None = None,
) -> dict[str, float]:
    """Run the steps not yet done, in order; returns seconds per step run now.

    ``prepare(step)`` runs just before a step (e.g. to write the config a training step reads).
    On Ctrl-C the finished steps are kept and the message names ``resume_command``.
    """
    from heatpose.cli import main as cli_main

    run_command = run_command or cli_main
    timings: dict[str, float] = {}
    current = steps[0].name if steps else ""
    try:
        for step in steps:
            current = step.name
            if step_done(out, step):
                print(f"{step.name}: already done, skipped", file=sys.stderr)
                continue
            if prepare is not None:
                prepare(step)
            work_dir = step.work_dir
            if work_dir is not None and (work_dir / "latest.pth").is_file() and "--resume" not in step.argv:
                step.argv.append("--resume")
            print(f"{step.title}: {step.command}", file=sys.stderr)
            tic = time.perf_counter()
            status = run_command(step.argv)
            if status == 130:  # the command caught Ctrl-C itself (cli.main): stop here, say how to resume
                raise KeyboardInterrupt
            if status != 0:
                raise HeatposeError(f"step {step.name!r} failed (exit {status}): {step.command}")
            timings[step.name] = time.perf_counter() - tic
            atomic_write_text(out / ".steps" / step.name, f"{timings[step.name]:.1f}\n")
    except KeyboardInterrupt:
        print(
            f"heatpose: interrupted during step {current!r}; finished steps are kept. "
            f"Continue with: {resume_command}",
            file=sys.stderr,
        )
        raise
    return timings


def step_seconds(out: Path, name: str) -> float | None:
    """The recorded duration of a finished step (None when it has not finished)."""
    marker = out / ".steps" / name
    try:
        return float(marker.read_text().strip())
    except (OSError, ValueError):
        return None
