"""Half-body rules by name: selection frequencies against hand counts of each reference's rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from heatpose.config import load_config
from heatpose.data.transforms import HALF_BODY_RULES, Augmentation, choose_half_body, sample_crop
from heatpose.keypoints import get_schema

SCHEMA = get_schema("coco")
UPPER = list(SCHEMA.upper_body)
LOWER = [j for j in range(SCHEMA.num_joints) if j not in SCHEMA.upper_body]
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
N = 2500


def _person(n_upper: int, n_lower: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper-body joints at y = 0..10, lower-body joints at y = 200..210; the first n of each visible."""
    joints = np.zeros((SCHEMA.num_joints, 2), np.float32)
    visible = np.zeros(SCHEMA.num_joints, np.float32)
    for i, j in enumerate(UPPER):
        joints[j] = (50 + 5 * i, 10 * (i % 2))
        visible[j] = i < n_upper
    for i, j in enumerate(LOWER):
        joints[j] = (50 + 5 * i, 200 + 10 * (i % 2))
        visible[j] = i < n_lower
    return joints, visible


def _frequencies(
    rule: str, n_upper: int, n_lower: int, prob: float = 1.0, min_joints: int = 4
) -> dict[str, float]:
    """Share of N augmented crops centred on the upper body, the lower body, or left whole."""
    joints, visible = _person(n_upper, n_lower)
    aug = Augmentation(
        scale_factor=0.0,
        rot_factor=0.0,
        rot_prob=0.0,
        flip=False,
        half_body_prob=prob,
        half_body_rule=rule,
        half_body_min_joints=min_joints,
    )
    counts = {"upper": 0, "lower": 0, "none": 0}
    center = np.array([100.0, 105.0], np.float32)
    for i in range(N):
        params = sample_crop(
            center,
            np.array([1.0, 1.3], np.float32),
            400,
            (192, 256),
            aug,
            np.random.default_rng([7, i]),
            joints=joints,
            visible=visible,
            upper_body=SCHEMA.upper_body,
        )
        y = params.center[1]
        counts["upper" if y < 50 else "lower" if y > 150 else "none"] += 1
    return {k: v / N for k, v in counts.items()}


PHI_HALF = 0.5 * (1 + math.erf(0.5 / math.sqrt(2)))  # P(randn() < 0.5), HRNet's upper-body preference

# (rule, visible upper, visible lower) -> hand-counted P(upper), P(lower), P(whole box)
HAND_COUNTS = [
    # both halves well populated: the preference probability decides
    ("heatpose", 5, 5, (0.5, 0.5, 0.0)),
    ("hrnet", 5, 5, (PHI_HALF, 1 - PHI_HALF, 0.0)),
    ("mmpose", 5, 5, (0.7, 0.3, 0.0)),
    # 2 upper joints: too few for HRNet/heatpose's upper (> 2), enough for MMPose's (>= 2)
    ("heatpose", 2, 6, (0.0, 1.0, 0.0)),
    ("hrnet", 2, 6, (0.0, 1.0, 0.0)),
    ("mmpose", 2, 6, (0.7, 0.3, 0.0)),
    # 2 lower joints: heatpose accepts them (>= 2), HRNet (> 2) and MMPose (>= 3) fall back to upper
    ("heatpose", 6, 2, (0.5, 0.5, 0.0)),
    ("hrnet", 6, 2, (1.0, 0.0, 0.0)),
    ("mmpose", 6, 2, (1.0, 0.0, 0.0)),
    # 1 upper joint: MMPose must take the lower body; HRNet too
    ("hrnet", 1, 6, (0.0, 1.0, 0.0)),
    ("mmpose", 1, 6, (0.0, 1.0, 0.0)),
]
# COCO has 11 upper-body and 6 lower-body joints; these cases lower the "more than N visible"
# gate to 4 (a config value) so that the rules' own half-body thresholds decide.


@pytest.mark.parametrize(("rule", "n_upper", "n_lower", "expected"), HAND_COUNTS)
def test_selection_frequencies_match_hand_counts(rule, n_upper, n_lower, expected):
    got = _frequencies(rule, n_upper, n_lower)
    for key, p in zip(("upper", "lower", "none"), expected, strict=True):
        tol = 4 * math.sqrt(max(p * (1 - p), 1e-12) / N) + 1e-9
        assert abs(got[key] - p) <= tol, (key, got, expected)


@pytest.mark.parametrize("rule", list(HALF_BODY_RULES))
def test_eight_visible_joints_are_not_enough(rule):
    """All three references need more than 8 visible joints (MMPose: min_total_keypoints 9)."""
    assert _frequencies(rule, 4, 4, min_joints=8)["none"] == 1.0
    assert _frequencies(rule, 5, 4, min_joints=8)["none"] == 0.0


def test_half_body_probability_gates_the_rule():
    got = _frequencies("mmpose", 5, 5, prob=0.3)
    tol = 4 * math.sqrt(0.21 / N)
    assert abs(got["upper"] - 0.3 * 0.7) <= tol and abs(got["lower"] - 0.3 * 0.3) <= tol
    assert abs(got["none"] - 0.7) <= 4 * math.sqrt(0.21 / N)


def test_thresholds_are_config_values():
    aug = Augmentation(half_body_rule="mmpose", half_body_upper_prob=0.0, half_body_min_lower=8)
    assert aug.half_body_thresholds() == (0.0, 2, 8)
    assert HALF_BODY_RULES["hrnet"][0] == pytest.approx(0.691462, abs=1e-6)
    # an override changes the choice: with min_lower 8, 7 lower joints are too few for MMPose
    assert choose_half_body("mmpose", 5, 7, False, 2, 8) == "upper"
    assert choose_half_body("mmpose", 5, 7, False, 2, 3) == "lower"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("res50_256x192_d256x3_adam_lr1e-3_hrnetrecipe.yaml", "hrnet"),
        ("res50_256x192_d256x3_adam_lr5e-4_mmposerecipe.yaml", "mmpose"),
        ("res50_256x192_d256x3_adam_lr1e-3.yaml", "heatpose"),
    ],
)
def test_recipe_configs_use_their_rule(name, rule):
    cfg = load_config(CONFIGS / "coco" / name)
    assert cfg.data.half_body_rule == rule
    assert cfg.data.half_body_prob == (0.0 if rule == "heatpose" else 0.3)
    assert cfg.data.half_body_min_joints == 8
