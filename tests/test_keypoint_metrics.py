"""PCK / AUC / EPE on small hand-computed cases (evaluation/keypoint_metrics.py, score --metric)."""

from __future__ import annotations

import json

import pytest

from heatpose.cli import main
from heatpose.errors import HeatposeError
from heatpose.evaluation.keypoint_metrics import compute_metric, match_results


def _ann(i, image_id, bbox, kpts):
    flat = [float(v) for p in kpts for v in p]
    return {"id": i, "image_id": image_id, "category_id": 1, "bbox": bbox, "area": bbox[2] * bbox[3],
            "iscrowd": 0, "num_keypoints": sum(p[2] > 0 for p in kpts), "keypoints": flat}  # fmt: skip


def _res(image_id, xy):
    return {
        "image_id": image_id,
        "category_id": 1,
        "score": 1.0,
        "keypoints": [v for p in xy for v in (*p, 1.0)],
    }


GT = {
    "images": [{"id": 1, "file_name": "1.jpg", "width": 200, "height": 100}],
    "categories": [{"id": 1, "name": "thing", "keypoints": ["a", "b", "c"], "skeleton": [[1, 2]]}],
    "annotations": [
        # person 1: norm max(100, 50) = 100; joint c unlabelled
        _ann(1, 1, [0, 0, 100, 50], [(10, 10, 2), (20, 20, 2), (30, 30, 0)]),
        # person 2: norm max(40, 80) = 80
        _ann(2, 1, [100, 0, 40, 80], [(110, 10, 2), (120, 20, 1), (130, 30, 2)]),
    ],
}
RESULTS = [
    _res(1, [(500, 500), (500, 500), (500, 500)]),  # a false positive far away, listed first
    _res(1, [(110, 18), (120, 20), (130, 42)]),  # person 2: distances 8, 0, 12 px
    _res(1, [(13, 14), (20, 23), (0, 0)]),  # person 1: distances 5, 3 px (c unlabelled)
]


def _matched(gt=GT, results=RESULTS):
    return match_results(gt, results, "gt.json", "res.json")


def test_pck_by_box_size_matches_hand_computation():
    m = _matched()
    assert m.matched.all()
    r = compute_metric(m, "pck", thr=0.05)
    # a: 5/100 = 0.05 (not < 0.05), 8/80 = 0.1 -> 0; b: 0.03, 0 -> 1; c: 12/80 = 0.15 -> 0
    assert r["per_joint"] == {"a": 0.0, "b": 1.0, "c": 0.0}
    assert r["overall"] == pytest.approx(1 / 3)
    r = compute_metric(m, "pck", thr=0.11)
    assert r["per_joint"] == {"a": 1.0, "b": 1.0, "c": 0.0}
    assert "max(w, h) of the GT box" in r["definition"]


def test_pck_by_a_joint_pair():
    # norm = |a - b| = sqrt(200) = 14.14 px for both people; thr 0.5 -> 7.07 px
    r = compute_metric(_matched(), "pck", thr=0.5, norm="a,b")
    assert r["per_joint"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert r["overall"] == pytest.approx(0.5)
    with pytest.raises(HeatposeError, match="two joint names"):
        compute_metric(_matched(), "pck", norm="a,z")


def test_auc_matches_hand_computation():
    # thresholds 0, 10, 20 px (3 steps of 30 px): overall PCK 0, 2/3, 1 -> AUC 5/9
    r = compute_metric(_matched(), "auc", auc_px=30.0, auc_steps=3)
    assert r["overall"] == pytest.approx(5 / 9)
    assert r["per_joint"]["a"] == pytest.approx(2 / 3)
    assert r["per_joint"]["c"] == pytest.approx(1 / 3)
    assert "0 .. 20 px" in r["definition"]


def test_epe_matches_hand_computation():
    r = compute_metric(_matched(), "epe")
    assert r["overall"] == pytest.approx((5 + 3 + 8 + 0 + 12) / 5)  # pooled over labelled joints
    assert r["per_joint"] == pytest.approx({"a": 6.5, "b": 1.5, "c": 12.0})


def test_unmatched_gt_person_counts_wrong_for_pck_and_is_left_out_of_epe():
    gt = json.loads(json.dumps(GT))
    gt["images"].append({"id": 2, "file_name": "2.jpg", "width": 50, "height": 50})
    gt["annotations"].append(_ann(3, 2, [0, 0, 20, 20], [(5, 5, 2), (0, 0, 0), (0, 0, 0)]))
    m = _matched(gt)
    assert m.matched.tolist() == [True, True, False]
    assert compute_metric(m, "pck", thr=0.11)["per_joint"]["a"] == pytest.approx(2 / 3)
    assert compute_metric(m, "epe")["overall"] == pytest.approx(28 / 5)


def test_keypoint_count_mismatch_is_one_error():
    with pytest.raises(HeatposeError, match="has 2 keypoints, GT has 3"):
        _matched(results=[{"image_id": 1, "keypoints": [1, 1, 1, 2, 2, 1]}])


def test_score_cli_json_and_plot(tmp_path, capsys):
    gt_path, res_path, png = tmp_path / "gt.json", tmp_path / "res.json", tmp_path / "pck.png"
    gt_path.write_text(json.dumps(GT))
    res_path.write_text(json.dumps(RESULTS))
    args = ["score", "--gt", str(gt_path), "--preds", str(res_path), "--metric", "pck", "--thr", "0.11"]
    assert main([*args, "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overall"] == pytest.approx(2 / 3) and out["people"] == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "PCK@0.11" in text and "overall" in text


def test_score_coco_ap_of_a_custom_set_uses_the_schema_sigmas(tmp_path, capsys):
    import numpy as np

    from heatpose.evaluation.coco import evaluate_keypoints

    gt_path, res_path, schema = tmp_path / "gt.json", tmp_path / "res.json", tmp_path / "s.yaml"
    gt_path.write_text(json.dumps(GT))
    res_path.write_text(json.dumps(RESULTS))
    schema.write_text("sigmas: [0.02, 0.05, 0.1]\n")
    base = ["score", "--gt", str(gt_path), "--preds", str(res_path), "--json"]
    assert main([*base, "--schema", str(schema)]) == 0
    with_file = json.loads(capsys.readouterr().out)
    assert with_file == evaluate_keypoints(gt_path, RESULTS, sigmas=np.array([0.02, 0.05, 0.1]))
    assert main(base) == 0  # no schema: the GT category's own, default sigmas 1/3, with a warning
    captured = capsys.readouterr()
    assert json.loads(captured.out) == evaluate_keypoints(gt_path, RESULTS, sigmas=np.full(3, 1 / 3))
    assert "COCO AP depends on them" in captured.err
