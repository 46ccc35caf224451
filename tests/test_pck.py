"""PCKh against hand computations and an independent implementation of the official protocol."""

from __future__ import annotations

import numpy as np
import pytest

from heatpose.data.mpii import read_mpii_h5
from heatpose.errors import HeatposeError
from heatpose.evaluation.pck import (
    MEAN01_NAME,
    MEAN011_NAME,
    PCKhGroundTruth,
    compute_pckh,
    format_pckh_table,
)
from heatpose.evaluation.pckh_score import CURVE_PNG, PER_JOINT_PNG, REPORT_NAME, save_pckh_report
from heatpose.keypoints import LIP16, MPII16
from tests.conftest import shared_path

J = {name: i for i, name in enumerate(MPII16.joint_names)}
COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", MEAN01_NAME, MEAN011_NAME)


@pytest.fixture(scope="module")
def valid_gt() -> PCKhGroundTruth:
    return read_mpii_h5(shared_path("mpii_valid_split", "valid.h5")).ground_truth()


def toy_gt(n: int = 4, head_size: float = 8.0, schema=MPII16) -> PCKhGroundTruth:
    """n people, integer joints, head size exactly representable, every joint annotated."""
    rng = np.random.default_rng(0)
    k = schema.num_joints
    return PCKhGroundTruth(
        image_names=[f"{i}.jpg" for i in range(n)],
        joints=rng.integers(10, 200, size=(n, k, 2)).astype(np.float64),
        annotated=np.ones((n, k), dtype=bool),
        head_size=np.full(n, head_size),
        normalizer="test",
        schema=schema,
        source="toy",
    )


def test_gt_as_predictions_scores_100_everywhere_on_valid_h5(valid_gt):
    result = compute_pckh(valid_gt.joints, valid_gt)
    assert all(result.columns[c] == 100.0 for c in COLUMNS), result.columns
    assert result.num_people == 2958
    # 3088 joints of valid.h5 are not annotated (part == (0, 0)) and are not counted.
    assert result.counts.sum() == 2958 * 16 - 3088


@pytest.mark.parametrize("t", [0.25, 0.49, 0.5, 0.51, 0.75])
def test_moved_by_t_head_sizes(t):
    gt = toy_gt(head_size=8.0)
    # Exact in floating point: joints are integers and t * 8 has few mantissa bits (0.49 * 8 and
    # 0.51 * 8 are not exact, but they are far from 4.0 either way).
    pred = gt.joints + np.array([t * 8.0, 0.0])
    expected = 100.0 if t <= 0.5 else 0.0
    result = compute_pckh(pred, gt)
    for c in COLUMNS[:8]:
        assert result.columns[c] == expected, (t, c, result.columns[c])
    # At exactly the threshold (error == 0.5) a joint is correct: the threshold is inclusive.
    if t == 0.5:
        assert np.all(result.per_joint == 100.0)


