"""``heatpose demo`` in its fastest setting: the report folder holds the html, metrics and pictures."""

from __future__ import annotations

import json
import math

from heatpose.cli import main
from heatpose.demo import metrics_from_report


def test_tiny_demo_writes_a_consistent_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--preset", "tiny"]) == 0
    for name in ("index.html", "metrics.json", "curves.png", "demo_config.yaml"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    shown = metrics_from_report(out / "index.html")
    assert set(shown) == set(metrics)
    for key, value in metrics.items():
        undefined = value is None or (isinstance(value, float) and (math.isnan(value) or value < 0))
        assert shown[key] == ("n/a" if undefined else f"{value:.4f}"), key
    html = (out / "index.html").read_text()
    for command in ("heatpose train", "heatpose eval", "heatpose predict", "heatpose track"):
        assert command in html, command
    pictures = sorted((out / "predict").glob("*.jpg"))
    assert len(pictures) == 2 and all(f'src="predict/{p.name}"' in html for p in pictures)
    frames = sorted((out / "track" / "frames").glob("*.jpg"))
    assert frames and all(f'src="track/frames/{p.name}"' in html for p in frames)
    assert (out / "track" / "tracks.json").is_file()
    # a second run finds every step done and only rewrites the report
    assert main(["demo", "--out", str(out), "--preset", "tiny"]) == 0
