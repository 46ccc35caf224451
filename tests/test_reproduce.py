"""``heatpose reproduce``: one tiny row end to end; the table shows what results.json holds."""

from __future__ import annotations

import json

from heatpose.cli import main
from heatpose.reproduce import SB_TABLE1


def test_tiny_reproduce_row_writes_table_plot_and_results(tmp_path):
    out = tmp_path / "rep"
    argv = ["reproduce", "sb-table1", "--out", str(out), "--size", "tiny", "--minutes-per-row", "0"]
    assert main([*argv, "--rows", "layers1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["row"] for r in results] == ["layers1"]
    table = (out / "table.md").read_text()
    row = results[0]
    assert f"| layers1 | 1 deconv layer | {row['ours']:.3f} | 1 |" in table
    assert "heatpose train" in table and (out / "table.png").stat().st_size > 0
    cfg = (out / "rows" / "layers1" / "config.yaml").read_text()
    assert "num_deconv_layers: 1" in cfg
    assert main([*argv, "--rows", "nope"]) == 2  # unknown row: one error line


def test_sb_table1_rows_carry_the_papers_numbers():
    paper = {r.name: r.paper_value for r in SB_TABLE1.rows}
    assert paper["base"] == 70.4 and paper["layers2"] == 67.9 and paper["input96x64"] == 60.6
    assert paper["input192x128"] == 72.2 and paper["layers1"] is None