def test_moved_on_valid_h5_below_and_above_the_threshold(valid_gt):
    """Half the people moved by 0.4 head sizes, half by 0.6 along (3/5, 4/5): per joint PCKh is the
    share of annotated joints in the first half, computed here by hand."""
    n = len(valid_gt)
    t = np.where(np.arange(n) < n // 2, 0.4, 0.6)
    direction = np.array([0.6, 0.8])
    pred = valid_gt.joints + (t * valid_gt.head_size)[:, None, None] * direction
    result = compute_pckh(pred, valid_gt)
    first = valid_gt.annotated[: n // 2].sum(axis=0)
    total = valid_gt.annotated.sum(axis=0)
    expected = 100.0 * first / total
    np.testing.assert_allclose(result.per_joint, expected, rtol=0, atol=1e-12)
    keep = [j for j in range(16) if j not in (J["pelvis"], J["thorax"])]
    np.testing.assert_allclose(
        result.columns["Mean"], 100.0 * first[keep].sum() / total[keep].sum(), atol=1e-9
    )
    np.testing.assert_allclose(result.columns["Head"], expected[J["head_top"]], atol=1e-12)
    wrist = (expected[J["left_wrist"]] + expected[J["right_wrist"]]) / 2
    np.testing.assert_allclose(result.columns["Wrist"], wrist, atol=1e-12)


def test_mean_at_0_1_really_uses_0_1():
    gt = toy_gt(head_size=200.0)
    # error 0.105: above 0.1, below the 0.11 that the official code reads as "Mean@0.1"
    result = compute_pckh(gt.joints + np.array([21.0, 0.0]), gt)
    assert result.columns[MEAN01_NAME] == 0.0
    assert result.columns[MEAN011_NAME] == 100.0
    assert result.columns["Mean"] == 100.0
    # error exactly 0.1 counts at 0.1 (inclusive)
    assert compute_pckh(gt.joints + np.array([0.0, 20.0]), gt).columns[MEAN01_NAME] == 100.0


def test_unannotated_joints_are_never_counted():
    gt = toy_gt()
    gt.annotated[:, J["left_wrist"]] = False
    gt.annotated[0, J["head_top"]] = False
    pred = gt.joints.copy()
    pred[:, J["left_wrist"]] += 1000.0  # wrong, but not annotated
    pred[0, J["head_top"]] += 1000.0
    result = compute_pckh(pred, gt)
    assert result.columns["Mean"] == 100.0 and result.columns["Head"] == 100.0
    assert result.counts[J["left_wrist"]] == 0 and result.counts[J["head_top"]] == len(gt) - 1
    assert np.isnan(result.per_joint[J["left_wrist"]])
    # a person without a head size does not count at all
    gt.head_size[1] = 0.0
    pred[1] += 1000.0
    result = compute_pckh(pred, gt)
    assert result.columns["Mean"] == 100.0 and result.people_without_head_size == 1


def test_thorax_and_pelvis_are_out_of_the_mean_upper_neck_is_in():
    gt = toy_gt(n=5)
    pred = gt.joints.copy()
    pred[:, [J["pelvis"], J["thorax"]]] += 100.0
    assert compute_pckh(pred, gt).columns["Mean"] == 100.0
    pred = gt.joints.copy()
    pred[:, J["upper_neck"]] += 100.0
    gt.annotated[:2, J["right_ankle"]] = False  # unequal counts: weights matter
    counts = gt.annotated.sum(axis=0)
    keep = [j for j in range(16) if j not in (J["pelvis"], J["thorax"])]
    expected = 100.0 * (1.0 - counts[J["upper_neck"]] / counts[keep].sum())
    result = compute_pckh(pred, gt)
    assert result.columns["Mean"] == pytest.approx(expected, abs=1e-12)
    assert result.columns["Head"] == 100.0  # Head is the head top only


def test_lip_schema_leaves_out_pelvis_and_spine():
    assert LIP16.joint_names[7] == "spine" and MPII16.joint_names[7] == "thorax"
    gt = toy_gt(schema=LIP16)
    pred = gt.joints.copy()
    pred[:, [6, 7]] += 100.0
    result = compute_pckh(pred, gt)
    assert result.columns["Mean"] == 100.0 and result.excluded == ("pelvis", "spine")


def official_protocol(pred: np.ndarray, gt: PCKhGroundTruth) -> dict[str, float]:
    """An independent, loop-by-loop reading of the published protocol, for comparison."""
    names = gt.schema.joint_names
    n, k = gt.annotated.shape
    correct = {thr: np.zeros(k) for thr in (0.5, 0.1, 0.11)}
    count = np.zeros(k)
    for i in range(n):
        for j in range(k):
            if not gt.annotated[i, j]:
                continue
            count[j] += 1
            d = np.hypot(*(pred[i, j] - gt.joints[i, j])) / gt.head_size[i]
            for thr in correct:
                correct[thr][j] += d <= thr
    pck = {thr: 100.0 * c / count for thr, c in correct.items()}
    p = pck[0.5]
    out = {"Head": p[names.index("head_top")]}
    for col, side in (("Shoulder", "shoulder"), ("Elbow", "elbow"), ("Wrist", "wrist")):
        out[col] = 0.5 * (p[names.index("left_" + side)] + p[names.index("right_" + side)])
    for col, side in (("Hip", "hip"), ("Knee", "knee"), ("Ankle", "ankle")):
        out[col] = 0.5 * (p[names.index("left_" + side)] + p[names.index("right_" + side)])
    mean_joints = [j for j in range(k) if names[j] not in ("pelvis", "thorax")]
    w = count[mean_joints] / count[mean_joints].sum()
    out["Mean"] = float(np.dot(p[mean_joints], w))
    out[MEAN01_NAME] = float(np.dot(pck[0.1][mean_joints], w))
    out[MEAN011_NAME] = float(np.dot(pck[0.11][mean_joints], w))
    return out


def test_gt_plus_noise_matches_an_independent_computation(valid_gt):
    rng = np.random.default_rng(7)
    pred = (
        valid_gt.joints
        + rng.normal(0.0, 1.0, valid_gt.joints.shape) * valid_gt.head_size[:, None, None] * 0.3
    )
    result = compute_pckh(pred, valid_gt)
    expected = official_protocol(pred, valid_gt)
    for col, value in expected.items():
        assert result.columns[col] == pytest.approx(value, abs=1e-9), col
    assert 20 < result.columns["Mean"] < 95  # the noise is big enough to matter


def test_matlab_protocol_columns(valid_gt):
    rng = np.random.default_rng(1)
    pred = valid_gt.joints + rng.normal(0.0, 6.0, valid_gt.joints.shape)
    official = compute_pckh(pred, valid_gt)
    matlab = compute_pckh(pred, valid_gt, protocol="matlab")
    neck, top = J["upper_neck"], J["head_top"]
    assert matlab.columns["Head"] == pytest.approx((official.per_joint[neck] + official.per_joint[top]) / 2)
    assert matlab.columns["Shoulder"] == official.columns["Shoulder"]
    # pooling over the 14 joints is the count-weighted mean
    assert matlab.columns["Total"] == pytest.approx(official.columns["Mean"], abs=1e-9)
    assert "UBody" in matlab.columns and "Mean" not in matlab.columns
    with pytest.raises(HeatposeError, match="protocol"):
        compute_pckh(pred, valid_gt, protocol="coco")


def test_nan_predictions_are_refused():
    gt = toy_gt()
    pred = gt.joints.copy()
    pred[0, 0, 0] = np.nan
    with pytest.raises(HeatposeError, match="NaN"):
        compute_pckh(pred, gt)


def test_report_writes_json_curve_and_bar_chart(tmp_path):
    gt = toy_gt(n=6)
    pred = gt.joints + np.random.default_rng(0).normal(0.0, 3.0, gt.joints.shape)
    result = compute_pckh(pred, gt)
    paths = save_pckh_report(result, tmp_path)
    assert [p.name for p in paths] == [REPORT_NAME, CURVE_PNG, PER_JOINT_PNG]
    for p in paths[1:]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = result.curve
    assert curve.shape == (51, 16) and np.all(np.diff(curve, axis=0) >= 0)  # PCKh grows with the threshold
    table = format_pckh_table(result)
    assert table.splitlines()[0].split()[:3] == ["Head", "Shoulder", "Elbow"]
