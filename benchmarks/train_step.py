"""Training-step throughput: forward + loss + backward + Adam step, in samples per second.

Runs the engine's own optimiser (:func:`~heatpose.engine.optim.build_optimizer`, fused Adam)
and :class:`~heatpose.engine.optim.OptimStep` on random crops, so the numbers
measure the model and the precision/memory-format settings, not data loading. The median and
the best step time are both reported: on a shared machine the best is the steadier number.
Example (the command behind docs/benchmarks.md)::

    python benchmarks/train_step.py --depths 18 50 --input 192x256 --batch 16 \\
        --modes fp32 bf16+cl --warmup 2 --iters 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from heatpose.allocator import freed_memory_kept, keep_freed_memory
from heatpose.config import ModelConfig, TrainConfig
from heatpose.engine.optim import OptimStep, build_optimizer, cpu_has_amx
from heatpose.losses import JointsMSELoss
from heatpose.models import build_model

MODES = {  # name -> (train.amp, channels_last)
    "fp32": ("none", False),
    "fp32+cl": ("none", True),
    "bf16": ("bf16", False),
    "bf16+cl": ("bf16", True),
    "fp16+cl": ("fp16", True),  # CUDA only
}


def measure(
    depth: int,
    width: int,
    height: int,
    batch: int,
    mode: str,
    warmup: int,
    iters: int,
    device: torch.device,
    deconv_filters: int = 256,
) -> dict:
    amp, channels_last = MODES[mode]
    torch.manual_seed(0)
    model_cfg = ModelConfig(backbone_depth=depth, num_deconv_filters=deconv_filters)
    model = build_model(model_cfg).to(device).train()
    images = torch.randn(batch, 3, height, width, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    target = torch.rand(batch, 17, height // 4, width // 4, device=device)
    weight = torch.ones(batch, 17, device=device)
    criterion = JointsMSELoss()
    step = OptimStep(build_optimizer(TrainConfig(), model), device, amp=amp)
    times = []
    for i in range(warmup + iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        with step.autocast():
            heatmaps = model(images)
        step(criterion(heatmaps.float(), target, weight))
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    median, best = statistics.median(times), min(times)
    return {
        "depth": depth,
        "deconv_filters": deconv_filters,
        "input": f"{height}x{width}",
        "batch": batch,
        "mode": mode,
        "precision": step.precision,
        "channels_last": channels_last,
        "median_s_per_step": round(median, 4),
        "best_s_per_step": round(best, 4),
        "samples_per_s": round(batch / median, 2),
        "best_samples_per_s": round(batch / best, 2),
        "iters": iters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[18, 50])
    parser.add_argument("--input", default="192x256", help="WIDTHxHEIGHT (default 192x256, i.e. 256x192 HxW)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--deconv-filters", type=int, default=256, help="filters per deconv layer (paper: 256)"
    )
    parser.add_argument("--modes", nargs="+", default=["fp32", "bf16+cl"], choices=sorted(MODES))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    parser.add_argument(
        "--glibc-malloc-defaults",
        action="store_true",
        help="leave malloc as the process started (default: keep freed memory, as `heatpose train` does)",
    )
    args = parser.parse_args()
    if not args.glibc_malloc_defaults:
        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.input.lower().split("x"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    machine = (
        torch.cuda.get_device_name(0)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"{torch.get_num_threads()} torch threads, AMX: {'yes' if cpu_has_amx() else 'no'}, "
        f"freed memory kept: {'yes' if freed_memory_kept() else 'no'}"
    )
    print(f"# torch {torch.__version__} on {device}: {machine}")
    columns = ["model", "input (HxW)", "batch", "mode", "s/step (median)"]
    columns += ["samples/s (median)", "samples/s (best)"]
    if not args.json:
        print("| " + " | ".join(columns) + " |")
        print("|" + " --- |" * len(columns))
    for depth in args.depths:
        for mode in args.modes:
            row = measure(
                depth, width, height, args.batch, mode, args.warmup, args.iters, device, args.deconv_filters
            )
            if args.json:
                print(json.dumps(row), flush=True)
                continue
            cells = [
                f"R{depth} 3x{args.deconv_filters}",
                row["input"],
                row["batch"],
                mode,
                f"{row['median_s_per_step']:.3f}",
            ]
            cells += [f"{row['samples_per_s']:.1f}", f"{row['best_samples_per_s']:.1f}"]
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
