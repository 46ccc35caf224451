"""Inference-only model rewrites that keep the maths and cut the time: BN folding, fusion, NHWC.

* **BatchNorm folding**: in eval mode ``BN(conv(x))`` is one convolution with scaled weights
  and a bias, so every Conv2d/ConvTranspose2d directly followed by a BatchNorm2d (ResNet's
  conv-bn pairs, the deconv head's deconv-bn pairs) becomes a single layer. Found on the
  ``torch.fx`` graph, so it works for any traceable model without knowing its layer names.
* **channels_last**: NHWC weights and activations, the layout oneDNN's fastest CPU
  convolutions use (and tensor cores on CUDA).
* **conv + ReLU / residual-add fusion** on the CPU (:mod:`heatpose.conv_fusion`): one oneDNN
  call per group instead of an extra pass over each activation per element-wise op.
* **bf16 autocast** is applied around the call (:func:`heatpose.inference.autocast_context`);
  :func:`heatpose.engine.optim.cpu_has_native_bf16` says whether the CPU has it in hardware.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from heatpose.conv_fusion import fuse_conv_pointwise, fusion_available
from heatpose.models.cfa import FusedOutput

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with each conv -> BatchNorm2d pair folded into the conv.

    Returns a ``torch.fx.GraphModule`` computing the same function up to float rounding
    (~1e-6 relative). A model ``torch.fx`` cannot trace is returned as an eval-mode copy,
    unfolded. A multi-stage model (CFA, with a ``fuse`` method) is traced as its fused
    prediction, (N, K, h, w), what ``heatpose eval`` scores: the traced copy keeps ``forward``
    only, so its callers would otherwise lose ``fuse`` and take the last stage.
    """
    if hasattr(model, "fuse"):
        model = FusedOutput(model)
    model = copy.deepcopy(model).eval()
    try:
        graph_module = fx.symbolic_trace(model)
    except Exception:  # untraceable control flow: the unfolded model is still correct
        return model
    modules = dict(graph_module.named_modules())
    for node in list(graph_module.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
            continue
        source = node.args[0]
        if not (
            isinstance(source, fx.Node)
            and source.op == "call_module"
            and isinstance(modules.get(source.target), _CONVS)
            and len(source.users) == 1
        ):
            continue
        bn = modules[node.target]
        if not bn.track_running_stats or bn.running_mean is None:
            continue
        conv = modules[source.target]
        fused = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
        _set_submodule(graph_module, source.target, fused)
        node.replace_all_uses_with(source)
        graph_module.graph.erase_node(node)
    graph_module.graph.lint()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module


def _set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, module)


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def optimize_for_inference(
    model: nn.Module,
    device: torch.device | str = "cpu",
    fold_bn: bool = True,
    channels_last: bool = True,
    fuse: bool = True,
) -> nn.Module:
    """Eval-mode copy of ``model`` on ``device`` with BN folded, NHWC weights and, on the CPU,
    conv + ReLU / residual-add groups fused into oneDNN calls (each optional).

    Feed it ``x.contiguous(memory_format=torch.channels_last)`` when ``channels_last``.
    With ``fold_bn`` a cascade returns its fused prediction (:func:`fold_batchnorm`); without,
    the copy keeps its ``fuse`` for :func:`heatpose.inference.predict_heatmaps` to apply.
    """
    model = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    on_cpu = torch.device(device).type == "cpu"
    if fuse and fold_bn and on_cpu and isinstance(model, fx.GraphModule) and fusion_available():
        model = fuse_conv_pointwise(model)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()
