"""Heatmap losses."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class JointsMSELoss(nn.Module):
    """The official Simple Baselines ``JointsMSELoss``.

    For each joint k: ``0.5 * MSE(pred[:, k] * w[:, k], gt[:, k] * w[:, k])`` (mean over batch
    and pixels), averaged over joints. Since every joint has the same number of pixels this
    is ``0.5 * mean(((pred - gt) * w) ** 2)``, computed here without the per-joint loop.

    ``pred``/``target``: (N, K, H, W); ``target_weight``: (N, K) or (N, K, 1), 0 for
    unlabelled joints (ignored when ``use_target_weight=False``).

    Multi-stage models (CFA) pass ``pred`` as a list of (N, K, H_s, W_s) tensors; the
    per-stage losses are summed, each times its ``stage_weights`` entry (all 1 when None:
    intermediate supervision with equal weights). ``target`` is then one tensor shared by
    all stages or a list with one tensor per stage.
    """

    def __init__(self, use_target_weight: bool = True, stage_weights: Sequence[float] | None = None):
        super().__init__()
        self.use_target_weight = use_target_weight
        self.stage_weights = list(stage_weights) if stage_weights else None

    def forward(
        self,
        pred: Tensor | Sequence[Tensor],
        target: Tensor | Sequence[Tensor],
        target_weight: Tensor | None = None,
    ) -> Tensor:
        if isinstance(pred, Tensor):
            if not isinstance(target, Tensor):
                raise ValueError("a single heatmap tensor needs a single target tensor")
            return self._single(pred, target, target_weight)
        if len(pred) == 0:
            raise ValueError("pred is an empty list of stages")
        targets = [target] * len(pred) if isinstance(target, Tensor) else list(target)
        if len(targets) != len(pred):
            raise ValueError(f"{len(pred)} predicted stages but {len(targets)} targets")
        losses = [self._single(p, t, target_weight) for p, t in zip(pred, targets, strict=True)]
        if self.stage_weights is not None:
            if len(self.stage_weights) != len(losses):
                n_weights = len(self.stage_weights)
                raise ValueError(f"{len(losses)} predicted stages but {n_weights} stage weights")
            losses = [w * loss for w, loss in zip(self.stage_weights, losses, strict=True)]
        return sum(losses[1:], losses[0])

    def _single(self, pred: Tensor, target: Tensor, target_weight: Tensor | None) -> Tensor:
        if pred.shape != target.shape or pred.dim() != 4:
            raise ValueError(
                "pred and target must both be (N, K, H, W), "
                f"got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        diff = pred - target
        if self.use_target_weight:
            if target_weight is None:
                raise ValueError("use_target_weight=True needs target_weight")
            n, k = pred.shape[:2]
            if target_weight.numel() != n * k:
                raise ValueError(
                    f"target_weight must be (N, K) or (N, K, 1), got {tuple(target_weight.shape)}"
                )
            diff = diff * target_weight.reshape(n, k, 1, 1).to(diff.dtype)
        return 0.5 * diff.pow(2).mean()
