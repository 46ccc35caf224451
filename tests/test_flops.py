"""The FLOP counter against a hand count, and the meta-device pricing of configs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from heatpose.config import ModelConfig
from heatpose.models import make_model
from heatpose.models.flops import config_cost, count_cost

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_hand_count_on_a_tiny_model() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 8x8 out: 4 * 64 * (3 * 3 * 3) = 6912
        nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False),  # 4 * 64 * (2 * 3 * 3) = 4608
        nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1),  # 8x8 in: 4 * 64 * (2 * 4 * 4) = 8192
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 16 * 16, 5),  # 512 * 5 = 2560
    )
    cost = count_cost(model, (8, 8))
    assert cost.flops == 6912 + 4608 + 8192 + 2560
    params = (4 * 27 + 4) + (4 * 2 * 9) + (4 * 2 * 16 + 2) + (512 * 5 + 5)
    assert cost.params == params
    assert cost.input_size == (8, 8)
    assert model.training  # mode restored


def test_flops_scale_with_input_area() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 1))
    small, big = count_cost(model, (16, 8)), count_cost(model, (32, 16))
    assert big.flops == 4 * small.flops


def test_meta_pricing_matches_a_real_forward() -> None:
    cfg = ModelConfig(arch="cfa", num_joints=16, num_deconv_filters=16, num_stages=2, stage_type="hourglass")
    real = count_cost(make_model(cfg), (64, 64))
    assert config_cost(cfg, (64, 64)) == real


def test_simple_baseline_r50_parameters_match_the_paper() -> None:
    # Simple Baselines R50 256x192: 34.0 M parameters (HRNet paper, Table 1)
    cost = config_cost(ModelConfig(backbone_depth=50, num_joints=17), (192, 256))
    assert cost.params / 1e6 == pytest.approx(34.0, abs=0.05)
    assert "M parameters" in cost.describe()


def test_cascade_cost_grows_with_stages() -> None:
    def cost(s: int, aggregate: bool = True) -> tuple[int, int]:
        cfg = ModelConfig(arch="cfa", backbone_depth=18, num_joints=16, num_stages=s, fuse_last_k=1,
                          aggregate=aggregate)  # fmt: skip
        c = config_cost(cfg, (64, 64))
        return c.params, c.flops

    one, two, two_off = cost(1), cost(2), cost(2, aggregate=False)
    assert two_off == (2 * one[0], 2 * one[1])  # independent stages: exactly twice one stage
    assert two[0] > two_off[0] and two[1] > two_off[1]  # aggregation convs cost something


def test_count_cost_on_meta_needs_no_memory() -> None:
    with torch.device("meta"):
        model = nn.Conv2d(3, 4, 3)
    assert count_cost(model, (10, 10)).flops == 4 * 8 * 8 * 27
