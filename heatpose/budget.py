"""Training to a wall-clock budget: how many epochs of a config fit M minutes on this machine.

Why: the demo and ``heatpose reproduce`` compare configurations "at the same training budget",
and a newcomer's laptop may be 3x slower or faster than ours. Instead of a fixed epoch count,
time a few training steps of the actual model (forward, loss, backward, optimiser step, in the
config's precision and memory format), discount for data loading and validation that share
the same cores, and choose the epochs that fit. The lr schedule is then laid on those epochs.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from heatpose.config import ExperimentConfig
from heatpose.io import load_json

# Data loading (JPEG decode, affine warp, target encoding) and the validations run on the same
# 2 cores as the model. Measured on a 2-core AMD EPYC (docs/results.md, the demo): the demo's
# model (R-18 128x96, 3 x 128 head) probed at 81 samples/s and trained at 70 in whole epochs,
# 1.16x; the margin to 1.2 covers the run-to-run speed of a shared VM. (1.5, the value before,
# made the demo train for 6.7 of its 9 budgeted minutes.)
OVERHEAD = 1.2


def probe_samples_per_s(cfg: ExperimentConfig, steps: int = 3) -> float:
    """Training samples per second of ``cfg``'s model here (best of ``steps`` timed steps, after one
    warm-up), divided by :data:`OVERHEAD`."""
    from heatpose.engine.optim import OptimStep, build_optimizer
    from heatpose.losses import JointsMSELoss
    from heatpose.models import build_model
    from heatpose.schema_io import resolve_num_joints, schema_for_config

    cfg = resolve_num_joints(cfg, schema_for_config(cfg))  # model.num_joints 0 follows the schema
    model = build_model(cfg.model)
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    step = OptimStep(build_optimizer(cfg.train, model), torch.device("cpu"), amp=cfg.train.amp)
    w, h = cfg.data.input_size
    hw, hh = cfg.heatmap_size
    n, k = cfg.train.batch_size, cfg.model.num_joints
    x = torch.randn(n, 3, h, w).contiguous(memory_format=fmt)
    target, weight = torch.rand(n, k, hh, hw), torch.ones(n, k)
    loss_fn = JointsMSELoss()
    times = []
    for _ in range(steps + 1):
        tic = time.perf_counter()
        with step.autocast():
            out = model(x)
        out = [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()
        step(loss_fn(out, target, weight))
        times.append(time.perf_counter() - tic)
    return n / min(times[1:]) / OVERHEAD


def epochs_for_budget(minutes: float, people: int, samples_per_s: float, minimum: int = 2) -> int:
    """Whole epochs of ``people`` samples that fit ``minutes`` at ``samples_per_s`` (at least ``minimum``;
    1 when the budget is 0, the tests' setting)."""
    if minutes <= 0:
        return 1
    return max(minimum, int(minutes * 60 * samples_per_s / max(1, people)))


def people_in(ann: str | Path) -> int:
    """People with at least one labelled keypoint in a COCO keypoints file (what training crops)."""
    data = load_json(ann, "annotation")
    return sum(1 for a in data.get("annotations", []) if max(a.get("keypoints") or [0]) > 0)
