"""``heatpose bench``: how fast inference runs here, against what this machine can do at most.

In one process it measures

* the **ceiling**: this device's fp32 (and bf16) matrix-multiply peak in GFLOP/s, the best of
  ``torch.mm`` and (CPU) oneDNN's own GEMM (measured before every round and at the end; the best
  rate seen counts, since on a shared machine a single early measurement can be far too low),
  divided by
  the model's FLOPs per crop (convolutions, transposed convolutions and linear layers, counted
  by :func:`model_flops`), i.e. the images/s a perfect implementation would reach;
* **images/s** of the model alone for each path and batch size: ``eager-fp32`` (the plain
  NCHW fp32 forward the official code runs, the baseline, under glibc's malloc defaults),
  ``eager-fp32-reuse`` (the same with freed memory kept, :mod:`heatpose.allocator`, as every
  other path runs: it shows how much of their speed-up is the allocator), ``torch-fp32`` (BatchNorm folded +
  channels_last + on the CPU conv/ReLU/residual-add fusion, :mod:`heatpose.conv_fusion`),
  ``torch-bf16`` (the same under bf16 autocast), ``onnx-fp32`` (onnxruntime on
  the exported, BN-folded graph); each with its share of the ceiling and its speed-up over
  the eager baseline, and the peak resident memory of one more pass on its own;
* **persons/s end to end** for each path: JPEG decode, one crop per person, the model,
  heatmap decoding and back-projection (:func:`heatpose.inference.estimate_poses`), with
  the share of the model-only rate it keeps;
* the **bf16 accuracy delta**: max and median keypoint distance (heatmap pixels) between
  the bf16 and fp32 paths on the same crops.

Timings are the best of ``iters`` rounds after a warm-up round; in each round every path runs
once, one after the other, so a shared machine that slows down for a while slows every path
alike and the ratios between paths hold (the best is the steadiest statistic there; the
median is in the json).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from heatpose import allocator
from heatpose.config import ExperimentConfig, load_config
from heatpose.data.dataset import build_codec
from heatpose.data.transforms import box_to_center_scale
from heatpose.engine.optim import cpu_has_native_bf16
from heatpose.errors import HeatposeError
from heatpose.fastpath import optimize_for_inference
from heatpose.inference import InferenceSettings, autocast_context, estimate_poses
from heatpose.io import atomic_write_json
from heatpose.models import build_model
from heatpose.schema_io import resolve_num_joints, schema_for_config

PATHS = ("eager-fp32", "eager-fp32-reuse", "torch-fp32", "torch-bf16", "onnx-fp32")
BASELINE = (
    "eager-fp32"  # every path's "x eager"; timed under glibc's malloc defaults, the others with memory kept
)


# --------------------------------------------------------------------------- the ceiling


def model_flops(model: nn.Module, input_shape: tuple[int, int, int, int]) -> int:
    """Multiply-adds x 2 of Conv2d, ConvTranspose2d and Linear layers for one forward pass.

    Conv: ``2 * C_in/groups * kh * kw * C_out * H_out * W_out``; a transposed conv does the
    same work per *input* pixel: ``2 * C_in * kh * kw * C_out/groups * H_in * W_in``. BatchNorm,
    ReLU and additions are memory-bound and left out (under 1% of the FLOPs of a ResNet).
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        x = inputs[0]
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += 2 * module.in_channels // module.groups * kh * kw * output.numel()
        elif isinstance(module, nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            total += 2 * x.numel() * kh * kw * module.out_channels // module.groups
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * output.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return total // input_shape[0]


def matmul_peaks_gflops(
    dtype: torch.dtype, device: torch.device, size: int = 2048, reps: int = 5
) -> dict[str, float]:
    """Best GFLOP/s of a ``size`` x ``size`` matrix product (2 * size**3 FLOPs) per library.

    ``torch.mm`` goes to the BLAS PyTorch was built with (MKL on x86 CPUs, cuBLAS on CUDA); on
    the CPU the convolutions go to oneDNN, whose own GEMM is measured too (``mkldnn._linear_pointwise``)
    because the two differ by machine: on the AMD EPYC VM here MKL's fp32 GEMM ran at 149-183
    GFLOP/s and oneDNN's at 208-219 (bf16: both about 410-430; docs/benchmarks.md), so
    ``torch.mm`` alone put the ceiling 15-25% too low. The machine's peak is the best of them.
    """
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    products: dict[str, Callable[[], Any]] = {"torch.mm": lambda: torch.mm(a, b)}
    if (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    ):
        weight = b.t().contiguous()  # linear computes a @ weight.T
        products["oneDNN"] = lambda: torch.ops.mkldnn._linear_pointwise(a, weight, None, "none", [], "")
    flop = 2 * size**3
    return {name: flop / min(_time(fn, reps, device, warmup=2)) / 1e9 for name, fn in products.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn: Callable[[], Any], reps: int, device: torch.device, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------- peak memory


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each path's peak can be read on its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- the paths


def build_paths(
    model: nn.Module, cfg: ExperimentConfig, device: torch.device, wanted: list[str]
) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], InferenceSettings]]:
    """name -> (callable on (N, 3, H, W), the settings that say how to feed it)."""
    paths: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], InferenceSettings]] = {}
    plain = InferenceSettings(flip=False, batch_size=1 << 30)
    for name in sorted(wanted, key=lambda p: PATHS.index(p) if p in PATHS else len(PATHS)):
        if name in ("eager-fp32", "eager-fp32-reuse"):
            paths[name] = (model.to(device).eval(), plain)
        elif name == "torch-fp32":
            fast = optimize_for_inference(model, device)
            paths[name] = (fast, dataclasses.replace(plain, channels_last=True))
        elif name == "torch-bf16":
            fast = paths["torch-fp32"][0] if "torch-fp32" in paths else optimize_for_inference(model, device)
            paths[name] = (fast, dataclasses.replace(plain, channels_last=True, amp_dtype=torch.bfloat16))
        elif name == "onnx-fp32":
            if device.type != "cpu":
                continue
            from heatpose.export import OnnxRunner, onnx_bytes

            paths[name] = (OnnxRunner(onnx_bytes(model.cpu(), cfg)), plain)
            model.to(device)
        else:
            raise HeatposeError(f"unknown bench path {name!r}; choose from {', '.join(PATHS)}")
    return paths


