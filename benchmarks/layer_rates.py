"""Where the fast CPU path's time goes: GFLOP/s of each convolution of a model, layer by layer.

``heatpose bench`` says how close the whole forward comes to the machine's matmul peak; this
script says which layers keep it from the peak. It builds the model of a recipe config (random
weights: speed does not depend on them), applies :func:`heatpose.fastpath.optimize_for_inference`
(BN folded, channels_last, conv + ReLU / residual fusion), records each fused convolution's
input during one forward, then times every distinct layer on its own (best of ``--iters``) and
prints them grouped by shape, slowest first, with the time share and GFLOP/s of each group::

    python benchmarks/layer_rates.py configs/coco/res50_256x192_d256x3_adam_lr1e-3.yaml --batch 16

Layers that write their sum into the residual (``in place``) get a fresh copy of it for each
timed call, made before the clock starts.
Glibc keeps freed memory (:mod:`heatpose.allocator`), as in every heatpose command.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import defaultdict

import torch

from heatpose.allocator import keep_freed_memory
from heatpose.config import load_config
from heatpose.conv_fusion import FusedConv
from heatpose.fastpath import optimize_for_inference
from heatpose.models import build_model


def _best(fn, iters: int) -> float:
    fn()
    best = float("inf")
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _flops(layer: FusedConv, x: torch.Tensor, out_shape: torch.Size) -> int:
    conv = layer.conv
    kh, kw = conv.kernel_size
    if layer.transposed:
        return 2 * x.numel() * kh * kw * conv.out_channels // conv.groups
    return 2 * out_shape.numel() * conv.in_channels // conv.groups * kh * kw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--bf16", action="store_true", help="under bf16 autocast")
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()
    keep_freed_memory()
    cfg = load_config(args.config)
    model = build_model(dataclasses.replace(cfg.model, pretrained="", weights=""))
    fast = optimize_for_inference(model.eval(), "cpu")
    w, h = cfg.data.input_size
    x = torch.randn(args.batch, 3, h, w).contiguous(memory_format=torch.channels_last)
    calls: list[tuple[FusedConv, tuple[torch.Tensor, ...], torch.Size]] = []

    def record(layer, inputs, output) -> None:
        calls.append((layer, tuple(t.clone() for t in inputs), output.shape))

    layers = [m for m in fast.modules() if isinstance(m, FusedConv)]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        whole = _best(lambda: fast(x), args.iters)
        hooks = [m.register_forward_hook(record) for m in layers]
        fast(x)
        for hook in hooks:
            hook.remove()
        groups: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # count, flops, seconds
        timed: dict[tuple, float] = {}
        for layer, inputs, out_shape in calls:
            conv = layer.conv
            key = (
                "deconv" if layer.transposed else "conv",
                tuple(inputs[0].shape[1:]),
                conv.out_channels,
                conv.kernel_size[0],
                conv.stride[0],
                layer.post + (" +add" if layer.add else "") + (" in place" if layer.inplace else ""),
            )
            if key not in timed:
                if layer.inplace:  # it overwrites its residual: a fresh copy for every call, made beforehand
                    fresh = iter([inputs[1].clone() for _ in range(args.iters + 1)])
                    timed[key] = _best(
                        lambda layer=layer, x=inputs[0], r=fresh: layer(x, next(r)), args.iters
                    )
                else:
                    timed[key] = _best(lambda layer=layer, i=inputs: layer(*i), args.iters)
            group = groups[key]
            group[0] += 1
            group[1] += _flops(layer, inputs[0], out_shape)
            group[2] += timed[key]
    total_flops = sum(g[1] for g in groups.values())
    total_s = sum(g[2] for g in groups.values())
    print(
        f"{cfg.model.arch} R{cfg.model.backbone_depth} {w}x{h}, batch {args.batch}, "
        f"{'bf16' if args.bf16 else 'fp32'}, {torch.get_num_threads()} threads"
    )
    print(
        f"whole forward {whole * 1e3:.0f} ms = {args.batch / whole:.1f} images/s = "
        f"{total_flops / whole / 1e9:.0f} GFLOP/s; layers one by one: {total_s * 1e3:.0f} ms"
    )
    print("\n| layer | input CxHxW | out | k | s | post | count | ms | share | GFLOP/s |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for key, (count, flops, seconds) in sorted(groups.items(), key=lambda kv: -kv[1][2]):
        kind, shape, out, k, s, post = key
        print(
            f"| {kind} | {'x'.join(map(str, shape))} | {out} | {k} | {s} | {post} | {count} "
            f"| {seconds * 1e3:.1f} | {seconds / total_s:.1%} | {flops / seconds / 1e9:.0f} |"
        )


if __name__ == "__main__":
    main()
