"""The fast form of the bad-input sweep (tests/bad_input_sweep.py): >= 60 distinct bad inputs
to ``score``, ``eval``, ``train`` and ``synth``, each one clear error line with exit status 2
(or a usable input that works), never a traceback, never code run from a checkpoint."""

from __future__ import annotations

from tests.bad_input_sweep import describe, run_sweep


def test_fast_bad_input_sweep(tmp_path):
    outcomes = run_sweep(tmp_path / "sweep", jobs=2)
    assert len(outcomes) >= 60
    assert {o.case.argv[0] for o in outcomes} == {"score", "eval", "train", "synth"}
    assert sum(o.case.expect == "error" for o in outcomes) >= 60
    failed = [describe(o) for o in outcomes if o.problems]
    assert not failed, "\n".join(failed)
