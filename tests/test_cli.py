"""The command line: one clear error line and exit status 2 for user mistakes; score on real GT."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import shared_path


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heatpose", *args], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("heatpose: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_score_of_gt_derived_predictions_is_one(tmp_path):
    gt_path = shared_path("coco_mini", "annotations", "person_keypoints_val2017.json")
    gt = json.loads(gt_path.read_text())
    preds = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if not a["iscrowd"] and a["num_keypoints"] > 0
    ]
    preds_path = tmp_path / "preds.json"
    preds_path.write_text(json.dumps(preds))
    proc = run_cli("score", "--gt", str(gt_path), "--preds", str(preds_path), "--json")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert {"AP", "AP50", "AP75", "APm", "APl", "AR"} <= stats.keys()
    assert stats["AP"] == 1.0 and stats["AR"] == 1.0
    table = run_cli("score", "--gt", str(gt_path), "--preds", str(preds_path))
    assert table.returncode == 0 and "AP" in table.stdout


def test_score_bad_inputs_exit_2(tmp_path):
    gt_path = shared_path("coco_mini", "annotations", "person_keypoints_val2017.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    assert_one_line_error(run_cli("score", "--gt", str(gt_path), "--preds", str(bad)), "not valid JSON")
    missing = tmp_path / "missing.json"
    assert_one_line_error(run_cli("score", "--gt", str(gt_path), "--preds", str(missing)), "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps([{"image_id": 139, "category_id": 1, "keypoints": [1, 1, 1] * 16, "score": 1}])
    )
    assert_one_line_error(run_cli("score", "--gt", str(gt_path), "--preds", str(wrong)), "16 keypoints")


def test_bad_configs_exit_2(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model:\n  backbone_depht: 50\n")
    assert_one_line_error(
        run_cli("train", str(cfg), "--work-dir", str(tmp_path / "w")), "model.backbone_depht"
    )
    cfg.write_text("train:\n  lr: fast\n")
    assert_one_line_error(run_cli("train", str(cfg), "--work-dir", str(tmp_path / "w")), "train.lr")
    cfg.write_text("data:\n  train_ann: /nowhere/ann.json\n  train_images: /nowhere\n")
    assert_one_line_error(run_cli("train", str(cfg), "--work-dir", str(tmp_path / "w")), "/nowhere")
    assert_one_line_error(run_cli("train", str(tmp_path / "absent.yaml")), "config file not found")
    cfg.write_text("model: [1, 2\n")
    assert_one_line_error(run_cli("train", str(cfg)), "not valid YAML")


def test_missing_checkpoint_exits_2(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model:\n  backbone_depth: 18\n")
    proc = run_cli("eval", str(cfg), "--checkpoint", str(tmp_path / "none.pth"))
    assert_one_line_error(proc, "none.pth")


def test_synth_output_reads_back_and_scores_one_against_itself(tmp_path):
    from heatpose.data.coco import read_coco_people

    out = tmp_path / "synth"
    proc = run_cli("synth", str(out), "--num-images", "6", "--seed", "3", "--split", "val", "--quiet")
    assert proc.returncode == 0, proc.stderr
    ann = out / "annotations" / "person_keypoints_val.json"
    people = read_coco_people(ann, out / "images" / "val", 17, aspect_ratio=0.75)
    gt = json.loads(ann.read_text())
    labeled = [a for a in gt["annotations"] if a["num_keypoints"] > 0]
    assert len(people) == len(labeled) > 0
    preds = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in labeled
    ]
    preds_path = tmp_path / "preds.json"
    preds_path.write_text(json.dumps(preds))
    scored = run_cli("score", "--gt", str(ann), "--preds", str(preds_path), "--json")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["AP"] == 1.0


def test_synth_bad_arguments_exit_2(tmp_path):
    assert_one_line_error(run_cli("synth", str(tmp_path / "s"), "--num-images", "0"), "num_images")
