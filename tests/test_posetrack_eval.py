"""PoseTrack reading and poseval-style scoring, checked against hand counts in both modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from heatpose.cli import main
from heatpose.data.posetrack import read_detections, read_posetrack
from heatpose.errors import HeatposeError
from heatpose.evaluation.posetrack import MotAccumulator, evaluate_posetrack, points_in_polygons
from heatpose.keypoints import POSETRACK18
from tests.conftest import shared_path

JOINTS = ("a", "b")  # a two-joint schema: every joint is scored, nothing is dropped
HEAD = [0, 0, 10, 0]  # head box diagonal 10 -> head size 6 -> a joint matches within 3 px

Person = tuple[int, list[tuple[float, float] | None]]


def _json(name: str, frames: list[list[Person]], regions: dict[int, list] | None = None, scores=None) -> dict:
    images, annotations = [], []
    for t, people in enumerate(frames):
        fid = 10_000_000_000 + t
        xs = [[p[0] for p in poly] for poly in (regions or {}).get(t, [])]
        ys = [[p[1] for p in poly] for poly in (regions or {}).get(t, [])]
        images.append(
            {"file_name": f"images/val/{name}/{t:06d}.jpg", "frame_id": fid, "id": fid, "is_labeled": True}
            | {"ignore_regions_x": xs, "ignore_regions_y": ys}
        )
        for k, (tid, pts) in enumerate(people):
            kps = []
            for pt in pts:
                kps += [0, 0, 0] if pt is None else [pt[0], pt[1], 1]
            ann = {"image_id": fid, "id": fid * 100 + k, "track_id": tid, "keypoints": kps, "bbox_head": HEAD}
            if scores is not None:
                ann["scores"] = [scores.get((t, tid), 0.9)] * len(pts)
            annotations.append(ann)
    return {
        "categories": [{"name": "person", "keypoints": list(JOINTS)}],
        "images": images,
        "annotations": annotations,
    }


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command line in this process (a subprocess costs seconds of imports)."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(result: tuple[int, str, str], fragment: str) -> None:
    rc, _, err = result
    lines = err.strip().splitlines()
    assert (
        rc == 2 and len(lines) == 1 and lines[0].startswith("heatpose: error: ") and fragment in lines[0]
    ), err


def _score(tmp_path: Path, gt_frames, pr_frames, regions=None, scores=None) -> dict[bool, dict]:
    (tmp_path / "gt.json").write_text(json.dumps(_json("v", gt_frames, regions)))
    (tmp_path / "pr.json").write_text(json.dumps(_json("v", pr_frames, scores=scores or {})))
    gt, pr = read_posetrack(tmp_path / "gt.json"), read_posetrack(tmp_path / "pr.json")
    return {compat: evaluate_posetrack(gt, pr, compat) for compat in (True, False)}


P, Q, FAR = (10.0, 10.0), (50.0, 50.0), (200.0, 200.0)


def test_one_id_switch(tmp_path):
    gt = [[(1, [P, P])]] * 4
    pr = [[(7, [P, P])]] * 2 + [[(8, [P, P])]] * 2
    s = _score(tmp_path, gt, pr)
    # corrected: 4 objects per joint, 1 switch -> 1 - 1/4; compat: the last frame is not scored -> 1 - 1/3
    assert s[False]["MOTA"] == pytest.approx(75.0, abs=1e-3) and s[False]["num_switches"] == 2  # 1 per joint
    assert s[True]["MOTA"] == pytest.approx(100 * (1 - 1 / 3), abs=1e-3) and s[True]["num_objects"] == 6
    assert s[False]["AP"] == 100.0 and s[True]["AP"] == 100.0  # AP ignores identities


def test_one_miss(tmp_path):
    gt = [[(1, [P, P]), (2, [Q, Q])]] * 3
    pr = [[(5, [P, P]), (6, [Q, Q])], [(5, [P, P])], [(5, [P, P]), (6, [Q, Q])]]
    s = _score(tmp_path, gt, pr)
    assert s[False]["MOTA"] == pytest.approx(100 * (1 - 1 / 6), abs=1e-3) and s[False]["num_misses"] == 2
    assert s[True]["MOTA"] == pytest.approx(75.0, abs=1e-3)  # frames 0-1: 4 objects, 1 miss
    assert s[False]["recall"] == pytest.approx(100 * 5 / 6, abs=1e-3)


def test_one_false_positive_and_its_ap(tmp_path):
    gt = [[(1, [P, P])]] * 3
    pr = [[(5, [P, P]), (9, [FAR, FAR])], [(5, [P, P])], [(5, [P, P])]]
    s = _score(tmp_path, gt, pr, scores={(0, 9): 0.95})
    assert (
        s[False]["MOTA"] == pytest.approx(100 * (1 - 1 / 3), abs=1e-3)
        and s[False]["num_false_positives"] == 2
    )
    assert s[True]["MOTA"] == pytest.approx(50.0, abs=1e-3)  # frames 0-1: 2 objects, 1 FP
    assert s[False]["precision"] == pytest.approx(75.0, abs=1e-3)
    # ranked: FP (0.95), then 3 TPs (0.9): precision 1/2, 2/3, 3/4 at recall 1/3, 2/3, 1 -> VOC AP 0.75
    assert s[True]["AP"] == pytest.approx(75.0, abs=1e-3) and s[False]["AP"] == pytest.approx(75.0, abs=1e-3)


def test_points_in_an_ignore_region_count_on_neither_side(tmp_path):
    box = [(100, 100), (300, 100), (300, 300), (100, 300)]  # holds FAR, not P
    gt = [[(1, [P, P]), (2, [FAR, FAR])]] * 3  # GT person 2 stands in the ignore region
    pr = [[(5, [P, P]), (6, [FAR, (205.0, 195.0)])]] * 3  # and so does predicted person 6
    s = _score(tmp_path, gt, pr, regions={0: [box], 1: [box], 2: [box]})
    for mode in (True, False):
        assert s[mode]["MOTA"] == 100.0 and s[mode]["AP"] == 100.0
        assert s[mode]["num_false_positives"] == 0 and s[mode]["num_misses"] == 0
    no_regions = _score(tmp_path, gt, pr)
    assert no_regions[False]["num_objects"] == 12  # without the region person 2 is scored too


def test_a_frame_without_predictions(tmp_path):
    gt = [[(1, [P, P]), (2, [Q, Q])]] * 3
    pr = [[(5, [P, P]), (6, [Q, Q])], [], [(5, [P, P]), (6, [Q, Q])]]
    s = _score(tmp_path, gt, pr)
    # corrected: 6 objects per joint, 2 misses -> 1 - 2/6
    assert s[False]["MOTA"] == pytest.approx(100 * (1 - 2 / 6), abs=1e-3)
    assert s[False]["num_misses"] == 4 and s[False]["num_false_positives"] == 0
    # compat: frame 0 (2 objects, matched) + the empty frame 1 counted as 1 object, 1 miss, 1 FP
    assert s[True]["MOTA"] == pytest.approx(100 * (1 - 2 / 3), abs=1e-3)
    assert s[True]["num_misses"] == 2 and s[True]["num_false_positives"] == 2


def test_mot_accumulator_keeps_a_match_that_still_holds():
    acc = MotAccumulator()
    acc.update([1, 2], [10, 20], np.array([[0.1, np.nan], [np.nan, 0.1]]))
    # 20 is now slightly closer to GT 1 than 10 is, but 1-10 still matches: no switch
    acc.update([1, 2], [10, 20], np.array([[0.3, 0.2], [np.nan, 0.1]]))
    assert (acc.matches, acc.switches, acc.misses, acc.false_positives) == (4, 0, 0, 0)
    acc.update([1], [20], np.array([[0.1]]))  # GT 1 now matched to 20: a switch
    assert acc.switches == 1 and acc.distance_sum == pytest.approx(0.1 + 0.1 + 0.3 + 0.1 + 0.1, abs=1e-9)


def test_points_in_polygons_even_odd():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    pts = np.array([[5, 5], [15, 5], [-1, 5], [5, 10.5]])
    assert points_in_polygons(pts, [square]).tolist() == [True, False, False, False]


def test_reader_accepts_the_shared_posetrack18_sample():
    root = shared_path("mmpose_testdata", "posetrack18")
    videos = read_posetrack(root / "annotations" / "val")
    assert [v.name for v in videos] == ["003418_mpii_test", "009473_mpii_test", "012834_mpii_test"]
    assert all(v.joint_names == POSETRACK18.joint_names for v in videos)
    frame = videos[2].frames[0]
    assert len(frame.people) == 11 and len(frame.ignore_regions) == 4
    assert frame.people[0].head_box is not None and frame.people[0].keypoints.shape == (17, 3)
    combined = read_posetrack(root / "annotations" / "test_posetrack18_val.json")
    assert sorted(v.name for v in combined) == [v.name for v in videos]
    dets = read_detections(root / "annotations" / "test_posetrack18_human_detections.json")
    assert sum(len(s) for _, s in dets.values()) == 278
    s = evaluate_posetrack(videos, combined, poseval_compat=False)
    assert s["AP"] == 100.0 and s["MOTA"] == 100.0 and len(s["joints"]) == 15  # the ears are not scored


def test_bad_posetrack_inputs_are_one_line_errors(tmp_path, capsys):
    good = _json("v", [[(1, [P, P])]])
    cases = {
        "no_images.json": {"annotations": [], "categories": good["categories"]},
        "short_kps.json": good | {"annotations": [good["annotations"][0] | {"keypoints": [1, 2, 1]}]},
        "bad_track.json": good | {"annotations": [good["annotations"][0] | {"track_id": "x"}]},
        "orphan.json": good | {"annotations": [good["annotations"][0] | {"image_id": 5}]},
    }
    for name, data in cases.items():
        (tmp_path / name).write_text(json.dumps(data))
        with pytest.raises(HeatposeError, match=name):
            read_posetrack(tmp_path / name)
    (tmp_path / "gt.json").write_text(json.dumps(good))
    no_head = good | {"annotations": [{k: v for k, v in good["annotations"][0].items() if k != "bbox_head"}]}
    (tmp_path / "nohead.json").write_text(json.dumps(no_head))
    score = ("score", "--metric", "posetrack", "--gt")
    _one_line_error(
        _cli(capsys, *score, str(tmp_path / "nohead.json"), "--preds", str(tmp_path / "gt.json")), "bbox_head"
    )
    elsewhere = _json("w", [[(1, [P, P])]])  # the same frames, named as another video
    (tmp_path / "elsewhere.json").write_text(json.dumps(elsewhere))
    args = ("--preds", str(tmp_path / "elsewhere.json"))
    _one_line_error(_cli(capsys, *score, str(tmp_path / "gt.json"), *args), "no predictions for video v")
    other = good | {"categories": [{"name": "person", "keypoints": ["a", "c"]}]}
    (tmp_path / "other.json").write_text(json.dumps(other))
    _one_line_error(
        _cli(capsys, *score, str(tmp_path / "gt.json"), "--preds", str(tmp_path / "other.json")), "differ"
    )


def test_cli_scores_a_synthetic_video_split_against_itself(tmp_path, capsys):
    out = tmp_path / "clips"
    args = (
        "synth",
        str(out),
        "--video",
        "--num-videos",
        "2",
        "--frames",
        "4",
        "--width",
        "96",
        "--height",
        "80",
    )
    assert _cli(capsys, *args, "--split", "val", "--quiet", "--mp4")[0] == 0
    _one_line_error(_cli(capsys, *args, "--split", "val", "--quiet"), "--overwrite")
    gt = out / "annotations" / "val"
    assert sorted(p.name for p in gt.iterdir()) == ["000001_synthetic.json", "000002_synthetic.json"]
    assert (out / "videos" / "val" / "000001_synthetic.mp4").stat().st_size > 0
    assert len(list((out / "images" / "val" / "000002_synthetic").glob("*.jpg"))) == 4
    dets = json.loads((out / "annotations" / "val_human_detections.json").read_text())
    assert dets and {"image_id", "bbox", "score"} <= dets[0].keys()
    rc, stdout, _ = _cli(
        capsys, "score", "--metric", "posetrack", "--gt", str(gt), "--preds", str(gt), "--json"
    )
    assert rc == 0
    stats = json.loads(stdout)
    assert stats["MOTA"] == 100.0 and stats["AP"] == 100.0 and stats["mode"] == "poseval-compat"


def test_coco_layout_clips_score_on_their_17_joints_and_out_writes_the_json(tmp_path, capsys):
    """The clips a COCO-17 model is tracked on (``synth --video --layout coco``): every joint scored."""
    out = tmp_path / "clips"
    args = ("synth", str(out), "--video", "--layout", "coco", "--num-videos", "2", "--frames", "4")
    assert _cli(capsys, *args, "--width", "96", "--height", "80", "--split", "val", "--quiet")[0] == 0
    gt = out / "annotations" / "val"
    (video, _) = read_posetrack(gt)
    assert len(video.joint_names) == 17 and video.joint_names[3] == "left_ear"
    score = ("score", "--metric", "posetrack", "--gt", str(gt), "--preds", str(gt))
    rc, stdout, _ = _cli(capsys, *score, "--json", "--out", str(tmp_path / "s"))
    assert rc == 0
    stats = json.loads(stdout)
    assert stats["joints"] == list(video.joint_names)  # the ears too: poseval's 15 are PoseTrack's
    assert stats["MOTA"] == 100.0 and stats["AP"] == 100.0 and stats["num_switches"] == 0
    assert json.loads((tmp_path / "s" / "posetrack.json").read_text()) == stats
    # a GT track's id changed in the last two frames of a clip: a switch on (at most) each labelled joint
    path = gt / "000001_synthetic.json"
    preds = json.loads(path.read_text())
    last = sorted({a["image_id"] for a in preds["annotations"]})[-2:]
    people = [{a["track_id"]: a for a in preds["annotations"] if a["image_id"] == i} for i in last]
    track = min(set(people[0]) & set(people[1]))
    for a in preds["annotations"]:
        if a["image_id"] in last and a["track_id"] == track:
            a["track_id"] = 999
    pred_dir = tmp_path / "preds"
    pred_dir.mkdir()
    (pred_dir / path.name).write_text(json.dumps(preds))
    (pred_dir / "000002_synthetic.json").write_text((gt / "000002_synthetic.json").read_text())
    rc, stdout, _ = _cli(capsys, *score[:-1], str(pred_dir), "--json", "--no-poseval-compat")
    stats = json.loads(stdout)
    labelled = int(np.sum(np.array(people[0][track]["keypoints"])[2::3] > 0))
    assert rc == 0 and 0 < stats["num_switches"] <= labelled and stats["num_misses"] == 0
