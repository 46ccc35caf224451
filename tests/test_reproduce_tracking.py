"""``heatpose reproduce sb-tracking``: the tiny setting end to end (a model trained for seconds), the
table shows what results.json holds, and every row tracks with its own settings."""

from __future__ import annotations

import json

import pytest

import heatpose.tracking.run as track_run
from heatpose.cli import main
from heatpose.reproduce_tracking import ROWS
from heatpose.tracking.run import tracker_config


def test_tiny_sb_tracking_trains_tracks_every_row_and_writes_a_consistent_table(tmp_path, monkeypatch):
    seen: list[tuple[str, str, bool]] = []  # (tracks out, similarity, propagate) of every track call
    original = track_run.track_video

    def recording_track_video(source, estimate, schema, config, out_path, **kwargs):
        seen.append((str(out_path), config.similarity, config.propagate))
        return original(source, estimate, schema, config, out_path, **kwargs)

    monkeypatch.setattr(track_run, "track_video", recording_track_video)
    out = tmp_path / "rep"
    argv = ["reproduce", "sb-tracking", "--out", str(out), "--size", "tiny", "--minutes-per-row", "0"]
    assert main(argv) == 0

    # every row ran its own tracker settings on the clip, in the paper's order
    by_row = {r.name: (r.similarity, r.propagate) for r in ROWS}
    assert len(seen) == len(ROWS)
    for path, similarity, propagate in seen:
        row = path.split("/rows/")[1].split("/")[0]
        assert (similarity, propagate) == by_row[row], path
    assert len({(s, p) for _, s, p in seen}) == len(ROWS)

    results = json.loads((out / "results.json").read_text())
    assert [r["row"] for r in results["rows"]] == [r.name for r in ROWS]
    assert results["model"]["trained_here"] and results["model"]["epochs"] == 1
    table = (out / "table.md").read_text()
    for r in results["rows"]:
        cells = [
            r["row"],
            r["label"],
            f"{r['AP']:.1f}",
            f"{r['MOTA']:.1f}",
            f"{r['MOTA_corrected']:.1f}",
            str(r["switches"]),
            str(r["misses"]),
            str(r["false_positives"]),
        ]
        assert "| " + " | ".join(cells) + " |" in table, r["row"]
        assert f"| {r['paper_mAP']:.1f} | {r['paper_MOTA']:.1f} |" in table
        scored = json.loads((out / "rows" / r["row"] / "score_compat" / "posetrack.json").read_text())
        assert (scored["MOTA"], scored["num_switches"]) == (r["MOTA"], r["switches"])
        assert " ".join(f"--tracker {s}" for s in r["tracker"]) in table
    assert "heatpose train" in table and "heatpose track" in table and "--metric posetrack" in table
    assert (out / "table.png").stat().st_size > 0

    # a second run finds every step done and only rewrites the table
    seen.clear()
    assert main(argv) == 0 and seen == []
    # another checkpoint into the same folder would mix two models' rows: refused in one line
    assert main([*argv, "--checkpoint", str(out / "train_config.yaml")]) == 2


def test_rows_are_the_papers_settings_and_numbers():
    configs = {r.name: tracker_config(r.tracker_settings) for r in ROWS}
    assert len({(c.similarity, c.propagate) for c in configs.values()}) == len(ROWS)
    assert all(c.det_score_thr == 0.5 for c in configs.values())
    assert not configs["noprop_iou"].propagate and configs["prop_multiflow"].similarity == "multi_flow"
    paper = {r.name: (r.paper_map, r.paper_mota) for r in ROWS}
    assert paper["noprop_iou"] == (69.3, 59.8) and paper["noprop_oks"] == (69.3, 59.7)
    assert paper["prop_iou"] == (72.4, 62.1) and paper["prop_multiflow"] == (72.4, 62.9)


@pytest.mark.parametrize(
    ("table", "extra", "fragment"),
    [
        ("sb-tracking", ["--rows", "nope"], "unknown row"),
        ("sb-tracking", ["--checkpoint", "missing.pth"], "checkpoint not found"),
        ("sb-tracking", ["--minutes-per-row", "-1"], "--minutes-per-row"),
        ("sb-table1", ["--checkpoint", "any.pth"], "--checkpoint is for sb-tracking"),
    ],
)
def test_bad_sb_tracking_arguments_are_one_line_errors(tmp_path, capsys, table, extra, fragment):
    assert main(["reproduce", table, "--out", str(tmp_path / "r"), "--size", "tiny", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("heatpose: error: ") and fragment in err[0], err
