"""heatpose's CLEAR-MOT accumulator against py-motmetrics itself (skipped where it is not installed).

poseval counts MOT events with py-motmetrics; heatpose re-implements the accumulator to avoid the
pandas dependency. This compares them on random sequences: GT and predicted ids appearing and
vanishing, distances with NaN (no match allowed) mixed in.
"""

from __future__ import annotations

import numpy as np
import pytest

from heatpose.evaluation.posetrack import MotAccumulator

mm = pytest.importorskip("motmetrics")

NAMES = ["num_matches", "num_switches", "num_misses", "num_false_positives", "num_objects", "motp"]


def test_accumulator_counts_what_motmetrics_counts():
    rng = np.random.default_rng(0)
    metrics = mm.metrics.create()
    for _ in range(200):
        ours, theirs = MotAccumulator(), mm.MOTAccumulator(auto_id=True)
        n_gt, n_pr = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        for _ in range(int(rng.integers(2, 12))):
            gt = sorted(rng.choice(n_gt, int(rng.integers(0, n_gt + 1)), replace=False).tolist())
            pr = sorted(
                rng.choice(np.arange(100, 100 + n_pr), int(rng.integers(0, n_pr + 1)), replace=False).tolist()
            )
            dist = rng.uniform(0, 1, (len(gt), len(pr)))
            dist[rng.random(dist.shape) < 0.4] = np.nan
            ours.update(gt, pr, dist)
            theirs.update(gt, pr, dist)
        m = metrics.compute(theirs, metrics=NAMES, return_dataframe=False)
        assert (ours.matches, ours.switches, ours.misses, ours.false_positives, ours.objects) == tuple(
            int(m[k]) for k in NAMES[:5]
        )
        detected = ours.matches + ours.switches
        if detected:
            assert ours.distance_sum / detected == pytest.approx(m["motp"], abs=1e-9)
