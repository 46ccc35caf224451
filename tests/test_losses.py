from __future__ import annotations

import pytest
import torch
from torch import nn

from heatpose.losses import JointsMSELoss


def official_loss(output, target, target_weight, use_target_weight=True):
    """The loop from microsoft/human-pose-estimation.pytorch lib/core/loss.py, verbatim."""
    criterion = nn.MSELoss(reduction="mean")
    batch_size, num_joints = output.size(0), output.size(1)
    heatmaps_pred = output.reshape((batch_size, num_joints, -1)).split(1, 1)
    heatmaps_gt = target.reshape((batch_size, num_joints, -1)).split(1, 1)
    loss = 0
    for idx in range(num_joints):
        heatmap_pred = heatmaps_pred[idx].squeeze()
        heatmap_gt = heatmaps_gt[idx].squeeze()
        if use_target_weight:
            loss += 0.5 * criterion(
                heatmap_pred.mul(target_weight[:, idx]), heatmap_gt.mul(target_weight[:, idx])
            )
        else:
            loss += 0.5 * criterion(heatmap_pred, heatmap_gt)
    return loss / num_joints


def make(n=3, k=4, h=8, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, k, h, w, generator=g)
    gt = torch.rand(n, k, h, w, generator=g)
    weight = (torch.rand(n, k, 1, generator=g) > 0.3).float()
    return pred, gt, weight


def test_zero_for_identical() -> None:
    pred, _, weight = make()
    assert JointsMSELoss()(pred, pred.clone(), weight).item() == 0.0


def test_zero_weight_masks_joint() -> None:
    pred, gt, _ = make()
    weight = torch.ones(3, 4)
    weight[:, 2] = 0
    perturbed = pred.clone()
    perturbed[:, 2] += 10.0
    loss = JointsMSELoss()
    assert torch.allclose(loss(pred, gt, weight), loss(perturbed, gt, weight))
    assert not torch.allclose(
        JointsMSELoss(use_target_weight=False)(pred, gt, weight),
        JointsMSELoss(use_target_weight=False)(perturbed, gt, weight),
    )


def test_hand_computation() -> None:
    pred = torch.zeros(1, 2, 2, 2)
    gt = torch.zeros(1, 2, 2, 2)
    gt[0, 0, 0, 0] = 2.0  # joint 0: squared errors sum 4 over 4 pixels -> mse 1
    gt[0, 1] = 1.0  # joint 1: mse 1, but weight 0.5 -> mse 0.25
    weight = torch.tensor([[1.0, 0.5]])
    # 0.5 * (1 + 0.25) / 2 joints
    assert JointsMSELoss()(pred, gt, weight).item() == pytest.approx(0.3125)
    assert JointsMSELoss(use_target_weight=False)(pred, gt).item() == pytest.approx(0.5)


@pytest.mark.parametrize("use_weight", [True, False])
@pytest.mark.parametrize("n", [1, 3])
def test_matches_official_loop(use_weight: bool, n: int) -> None:
    pred, gt, weight = make(n=n)
    ours = JointsMSELoss(use_target_weight=use_weight)(pred, gt, weight)
    ref = official_loss(pred, gt, weight, use_target_weight=use_weight)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    # (N, K) weights behave like (N, K, 1)
    if use_weight:
        assert torch.allclose(ours, JointsMSELoss()(pred, gt, weight.squeeze(-1)))


def test_multi_stage_sums() -> None:
    pred, gt, weight = make()
    pred2, _, _ = make(seed=1)
    loss = JointsMSELoss()
    single = loss(pred, gt, weight) + loss(pred2, gt, weight)
    assert torch.allclose(loss([pred, pred2], gt, weight), single)
    assert torch.allclose(loss([pred, pred2], [gt, gt], weight), single)
    # stages may differ in resolution when each has its own target
    small_pred, small_gt = pred[..., ::2, ::2], gt[..., ::2, ::2]
    total = loss([small_pred, pred], [small_gt, gt], weight)
    assert torch.allclose(total, loss(small_pred, small_gt, weight) + loss(pred, gt, weight))


def test_gradients_flow() -> None:
    pred, gt, weight = make()
    pred.requires_grad_(True)
    JointsMSELoss()(pred, gt, weight).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_shape_errors() -> None:
    pred, gt, weight = make()
    loss = JointsMSELoss()
    with pytest.raises(ValueError, match="pred and target"):
        loss(pred, gt[:, :3], weight)
    with pytest.raises(ValueError, match="target_weight"):
        loss(pred, gt, weight[:, :3])
    with pytest.raises(ValueError, match="needs target_weight"):
        loss(pred, gt)
    with pytest.raises(ValueError, match="stages"):
        loss([pred, pred], [gt], weight)