def _forward(fn: Callable[[torch.Tensor], torch.Tensor], settings: InferenceSettings, x: torch.Tensor) -> Any:
    if settings.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast_context(x.device, settings.amp_dtype):
        return fn(x)


def _test_jpeg(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    """A smooth synthetic photo, JPEG-encoded, so end-to-end timing includes a real decode."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def run_bench(
    model: nn.Module,
    cfg: ExperimentConfig,
    batches: list[int],
    paths: list[str],
    iters: int = 5,
    device: torch.device | str = "cpu",
    matmul_size: int = 2048,
) -> dict[str, Any]:
    """All measurements as a dict (what ``--out`` writes and :func:`format_report` prints)."""
    device = torch.device(device)
    w, h = cfg.data.input_size
    codec = build_codec(cfg)
    schema = schema_for_config(cfg)
    flops = model_flops(model.to(device), (1, 3, h, w))
    native_bf16 = device.type == "cuda" or cpu_has_native_bf16()
    peaks: dict[torch.dtype, dict[str, list[float]]] = {torch.float32: {}, torch.bfloat16: {}}

    def measure_peaks() -> None:
        # measured before every round and at the end: on a shared machine the best rate seen is the ceiling
        for dtype in (torch.float32, torch.bfloat16) if native_bf16 else (torch.float32,):
            for library, gflops in matmul_peaks_gflops(dtype, device, matmul_size).items():
                peaks[dtype].setdefault(library, []).append(gflops)

    if not native_bf16:
        paths = [p for p in paths if p != "torch-bf16"]
    built = build_paths(model, cfg, device, paths)
    jpeg = _test_jpeg()
    gen = torch.Generator().manual_seed(0)
    kept_before = allocator.freed_memory_kept()

    def use_allocator_of(name: str) -> None:
        """The baseline under glibc's (adapted) defaults, as the official code runs; the other
        paths with freed memory kept, as every heatpose command runs (heatpose.allocator)."""
        if name != BASELINE:
            allocator.keep_freed_memory()
        elif not kept_before:  # a Python caller who set it for the process keeps it
            allocator.glibc_default_policy()

    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, h, w, generator=gen).to(device)
        runs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
            name: (
                lambda fn=fn, s=settings, x=x: _forward(fn, s, x),
                lambda fn=fn, s=settings, b=batch: _end_to_end(fn, s, b, jpeg, cfg, codec, schema, device),
            )
            for name, (fn, settings) in built.items()
        }
        times, e2e = _round_robin(runs, iters, device, measure_peaks, use_allocator_of)
        for name, (model_only, end_to_end) in runs.items():
            use_allocator_of(name)
            allocator.release_free_memory()  # each path's peak memory its own, not the others' kept heap
            _reset_peak_rss()
            model_only()
            end_to_end()
            rows.append(
                {
                    "path": name,
                    "batch": batch,
                    "images_per_s": batch / min(times[name]),
                    "images_per_s_median": batch / statistics.median(times[name]),
                    "bf16": built[name][1].amp_dtype is not None,
                    "persons_per_s_end_to_end": batch / min(e2e[name]),
                    "peak_rss_mib": _peak_rss_mib() if device.type == "cpu" else None,
                }
            )
    rows.sort(key=lambda r: (list(built).index(r["path"]), r["batch"]))
    measure_peaks()
    best = {dtype: {lib: max(seen) for lib, seen in by_lib.items()} for dtype, by_lib in peaks.items()}
    peak32 = max(best[torch.float32].values())
    peak16 = max(best[torch.bfloat16].values()) if best[torch.bfloat16] else None
    baseline = {r["batch"]: r["images_per_s"] for r in rows if r["path"] == BASELINE}
    for r in rows:
        ceiling_gflops = peak16 if r["bf16"] else peak32
        r["share_of_ceiling"] = r["images_per_s"] * flops / (ceiling_gflops * 1e9)
        r["speedup_vs_eager"] = r["images_per_s"] / baseline[r["batch"]] if r["batch"] in baseline else None
        r["end_to_end_share"] = r["persons_per_s_end_to_end"] / r["images_per_s"]
    report: dict[str, Any] = {
        "device": _device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "model": f"{cfg.model.arch} R{cfg.model.backbone_depth}, input {h}x{w} (HxW)",
        "rounds": iters,
        "gflops_per_image": flops / 1e9,
        "fp32_matmul_peak_gflops": peak32,
        "bf16_matmul_peak_gflops": peak16,
        "fp32_matmul_peaks_seen": _per_measurement(peaks[torch.float32]),
        "bf16_matmul_peaks_seen": _per_measurement(peaks[torch.bfloat16]),
        "fp32_matmul_peak_by_library": best[torch.float32],
        "bf16_matmul_peak_by_library": best[torch.bfloat16] or None,
        "allocator": {
            BASELINE: "freed memory kept" if kept_before else "glibc defaults",
            "other paths": "freed memory kept"
            if allocator.freed_memory_kept()
            else "glibc defaults (not glibc)",
        },
        "fp32_ceiling_images_per_s": peak32 * 1e9 / flops,
        "bf16_ceiling_images_per_s": peak16 * 1e9 / flops if peak16 else None,
        "native_bf16": native_bf16,
        "rows": rows,
    }
    if "torch-bf16" in built and "torch-fp32" in built:
        report["bf16_keypoint_delta_heatmap_px"] = _bf16_delta(built, cfg, device, max(batches))
    return report


def _round_robin(
    runs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]],
    iters: int,
    device: torch.device,
    before_round: Callable[[], None],
    before_path: Callable[[str], None],
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds of each path's (model only, end to end) run over ``iters`` rounds after a warm-up
    round; every round runs every path once, so a machine that slows down for a while slows
    every path alike and the ratios between them hold."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    e2e: dict[str, list[float]] = {name: [] for name in runs}
    for rep in range(iters + 1):
        before_round()
        for name, (model_only, end_to_end) in runs.items():
            before_path(name)
            model_time, e2e_time = _time(model_only, 1, device, 0)[0], _time(end_to_end, 1, device, 0)[0]
            if rep:  # the first round warms up
                times[name].append(model_time)
                e2e[name].append(e2e_time)
    return times, e2e


def _end_to_end(
    fn: Callable[[torch.Tensor], torch.Tensor],
    settings: InferenceSettings,
    persons: int,
    jpeg: bytes,
    cfg: ExperimentConfig,
    codec: Any,
    schema: Any,
    device: torch.device,
) -> None:
    """Decode the JPEG, crop ``persons`` boxes spread over it, run the model, decode poses."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    ih, iw = image.shape[:2]
    w, h = cfg.data.input_size
    xs = np.linspace(0, iw - iw / 4, persons)
    boxes = [(x, ih * 0.1, iw / 4, ih * 0.8) for x in xs]
    cs = [box_to_center_scale(b, w / h) for b in boxes]
    estimate_poses(
        fn,
        image,
        np.stack([c for c, _ in cs]),
        np.stack([s for _, s in cs]),
        codec,
        schema.flip_index(),
        np.asarray(cfg.data.mean, np.float32),
        np.asarray(cfg.data.std, np.float32),
        dataclasses.replace(settings, batch_size=persons),
        device,
    )


def _bf16_delta(built: dict, cfg: ExperimentConfig, device: torch.device, batch: int) -> dict[str, float]:
    """Keypoint distance (heatmap px) between bf16 and fp32 on the same smooth random crops."""
    w, h = cfg.data.input_size
    coarse = torch.randn(batch, 3, h // 16, w // 16, generator=torch.Generator().manual_seed(1))
    crops = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear").to(device)
    codec = build_codec(cfg)
    out = {}
    for name in ("torch-fp32", "torch-bf16"):
        fn, settings = built[name]
        out[name] = codec.decode(_forward(fn, settings, crops).float().cpu().numpy())[0]
    dist = np.linalg.norm(out["torch-bf16"] - out["torch-fp32"], axis=-1)
    return {
        "max": float(dist.max()),
        "median": float(np.median(dist)),
        "within_0.1px": float((dist <= 0.1).mean()),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.partition(':')[2].strip()} ({os.cpu_count()} logical CPUs)"
    return platform.processor() or "cpu"


def _per_measurement(by_library: dict[str, list[float]]) -> list[float]:
    """The best library's rate at each measurement."""
    return [max(rates) for rates in zip(*by_library.values(), strict=True)]


def _peak_line(r: dict[str, Any], precision: str) -> str:
    """``fp32 matmul peak 205 GFLOP/s (best of ...) [torch.mm 160, oneDNN 205] -> ceiling ...``."""
    by_library = r[f"{precision}_matmul_peak_by_library"] or {}
    libraries = ", ".join(f"{lib} {g:.0f}" for lib, g in by_library.items())
    return (
        f"{precision} matmul peak {r[f'{precision}_matmul_peak_gflops']:.0f} GFLOP/s"
        f"{_seen(r[f'{precision}_matmul_peaks_seen'])}{f' [{libraries}]' if len(by_library) > 1 else ''}"
        f" -> ceiling {r[f'{precision}_ceiling_images_per_s']:.1f} images/s"
    )


def _seen(peaks: list[float]) -> str:
    return (
        f" (best of {len(peaks)} measurements, {min(peaks):.0f}-{max(peaks):.0f})" if len(peaks) > 1 else ""
    )


def format_report(report: dict[str, Any]) -> str:
    """The printed table."""
    r = report
    lines = [
        f"device: {r['device']}, {r['threads']} torch threads, torch {r['torch']}",
        f"model: {r['model']}: {r['gflops_per_image']:.2f} GFLOP per image",
        _peak_line(r, "fp32"),
    ]
    if r["bf16_matmul_peak_gflops"]:
        lines.append(_peak_line(r, "bf16"))
    else:
        lines.append("bf16: no native bf16 on this device; the bf16 path is skipped")
    alloc = r.get("allocator", {})
    timed = {row["path"] for row in r["rows"]}
    if BASELINE in timed:
        lines.append(
            f"allocator: {BASELINE} with {alloc.get(BASELINE, '?')}; every other path with "
            f"{alloc.get('other paths', '?')} (heatpose.allocator, as the heatpose commands run)"
        )
    else:
        lines.append(
            f"allocator: {alloc.get('other paths', '?')} (heatpose.allocator); no eager baseline timed"
        )
    lines += [
        f"images/s: best and median of {r.get('rounds', '?')} rounds, every path once per round; "
        "share of ceiling: of the fp32 one, or the bf16 one for bf16 paths; x eager: over eager-fp32 "
        "at the same batch (docs/benchmarks.md)",
        "",
        "| path | batch | images/s | median | share of ceiling | x eager | persons/s end to end "
        "| e2e / model | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        speedup = f"{row['speedup_vs_eager']:.2f}" if row["speedup_vs_eager"] else "-"
        rss = f"{row['peak_rss_mib']:.0f}" if row["peak_rss_mib"] else "-"
        share = f"{row['share_of_ceiling']:.0%}" + (" of bf16" if row.get("bf16") else "")
        cells = [row["path"], row["batch"], f"{row['images_per_s']:.1f}", f"{row['images_per_s_median']:.1f}"]
        cells += [
            share,
            speedup,
            f"{row['persons_per_s_end_to_end']:.1f}",
            f"{row['end_to_end_share']:.0%}",
            rss,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    delta = report.get("bf16_keypoint_delta_heatmap_px")
    if delta:
        lines.append(
            f"\nbf16 vs fp32 keypoints (heatmap px): max {delta['max']:.3f}, median {delta['median']:.3f}, "
            f"{delta['within_0.1px']:.0%} within 0.1 px"
        )
    return "\n".join(lines)


def bench_command(
    checkpoint: str | None,
    config: str | None,
    overrides: tuple[str, ...] = (),
    batches: list[int] | None = None,
    backends: list[str] | None = None,
    iters: int = 5,
    device: str = "cpu",
    out: str | None = None,
) -> int:
    """``heatpose bench``: a checkpoint (any layout, foreign ones with ``--config``) or a config."""
    if checkpoint is None and config is None:
        raise HeatposeError("heatpose bench needs --checkpoint or --config")
    if iters < 1 or not batches or min(batches) < 1:
        raise HeatposeError("--iters and every --batch must be >= 1")
    unknown = [b for b in backends or () if b not in PATHS]
    if unknown:
        raise HeatposeError(f"unknown bench path {unknown[0]!r}; choose from {', '.join(PATHS)}")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise HeatposeError(f"--device {device!r}: use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HeatposeError("--device cuda: no CUDA GPU is visible to torch here")
    if checkpoint is not None:
        from heatpose.predictor import load_network

        model, cfg, _ = load_network(checkpoint, config, overrides)
    else:
        cfg = load_config(config, overrides)
        cfg = resolve_num_joints(cfg, schema_for_config(cfg))
        model = build_model(dataclasses.replace(cfg.model, pretrained="", weights=""))
    report = run_bench(model, cfg, batches, list(backends or PATHS), iters, device)
    report["command_source"] = checkpoint or config
    print(format_report(report))
    if out:
        atomic_write_json(out, report, indent=2)
    return 0
