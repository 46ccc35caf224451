"""The CPU fast path's conv + ReLU / residual-add fusion keeps the function of every model it rewrites."""

from __future__ import annotations

import copy

import pytest
import torch
from model_helpers import randomize_batchnorm
from torch import fx, nn

from heatpose.config import config_from_dict
from heatpose.conv_fusion import FusedConv, fuse_conv_pointwise, fusion_available
from heatpose.fastpath import fold_batchnorm, optimize_for_inference
from heatpose.inference import predict_heatmaps
from heatpose.models import build_model

pytestmark = pytest.mark.skipif(
    not fusion_available(), reason="this PyTorch build has no oneDNN fused conv ops"
)


def _model(**model_cfg) -> nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(build_model(config_from_dict({"model": model_cfg}).model))


MODELS = {
    "basic-block": {"backbone_depth": 18, "num_deconv_filters": 16, "num_deconv_layers": 2},
    "bottleneck": {"backbone_depth": 50, "num_deconv_filters": 16, "num_deconv_layers": 3},
    "cfa": {"arch": "cfa", "backbone_depth": 18, "num_stages": 2, "num_deconv_filters": 16},
}


def _nodes(graph_module: fx.GraphModule, kinds: tuple[str, ...]) -> list[fx.Node]:
    return [
        n
        for n in graph_module.graph.nodes
        if any(k in str(n.target) for k in kinds) and n.op != "call_module"
    ]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fused_model_computes_the_same_in_fp32(name):
    model = _model(**MODELS[name])
    unfused = optimize_for_inference(model, fuse=False)
    fused = optimize_for_inference(model)
    assert any(isinstance(m, FusedConv) for m in fused.modules())
    x = torch.randn(3, 3, 128, 96).contiguous(memory_format=torch.channels_last)
    kept = x.clone()
    with torch.inference_mode():
        ref, out = unfused(x), fused(x)
    assert torch.equal(x, kept)  # the caller's batch is never a residual written in place
    refs = ref if isinstance(ref, (list, tuple)) else [ref]
    outs = out if isinstance(out, (list, tuple)) else [out]
    assert len(refs) == len(outs)
    for r, o in zip(refs, outs, strict=True):
        torch.testing.assert_close(o, r, atol=1e-5, rtol=1e-4)


def test_simple_baseline_keeps_no_separate_relu_or_residual_add():
    folded = fold_batchnorm(_model(**MODELS["bottleneck"]))
    convs = sum(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in folded.modules())
    relus = [n for n in folded.graph.nodes if n.op == "call_module" and "relu" in str(n.target)]
    assert relus and _nodes(folded, ("add",))
    fused = fuse_conv_pointwise(folded)
    assert sum(isinstance(m, FusedConv) for m in fused.modules()) == convs
    assert not [n for n in fused.graph.nodes if n.op == "call_module" and "relu" in str(n.target)]
    assert not _nodes(fused, ("add",))
    kinds = [(m.post, m.add) for m in fused.modules() if isinstance(m, FusedConv)]
    # 16 blocks end in conv3 + add + ReLU; the 4 shortcut convs and the final 1x1 have no post-op.
    assert kinds.count(("relu", True)) == 16
    assert kinds.count(("none", False)) == 5
    # every residual (a shortcut conv's output or the previous block's) is read by nothing after
    # its add, so each block writes its sum into it
    assert sum(m.inplace for m in fused.modules() if isinstance(m, FusedConv)) == 16


class _ResidualReadTwice(nn.Module):
    """relu(conv_b(x) + a) where ``a`` is read again afterwards, and relu(conv_c(y) + x_in)
    where the residual is the model's own input: neither may be overwritten."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(8, 8, 1)
        self.conv_c = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv_a(x)
        y = torch.relu(self.conv_b(a) + a)
        z = torch.relu(self.conv_c(y) + x)
        return z * a


def test_a_residual_read_after_its_add_or_owned_by_the_caller_is_not_overwritten():
    torch.manual_seed(0)
    model = _ResidualReadTwice().eval()
    fused = optimize_for_inference(model)
    layers = {name: m for name, m in fused.named_modules() if isinstance(m, FusedConv)}
    assert layers["conv_b"].add and not layers["conv_b"].inplace
    assert layers["conv_c"].add and not layers["conv_c"].inplace
    x = torch.randn(2, 8, 6, 4).contiguous(memory_format=torch.channels_last)
    kept = x.clone()
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-4)
    assert torch.equal(x, kept)


def test_fused_bf16_stays_as_close_to_fp32_as_the_unfused_bf16_path():
    model = _model(**MODELS["bottleneck"])
    unfused = optimize_for_inference(model, fuse=False)
    fused = optimize_for_inference(model)
    x = torch.randn(2, 3, 64, 48).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = unfused(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_unfused, low_fused = unfused(x).float(), fused(x).float()
    scale = ref.abs().max()
    err_unfused = (low_unfused - ref).abs().max() / scale
    err_fused = (low_fused - ref).abs().max() / scale
    assert 0 < err_fused < 0.05  # it really ran in bf16, and stayed close
    assert err_fused <= 1.5 * err_unfused


def test_gradients_and_empty_batches_take_the_plain_ops():
    model = _model(**MODELS["basic-block"])
    unfused = optimize_for_inference(model, fuse=False)
    fused = optimize_for_inference(model)
    x = torch.randn(2, 3, 64, 48, requires_grad=True)
    out = fused(x)
    out.sum().backward()  # the oneDNN inference ops have no backward: the plain path must run
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.testing.assert_close(out.detach(), unfused(x).detach(), atol=1e-5, rtol=1e-4)
    with torch.inference_mode():
        empty = fused(torch.zeros(0, 3, 64, 48))
    assert empty.shape == (0, *out.shape[1:])


def test_no_fusion_off_the_cpu_or_when_asked_not_to():
    model = _model(**MODELS["basic-block"])
    assert not any(isinstance(m, FusedConv) for m in optimize_for_inference(model, fuse=False).modules())
    assert not any(isinstance(m, FusedConv) for m in optimize_for_inference(model, fold_bn=False).modules())


def test_weights_are_reordered_once_and_serve_every_batch_size_and_copies():
    model = _model(**MODELS["bottleneck"])
    unfused = optimize_for_inference(model, fuse=False)
    fused = optimize_for_inference(model)
    layers = [m for m in fused.modules() if isinstance(m, FusedConv)]
    with torch.inference_mode():
        for batch in (3, 1, 5):  # packed for the first size, used for the others
            x = torch.randn(batch, 3, 64, 48).contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(fused(x), unfused(x), atol=1e-5, rtol=1e-4)
        assert all(m._packed[torch.float32][0].is_mkldnn for m in layers)
        copied = copy.deepcopy(fused)  # the blocked tensors are dropped and made again
        assert all(not m._packed for m in copied.modules() if isinstance(m, FusedConv))
        torch.testing.assert_close(copied(x), unfused(x), atol=1e-5, rtol=1e-4)


def test_a_cascade_predicts_its_fused_output_as_eval_scores_it():
    """The traced fast copy of a CFA model has no ``fuse``: it must return the fused
    prediction itself, not let callers fall back to the last stage."""
    model = _model(**MODELS["cfa"]).eval()
    fast = optimize_for_inference(model)
    x = torch.randn(2, 3, 128, 96)
    with torch.inference_mode():
        stages = model(x)
        fused = model.fuse(stages)
        served = predict_heatmaps(fast, x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(served, fused, atol=1e-5, rtol=1e-4)
    assert (stages[-1] - fused).abs().max() > 1e-3  # the last stage alone is a different answer
