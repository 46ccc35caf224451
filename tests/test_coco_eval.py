"""COCO keypoint evaluation: official-protocol NMS/rescoring and pycocotools-identical stats."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from heatpose.errors import HeatposeError
from heatpose.evaluation.coco import (
    STAT_NAMES,
    evaluate_keypoints,
    evaluate_keypoints_with_summary,
    format_table,
    make_coco_results,
    rescore,
    score_command,
)
from heatpose.evaluation.nms import COCO_OKS_SIGMAS, box_nms, oks_iou, oks_nms

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MINI_GT = DATA / "coco_mini" / "annotations" / "person_keypoints_val2017.json"
MMPOSE_COCO = DATA / "mmpose_testdata" / "coco"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not available: {path} (see ../shared/data/*/SOURCES.md)")
    return path


@pytest.fixture(scope="module")
def mini_gt() -> dict:
    return json.loads(_need(MINI_GT).read_text())


def _gt_predictions(gt: dict) -> list[dict]:
    """One perfect result per non-crowd GT person with at least one labelled keypoint."""
    return [
        {
            "image_id": a["image_id"],
            "category_id": 1,
            "keypoints": list(map(float, a["keypoints"])),
            "score": 1.0,
        }
        for a in gt["annotations"]
        if not a["iscrowd"] and a["num_keypoints"] > 0
    ]


def _pycocotools_stats(gt_path: Path, results: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


# --------------------------------------------------------------------------- scoring


def test_gt_predictions_score_perfect(mini_gt: dict) -> None:
    preds = _gt_predictions(mini_gt)
    assert len(preds) == 68
    stats, summary = evaluate_keypoints_with_summary(MINI_GT, preds)
    assert list(stats) == list(STAT_NAMES)
    assert stats["AP"] == 1.0 and stats["AP50"] == 1.0 and stats["AR"] == 1.0
    assert "Average Precision" in summary
    assert all(isinstance(v, float) for v in stats.values())


def test_score_command_json_and_table(mini_gt: dict, tmp_path: Path) -> None:
    preds_file = tmp_path / "preds.json"
    preds_file.write_text(json.dumps(_gt_predictions(mini_gt)))
    out = io.StringIO()
    assert score_command(str(MINI_GT), str(preds_file), as_json=True, out=out) == 0
    parsed = json.loads(out.getvalue())
    assert {"AP", "AP50", "AP75", "APm", "APl", "AR"} <= set(parsed)
    assert parsed["AP"] == 1.0

    out = io.StringIO()
    assert score_command(str(MINI_GT), str(preds_file), as_json=False, out=out) == 0
    text = out.getvalue()
    assert "AP " in text and "AR " in text and "1.000" in text


def test_noisy_predictions_match_pycocotools_exactly(mini_gt: dict) -> None:
    rng = np.random.default_rng(1234)
    preds = []
    for ann in mini_gt["annotations"]:
        if ann["iscrowd"] or ann["num_keypoints"] == 0 or rng.random() < 0.2:  # 0.2: dropped person
            continue
        k = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
        k[:, :2] += rng.normal(0.0, 0.05 * np.sqrt(max(ann["area"], 1.0)), size=(k.shape[0], 2))
        k[:, 2] = rng.random(k.shape[0])
        result = {"image_id": ann["image_id"], "category_id": 1, "keypoints": k.reshape(-1).tolist()}
        preds.append(result | {"score": float(rng.random())})
    # a few false positives on images with people
    for image_id in sorted({p["image_id"] for p in preds})[:5]:
        k = np.column_stack([rng.uniform(0, 600, 17), rng.uniform(0, 400, 17), rng.random(17)])
        preds.append(
            {"image_id": image_id, "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": 0.5}
        )

    ours = evaluate_keypoints(MINI_GT, preds)
    ref = _pycocotools_stats(MINI_GT, preds)
    assert 0.0 < ours["AP"] < 1.0
    for name, value in zip(STAT_NAMES, ref, strict=True):
        assert abs(ours[name] - value) <= 1e-12, name


def test_format_table_shows_undefined_as_na() -> None:
    stats = dict.fromkeys(STAT_NAMES, 0.5) | {"APm": -1.0}
    text = format_table(stats)
    assert "n/a" in text and "0.500" in text and len(text.splitlines()) == 3


# --------------------------------------------------------------------------- OKS / box NMS


def _official_oks_iou(g, d, a_g, a_d, sigmas):
    """Transcription of lib/nms/nms.py oks_iou (in_vis_thre=None) on flat (3K,) poses."""
    variances = (sigmas * 2) ** 2
    xg, yg = g[0::3], g[1::3]
    ious = np.zeros(d.shape[0])
    for n in range(d.shape[0]):
        dx, dy = d[n, 0::3] - xg, d[n, 1::3] - yg
        e = (dx**2 + dy**2) / variances / ((a_g + a_d[n]) / 2 + np.spacing(1)) / 2
        ious[n] = np.sum(np.exp(-e)) / e.shape[0] if e.shape[0] != 0 else 0.0
    return ious


def _official_oks_nms(kpts, scores, areas, thresh, sigmas):
    kpts = kpts.reshape(kpts.shape[0], -1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        ovr = _official_oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def _pose(rng: np.random.Generator, center: tuple[float, float], spread: float = 40.0) -> np.ndarray:
    xy = np.asarray(center) + rng.normal(0, spread, size=(17, 2))
    return np.column_stack([xy, rng.random(17)])


def test_oks_nms_suppresses_duplicates_keeps_distinct() -> None:
    rng = np.random.default_rng(0)
    a, b = _pose(rng, (100, 100)), _pose(rng, (400, 300))
    dup = a.copy()
    dup[:, :2] += 0.5
    kpts = np.stack([dup, a, b])
    keep = oks_nms(kpts, np.array([0.8, 0.9, 0.7]), np.full(3, 100.0 * 200.0), thresh=0.9)
    assert keep == [1, 2]


def test_oks_nms_matches_official_reference_on_random_data() -> None:
    rng = np.random.default_rng(7)
    templates = [_pose(rng, c, 30) for c in ((100, 100), (130, 110), (400, 300))]
    kpts = np.stack([templates[i % 3] + np.c_[rng.normal(0, 4, (17, 2)), rng.random(17)] for i in range(40)])
    scores = rng.random(40)
    areas = rng.uniform(5e3, 4e4, 40)
    for i in range(0, 40, 5):
        got = oks_iou(kpts[i], kpts, areas[i], areas)
        want = _official_oks_iou(kpts[i].reshape(-1), kpts.reshape(40, -1), areas[i], areas, COCO_OKS_SIGMAS)
        np.testing.assert_array_equal(got, want)
    for thresh in (0.3, 0.5, 0.9):
        keep = oks_nms(kpts, scores, areas, thresh=thresh)
        assert keep == _official_oks_nms(kpts, scores, areas, thresh, COCO_OKS_SIGMAS)
        assert 3 <= len(keep) < 40


def test_oks_nms_threshold_is_strict_greater_than_for_suppression() -> None:
    rng = np.random.default_rng(3)
    a = _pose(rng, (200, 200))
    b = a.copy()
    b[:, :2] += 3.0
    kpts, scores, areas = np.stack([a, b]), np.array([0.9, 0.8]), np.array([9e3, 1.1e4])
    ovr = float(oks_iou(a, b[None], areas[0], areas[1:])[0])
    assert 0.0 < ovr < 1.0
    assert oks_nms(kpts, scores, areas, thresh=ovr) == [0, 1]  # equal overlap is kept
    assert oks_nms(kpts, scores, areas, thresh=np.nextafter(ovr, -1.0)) == [0]


def test_oks_iou_vis_thr_uses_joints_confident_in_both() -> None:
    g = np.zeros((3, 3))
    d = np.zeros((1, 3, 3))
    g[:, 2] = [0.9, 0.9, 0.1]
    d[0, :, 2] = [0.9, 0.1, 0.9]
    d[0, 1:, 0] = 1000.0  # joints 1 and 2 are far off, joint 0 is exact
    sig = np.full(3, 0.1)
    assert oks_iou(g, d, 100.0, np.array([100.0]), sig, vis_thr=0.5)[0] == pytest.approx(1.0)
    assert oks_iou(g, d, 100.0, np.array([100.0]), sig)[0] == pytest.approx(1 / 3)
    d[0, 0, 2] = 0.0
    assert oks_iou(g, d, 100.0, np.array([100.0]), sig, vis_thr=0.5)[0] == 0.0
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0)) == []


def test_box_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    assert box_nms(boxes, scores, 0.5) == [3, 2]
    assert box_nms(boxes, scores, 0.99) == [3, 0, 1, 2]
    assert box_nms(np.zeros((0, 4)), np.zeros(0), 0.5) == []


# --------------------------------------------------------------------------- rescoring and results


def test_rescore_hand_computed() -> None:
    kps = np.array([[0.1, 0.5, 0.9], [0.1, 0.2, 0.15], [0.3, 0.3, 0.3]])
    box = np.array([0.8, 0.5, 1.0])
    np.testing.assert_allclose(rescore(kps, box, thr=0.2), [0.7 * 0.8, 0.0, 0.3])


def _box_to_area(bbox: list[float], aspect: float = 192 / 256, pixel_std: float = 200.0) -> float:
    """Official _box2cs: widen to the input aspect ratio, pad by 1.25, area = s0*s1*200**2."""
    _, _, w, h = bbox
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    s = np.array([w / pixel_std, h / pixel_std]) * 1.25
    return float(s[0] * s[1] * pixel_std**2)


def test_make_coco_results_on_detections_end_to_end() -> None:
    dets = json.loads((_need(MMPOSE_COCO) / "test_coco_det_AP_H_56.json").read_text())
    gt_path = MMPOSE_COCO / "test_coco.json"
    rng = np.random.default_rng(5)
    boxes = np.array([d["bbox"] for d in dets])
    layout = rng.random((17, 2))  # the same relative pose in every box: overlapping boxes overlap in OKS
    xy = boxes[:, None, :2] + layout[None] * boxes[:, None, 2:]
    kps = rng.random((len(dets), 17))
    box_scores = np.array([d["score"] for d in dets])
    areas = np.array([_box_to_area(d["bbox"]) for d in dets])
    image_ids = [d["image_id"] for d in dets]
    # an exact duplicate of detection 0 with a lower box score must be suppressed by OKS-NMS
    xy, kps = np.concatenate([xy, xy[:1]]), np.concatenate([kps, kps[:1]])
    box_scores, areas = np.r_[box_scores, box_scores[0] * 0.5], np.r_[areas, areas[0]]
    image_ids.append(image_ids[0])

    results = make_coco_results(image_ids, xy, kps, box_scores, areas)
    all_kept = make_coco_results(image_ids, xy, kps, box_scores, areas, nms_thr=None)
    assert len(all_kept) == len(image_ids)
    assert 0 < len(results) < len(dets)
    json.dumps(results)
    for r in results:
        assert set(r) == {"image_id", "category_id", "keypoints", "score"}
        assert type(r["image_id"]) is int and r["category_id"] == 1 and type(r["score"]) is float
        assert len(r["keypoints"]) == 17 * 3 and all(type(v) is float for v in r["keypoints"])
    scores = rescore(kps, box_scores)
    kept_scores = {r["score"] for r in results}
    assert float(scores[-1]) not in kept_scores and float(scores[0]) in kept_scores
    for image_id in set(image_ids):
        s = [r["score"] for r in results if r["image_id"] == image_id]
        assert s == sorted(s, reverse=True)
    stats = evaluate_keypoints(gt_path, results)
    assert set(stats) == set(STAT_NAMES) and all(-1.0 <= v <= 1.0 for v in stats.values())


# --------------------------------------------------------------------------- malformed input


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def _bad_results(gt: dict) -> dict[str, tuple[object, str]]:
    base = _gt_predictions(gt)[:5]

    def with_change(**change: object) -> str:
        preds = copy.deepcopy(base)
        preds[3].update(change)
        return json.dumps(preds)

    return {
        "bad_json": (
            '[{"image_id": 139,, }]',
            "not valid JSON: Expecting property name enclosed in double quotes at line 1",
        ),
        "wrong_count": (with_change(keypoints=[1.0] * 48), "result 3 has 16 keypoints, GT has 17"),
        "not_multiple_of_3": (with_change(keypoints=[1.0] * 50), "result 3 has 50 keypoint numbers"),
        "nan": (with_change(keypoints=[float("nan")] * 51), "result 3 has NaN or infinite keypoint values"),
        "inf_score": (with_change(score=float("inf")), "result 3 has score inf"),
        "unknown_image": (
            with_change(image_id=999999999),
            "image_id 999999999, which is not in the ground truth",
        ),
        "unknown_category": (with_change(category_id=7), "result 3 has category_id 7"),
        "missing_score": (
            json.dumps([{k: v for k, v in p.items() if k != "score"} for p in base]),
            "no 'score'",
        ),
        "empty": ("[]", "no predictions"),
        "not_a_list": ('{"annotations": []}', "results must be a JSON list"),
        "not_dicts": ("[1, 2]", "result 0 is not an object"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bad_json",
        "wrong_count",
        "not_multiple_of_3",
        "nan",
        "inf_score",
        "unknown_image",
        "unknown_category",
        "missing_score",
        "empty",
        "not_a_list",
        "not_dicts",
    ],
)
def test_malformed_results_raise_readable_error(case: str, mini_gt: dict, tmp_path: Path) -> None:
    content, expected = _bad_results(mini_gt)[case]
    path = _write(tmp_path, "RESULTS.json", content)
    with pytest.raises(HeatposeError) as info:
        score_command(str(MINI_GT), str(path), as_json=True, out=io.StringIO())
    message = str(info.value)
    assert "RESULTS.json" in message and expected in message
    assert "\n" not in message


def test_malformed_results_as_list_do_not_mutate_input(mini_gt: dict) -> None:
    preds = _gt_predictions(mini_gt)
    snapshot = copy.deepcopy(preds)
    evaluate_keypoints(MINI_GT, preds)
    assert preds == snapshot  # pycocotools' loadRes adds area/bbox/id; we hand it a copy
    with pytest.raises(HeatposeError, match="results: no predictions"):
        evaluate_keypoints(MINI_GT, [])


def test_missing_files_and_bad_gt(mini_gt: dict, tmp_path: Path) -> None:
    preds = _write(tmp_path, "preds.json", json.dumps(_gt_predictions(mini_gt)))
    with pytest.raises(HeatposeError, match=r"results file not found: .*nope\.json"):
        evaluate_keypoints(MINI_GT, tmp_path / "nope.json")
    with pytest.raises(HeatposeError, match=r"ground truth file not found: .*GT_missing\.json"):
        evaluate_keypoints(tmp_path / "GT_missing.json", preds)
    no_anns = _write(tmp_path, "GT.json", json.dumps({"images": [], "categories": []}))
    with pytest.raises(HeatposeError, match=r"GT\.json: COCO ground truth lacks an 'annotations' list"):
        evaluate_keypoints(no_anns, preds)
    bad_gt = _write(tmp_path, "GT2.json", '{\n  "images": [}\n')
    with pytest.raises(HeatposeError, match=r"GT2\.json: not valid JSON: .* at line 2, column 14"):
        evaluate_keypoints(bad_gt, preds)
    boxes_only = copy.deepcopy(mini_gt)
    for ann in boxes_only["annotations"]:
        ann.pop("keypoints")
    with pytest.raises(HeatposeError, match=r"annotations\[0\] lacks 'keypoints'"):
        evaluate_keypoints(_write(tmp_path, "GT3.json", json.dumps(boxes_only)), preds)
