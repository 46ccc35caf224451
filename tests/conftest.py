"""Shared test fixtures: where the real sample data lives (../shared/data from the project root)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not found at {path} (it ships beside the project, not inside it)")
    return path


@pytest.fixture
def one_thread():
    """One intra-op torch thread for the test: ``pytest -n 2`` on a 2-core machine already runs two
    workers, and more threads per worker only fight over the cores (slower, not faster)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
