"""Inference-only CPU rewrite: a convolution and the ReLU / residual add after it as one oneDNN call.

After BatchNorm folding (:func:`heatpose.fastpath.fold_batchnorm`) a ResNet block is
``relu(conv(x))`` twice and ``relu(conv(x) + identity)`` once. Run eagerly, each ReLU and each
residual add is its own pass over a large activation (in layer1 of R50 at 256x192, batch 16: 12.6 M
values per add); measured on a 2-core AMD EPYC with bf16 autocast, these element-wise passes were
about 12% of the forward time. oneDNN applies them as post-ops inside the convolution, while the
output tile is still in cache, which is what onnxruntime's fused Conv kernels do too.

:func:`fuse_conv_pointwise` walks the ``torch.fx`` graph of a folded model and replaces

* ``Conv2d -> ReLU`` with one ``mkldnn._convolution_pointwise(..., "relu")`` call;
* ``Conv2d -> add(., other) -> ReLU`` with ``mkldnn._convolution_pointwise.binary(..., "add", "relu")``,
  or its in-place form ``_convolution_pointwise_.binary``, which writes the sum into ``other``'s
  memory, where nothing reads ``other`` afterwards (a ResNet block's identity or shortcut conv
  output); measured on the 2-core EPYC at batch 16, the in-place form ran R50's layer1 1x1
  convolution + residual at 148 GFLOP/s fp32 against 81 for the out-of-place one, since it
  streams one 50 MB activation less through memory;
* ``ConvTranspose2d -> ReLU`` with ``mkldnn._convolution_transpose_pointwise(..., "relu")``;
* every other plain ``Conv2d`` with the same op and no post-op (one code path for all convs).

The maths is unchanged: fp32 results agree with the unfused model to float rounding. Under bf16
autocast (:func:`heatpose.inference.autocast_context`) the fused layers cast their input and
weights to bf16 themselves (the private oneDNN ops are not on autocast's lists) and round once per
fused group instead of once per op, so they are at least as close to fp32 as the unfused bf16
path. Tensors that are not on the CPU, that need gradients, or that are empty take the plain
PyTorch ops, so the rewritten model stays correct everywhere; it is only faster on the CPU.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn


def fusion_available() -> bool:
    """Whether this PyTorch build has oneDNN and the fused convolution ops."""
    mkldnn = getattr(torch.ops, "mkldnn", None)
    return (
        torch.backends.mkldnn.is_available()
        and mkldnn is not None
        and hasattr(mkldnn, "_convolution_pointwise")
        and hasattr(mkldnn, "_convolution_transpose_pointwise")
    )


_INPLACE = hasattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise_")


class FusedConv(nn.Module):
    """``post(conv(x) [+ other])`` for one Conv2d or ConvTranspose2d; ``post`` is ``relu`` or ``none``.

    ``forward(x, other=None)``: x (N, Cin, H, W) -> (N, Cout, H', W'); ``other``, when the
    block adds a residual, has the output's shape. Keeps the original layer (its fp32 weights,
    for the plain path) and, per precision, a copy of the weights in oneDNN's blocked layout made
    on the first call: a layer for inference with fixed weights.
    """

    def __init__(
        self, conv: nn.Conv2d | nn.ConvTranspose2d, post: str, add: bool = False, inplace: bool = False
    ):
        super().__init__()
        self.conv = conv
        self.post = post
        self.add = add
        self.inplace = inplace  # the sum may overwrite ``other``: the graph never reads it again
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        padding, stride, dilation = list(conv.padding), list(conv.stride), list(conv.dilation)
        # the oneDNN ops' geometry arguments, fixed for the layer: built once, not per call
        self._geometry: tuple = (
            (padding, list(conv.output_padding), stride, dilation, conv.groups)
            if self.transposed
            else (padding, stride, dilation, conv.groups)
        )
        self._packed: dict[torch.dtype, tuple[Tensor, Tensor | None]] = {}

    def extra_repr(self) -> str:
        return f"post={self.post!r}, add={self.add}, inplace={self.inplace}"

    def _weights(self, dtype: torch.dtype, input_size: list[int]) -> tuple[Tensor, Tensor | None]:
        """The layer's weights in ``dtype``, reordered once into oneDNN's blocked layout.

        Given plain (N)HWC weights, oneDNN reorders them into its blocked layout on every call:
        measured at batch 1 on the EPYC VM, that left a 2048 -> 512 1x1 convolution at 43
        GFLOP/s against 186 with the weights reordered beforehand (batch 16: 166 against 204),
        with bit-identical outputs. The layout is chosen for the first input size seen and
        serves every other batch size too (oneDNN reorders again where it must).
        """
        if dtype not in self._packed:
            weight, bias = self.conv.weight.detach().to(dtype), self.conv.bias
            bias = None if bias is None else bias.detach().to(dtype)
            reorder = (
                torch.ops.mkldnn._reorder_convolution_transpose_weight
                if self.transposed
                else torch.ops.mkldnn._reorder_convolution_weight
            )
            self._packed[dtype] = (reorder(weight, *self._geometry, input_size), bias)
        return self._packed[dtype]

    def __getstate__(self) -> dict:
        # oneDNN's blocked tensors do not copy or pickle; the next call reorders again
        state = super().__getstate__()
        return {**state, "_packed": {}}

    def _plain(self, x: Tensor, other: Tensor | None) -> Tensor:
        out = self.conv(x)
        if other is not None:
            out = out + other
        return F.relu(out) if self.post == "relu" else out

    def forward(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        if x.device.type != "cpu" or x.numel() == 0 or (torch.is_grad_enabled() and x.requires_grad):
            return self._plain(x, other)
        dtype = x.dtype
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.get_autocast_dtype("cpu")
        if dtype not in (torch.float32, torch.bfloat16):
            return self._plain(x, other)
        x = x.to(dtype)
        weight, bias = self._weights(dtype, list(x.shape))
        ops, geometry = torch.ops.mkldnn, self._geometry
        unary = (self.post, [], "")  # post-op name, its scalars, its algorithm
        if self.transposed:
            return ops._convolution_transpose_pointwise(x, weight, bias, *geometry, *unary)
        if other is None:
            return ops._convolution_pointwise(x, weight, bias, *geometry, *unary)
        other = other.to(dtype).contiguous(memory_format=torch.channels_last)
        if self.inplace:
            return ops._convolution_pointwise_.binary(other, x, weight, bias, *geometry, "add", None, *unary)
        return ops._convolution_pointwise.binary(x, other, weight, bias, *geometry, "add", None, *unary)


def _fusable(module: nn.Module | None) -> bool:
    if isinstance(module, nn.Conv2d):
        return module.padding_mode == "zeros" and not isinstance(module.padding, str)
    return isinstance(module, nn.ConvTranspose2d) and module.padding_mode == "zeros"


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), nn.ReLU)
    return node.op in ("call_function", "call_method") and node.target in (
        F.relu,
        torch.relu,
        "relu",
        "relu_",
    )


def _is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in (operator.add, torch.add)) or (
        node.op == "call_method" and node.target == "add"
    )


# modules whose output is a fresh tensor, never a view of their input
_FRESH_OUTPUT = (FusedConv, nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d)


def _overwritable(
    other: fx.Node, add: fx.Node, order: dict[fx.Node, int], modules: dict[str, nn.Module]
) -> bool:
    """Whether the residual ``other`` may take the sum in place: a fresh tensor that no node
    after the ``add`` reads (its other readers, e.g. the block's first conv, ran before)."""
    if other.op != "call_module" or not isinstance(modules.get(other.target), _FRESH_OUTPUT):
        return False
    return all(user is add or order.get(user, len(order)) < order[add] for user in other.users)


def _only_user(node: fx.Node) -> fx.Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def fuse_conv_pointwise(graph_module: fx.GraphModule) -> fx.GraphModule:
    """Rewrite ``graph_module`` in place: conv (+ add) (+ ReLU) groups become :class:`FusedConv`.

    Run it after BatchNorm folding, on a model that is only used for inference.
    """
    modules = dict(graph_module.named_modules())
    graph = graph_module.graph
    order = {node: i for i, node in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        if node.op != "call_module" or not _fusable(modules.get(node.target)):
            continue
        conv = modules[node.target]
        user = _only_user(node)
        add_node = other = None
        if (
            isinstance(conv, nn.Conv2d)
            and user is not None
            and _is_add(user)
            and len(user.args) == 2
            and not user.kwargs
            and _only_user(user) is not None
            and _is_relu(_only_user(user), modules)
        ):
            add_node = user
            other = user.args[1] if user.args[0] is node else user.args[0]
            # The residual branch's conv takes the add; a shortcut conv computed before it does not.
            if not isinstance(other, fx.Node) or order.get(other, len(order)) > order[node]:
                add_node = other = None
        last = node
        post = "none"
        if add_node is not None:
            last, post = _only_user(add_node), "relu"
        elif user is not None and _is_relu(user, modules):
            last, post = user, "relu"
        inplace = (
            _INPLACE
            and add_node is not None
            and other is not node.args[0]  # the conv must not read what it overwrites
            and _overwritable(other, add_node, order, modules)
        )
        fused = FusedConv(conv, post, add=add_node is not None, inplace=inplace)
        graph_module.add_submodule(node.target, fused)
        args = (node.args[0],) if other is None else (node.args[0], other)
        with graph.inserting_after(last):
            new = graph.call_module(node.target, args)
        last.replace_all_uses_with(new)
        order[new] = order[last]
        for dead in dict.fromkeys((last, add_node, node)):  # users before what they use
            if dead is not None:
                graph.erase_node(dead)
        modules[node.target] = fused
    graph.lint()
    graph_module.recompile()
    return graph_module
