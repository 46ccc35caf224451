"""``heatpose reproduce cfa-stages``: rows that really differ, a tiny run end to end, honest verdicts."""

from __future__ import annotations

import json

import pytest
import yaml

from heatpose.cli import main
from heatpose.config import config_from_dict
from heatpose.errors import HeatposeError
from heatpose.reproduce_cfa import (
    CFA_STAGES,
    TRENDS,
    Trend,
    judge,
    refinement_lines,
    row_config,
    select_rows,
)
from heatpose.steps import CommandStep, run_steps


def _model_and_sets(cfg: dict) -> tuple[int, bool, int, str]:
    m = cfg["model"]
    return m["num_stages"], m["aggregate"], len(cfg["data"].get("train_sets", [])), m.get("init_from", "")


def test_rows_differ_in_stages_aggregation_extra_data_and_start(tmp_path):
    facts = {}
    for row in CFA_STAGES.rows:
        cfg = row_config(tmp_path, row, epochs=5)
        config_from_dict(cfg)  # every row is a valid heatpose config
        assert cfg["train"]["epochs"] == 5 and cfg["data"]["dataset"] == "mpii"
        facts[row.name] = _model_and_sets(cfg)
    grown = {n: str(tmp_path / "rows" / src / "train" / "best.pth") for n, src in
             (("s4_grow", "s3"), ("s4_grow_extra", "s3_extra"))}  # fmt: skip
    assert facts == {
        "s1": (1, True, 0, ""),
        "s2": (2, True, 0, ""),
        "s3": (3, True, 0, ""),
        "s4": (4, True, 0, ""),
        "s4_grow": (4, True, 0, grown["s4_grow"]),
        "s2_noagg": (2, False, 0, ""),
        "s3_noagg": (3, False, 0, ""),
        "s3_extra": (3, True, 2, ""),
        "s4_grow_extra": (4, True, 2, grown["s4_grow_extra"]),
    }
    extra = row_config(tmp_path, CFA_STAGES.rows[-1], 5)["data"]["train_sets"]
    assert [(s["dataset"], s["schema"]) for s in extra] == [("mpii", "mpii"), ("coco", "coco")]
    assert extra[1]["ann"].endswith("person_keypoints_extra.json")


def test_a_grown_row_brings_the_row_it_grows_from():
    assert [r.name for r in select_rows(["s4_grow_extra"])] == ["s3_extra", "s4_grow_extra"]
    assert [r.name for r in select_rows(["s2"])] == ["s2"]
    with pytest.raises(HeatposeError, match="unknown row"):
        select_rows(["s5"])


def test_verdicts_follow_the_numbers_and_the_noise_band():
    t = Trend("aggregation helps", ("s2",), ("s2_noagg",))
    assert judge(t, {"s2": 50.0, "s2_noagg": 40.0}) == (10.0, "matches")
    assert judge(t, {"s2": 40.0, "s2_noagg": 50.0}) == (-10.0, "does not match")
    assert judge(t, {"s2": 41.0, "s2_noagg": 40.0})[1].startswith("within noise")
    assert judge(t, {"s2": 41.0})[1].startswith("not run")
    did = next(t for t in TRENDS if len(t.plus) == 2)  # a difference of differences
    diff, verdict = judge(did, {"s4_grow_extra": 60.0, "s3": 50.0, "s3_extra": 52.0, "s4_grow": 51.0})
    assert diff == pytest.approx(7.0) and verdict == "matches"
    rows = [
        {"row": "s3", "aggregate": True, "stages": 3, "per_stage": [30.0, 25.0, 20.0]},
        {"row": "s3_noagg", "aggregate": False, "stages": 3, "per_stage": [20.0, 25.0, 30.0]},  # independent
        {"row": "s1", "aggregate": True, "stages": 1, "per_stage": []},
    ]
    assert refinement_lines(rows) == [
        "- later stages refine earlier ones (coarse to fine), row s3: stage 3 - stage 1 = -10.00 "
        "-> **does not match**"
    ]


def test_tiny_cfa_stages_runs_end_to_end_and_the_table_shows_results_json(tmp_path, one_thread):
    out = tmp_path / "rep"
    argv = ["reproduce", "cfa-stages", "--out", str(out), "--size", "tiny", "--minutes-per-row", "0"]
    assert main([*argv, "--rows", "s4_grow_extra"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["row"] for r in results] == ["s3_extra", "s4_grow_extra"]
    table = (out / "table.md").read_text()
    for r in results:
        assert r["ours"] is not None and 0 <= r["ours"] <= 100
        assert len(r["per_stage"]) == r["stages"] and all(v is not None for v in r["per_stage"])
        stages = ", ".join(f"{v:.2f}" for v in r["per_stage"])
        assert f"| {r['ours']:.2f} | {stages} | {r['epochs']} |" in table
        meta = json.loads((out / "rows" / r["row"] / "eval" / "eval_meta.json").read_text())
        assert meta["metrics"]["PCKh"] == r["ours"]  # the table's number is the evaluation's
    assert "row s3_extra: stage 3 - stage 1 = " in table and "row s4_grow_extra: stage 4" in table
    assert "| 93.9 |" in table and "heatpose train" in table and (out / "table.png").stat().st_size > 0
    written = {
        r["row"]: yaml.safe_load((out / "rows" / r["row"] / "config.yaml").read_text()) for r in results
    }
    assert _model_and_sets(written["s3_extra"]) == (3, True, 2, "")
    assert _model_and_sets(written["s4_grow_extra"]) == (
        4, True, 2, str(out / "rows" / "s3_extra" / "train" / "best.pth")
    )  # fmt: skip
    assert results[1]["grown_from"] == "s3_extra" and results[1]["extra_data"]
    assert main([*argv, "--rows", "s5"]) == 2  # unknown row: one error line


def test_ctrl_c_inside_a_step_names_the_resume_command(tmp_path, capsys):
    steps = [CommandStep(f"s{i}", f"step {i}", ["train", f"cfg{i}.yaml"]) for i in range(2)]
    status = iter([0, 130])  # the second command was interrupted (cli.main returns 130)
    with pytest.raises(KeyboardInterrupt):
        run_steps(
            tmp_path, steps, "heatpose reproduce cfa-stages --out X", run_command=lambda argv: next(status)
        )
    assert "Continue with: heatpose reproduce cfa-stages --out X" in capsys.readouterr().err
    assert (tmp_path / ".steps" / "s0").is_file() and not (tmp_path / ".steps" / "s1").exists()


def test_epochs_are_the_nearest_whole_number_that_fits_the_budget(tmp_path, monkeypatch):
    import heatpose.budget
    from heatpose.reproduce_cfa import _write_row_config

    ann = tmp_path / "data" / "annotations"
    ann.mkdir(parents=True)
    people = {"annotations": [{"keypoints": [1, 1, 2]}] * 100}
    for split in ("train", "extra"):
        (ann / f"person_keypoints_{split}.json").write_text(json.dumps(people))
    rows = {r.name: r for r in CFA_STAGES.rows}
    for speed, row, epochs in (
        (2.7, "s1", 2),
        (2.3, "s1", 1),
        (5.4, "s3_extra", 2),
        (0.3, "s2", 1),
        (17.0, "s2", 10),
    ):
        monkeypatch.setattr(heatpose.budget, "probe_samples_per_s", lambda cfg, s=speed: s)
        path = _write_row_config(
            tmp_path, rows[row], 1.0, "tiny"
        )  # 60 s x speed / people (200 with extra) epochs
        assert yaml.safe_load(path.read_text())["train"]["epochs"] == epochs, (speed, row)
