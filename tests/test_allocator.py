"""heatpose.allocator: freed memory kept for reuse (no page faults on the next forward); who sets it."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest
import torch

from heatpose import allocator
from heatpose.cli import main
from heatpose.config import config_from_dict, config_to_dict
from heatpose.engine.checkpoint import checkpoint_meta
from heatpose.models import build_model
from heatpose.predictor import PoseEstimator

needs_glibc = pytest.mark.skipif(allocator._glibc() is None, reason="mallopt is glibc's (Linux)")
BLOCK = 64 << 20  # over glibc's largest adaptive mmap threshold (32 MiB)

FAULTS_SCRIPT = """
import resource, sys, torch
from heatpose import allocator
if sys.argv[1] == "kept":
    assert allocator.keep_freed_memory() and allocator.freed_memory_kept()
MIB = 1 << 20
def forward_like():  # activations of several sizes, each freed while others are alive
    a = torch.ones(64 * MIB, dtype=torch.uint8)  # torch.ones touches every page
    b = torch.ones(16 * MIB, dtype=torch.uint8)
    del a
    c = torch.ones(64 * MIB, dtype=torch.uint8)
    del b
    d = torch.ones(48 * MIB, dtype=torch.uint8)
    del c, d
for _ in range(6):  # the heap settles at its high-water mark, as over the first forwards
    forward_like()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    forward_like()
pages = (64 + 16 + 64 + 48) * MIB // resource.getpagesize()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4 / pages)
"""


def _share_of_pages_faulted(policy: str) -> float:
    """Minor page faults per touched page of a forward-like allocation pattern (blocks of 16-64 MiB,
    over glibc's largest adaptive mmap threshold, like R50's batch-16 activations), after six
    warm-up rounds, in a fresh process (a fresh heap, whatever earlier tests did to this one).

    torch tensors, not numpy arrays: numpy asks for transparent huge pages, torch's CPU allocator
    (what the activations use) does not, so a freshly mapped block faults once per 4 KiB page.
    """
    done = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT, policy], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


MALLINFO2_FIELDS = [
    "arena",
    "ordblks",
    "smblks",
    "hblks",
    "hblkhd",
    "usmblks",
    "fsmblks",
    "uordblks",
    "fordblks",
    "keepcost",
]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS]


def _mmapped_blocks() -> int:
    """glibc's count of blocks served by their own mmap (mallinfo2, glibc >= 2.33)."""
    libc = allocator._glibc()
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("mallinfo2 needs glibc >= 2.33")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().hblks


@needs_glibc
def test_kept_memory_is_reused_without_page_faults():
    assert _share_of_pages_faulted("default") > 0.5  # a fresh mmap each time: a fault per page
    # the same pages again; a heap that has not settled yet maps one more block now and then
    # (1 of 12 blocks in 1 of 8 fresh processes after 3 warm-up rounds, none after 6)
    assert _share_of_pages_faulted("kept") < 0.2


@needs_glibc
def test_kept_memory_serves_large_blocks_from_the_heap_and_can_be_undone():
    was_kept = allocator.freed_memory_kept()
    try:
        assert allocator.glibc_default_policy()
        assert not allocator.freed_memory_kept()
        block = torch.ones(BLOCK, dtype=torch.uint8)
        assert _mmapped_blocks() >= 1  # glibc's default: a block this large is its own mmap
        del block
        assert allocator.keep_freed_memory()
        before = _mmapped_blocks()
        block = torch.ones(BLOCK, dtype=torch.uint8)
        assert _mmapped_blocks() == before  # served from the heap glibc keeps
        del block
    finally:
        if was_kept:
            allocator.keep_freed_memory()


@needs_glibc
def test_heatpose_commands_keep_freed_memory(capsys):
    allocator.glibc_default_policy()
    assert main(["export", "--checkpoint", "missing.pth", "--out", "m.onnx"]) == 2
    assert "heatpose: error:" in capsys.readouterr().err
    assert allocator.freed_memory_kept()


@needs_glibc
def test_a_cpu_pose_estimator_keeps_freed_memory_unless_told_not_to(tmp_path):
    cfg = config_from_dict({"model": {"backbone_depth": 18, "num_deconv_filters": 16}})
    path = tmp_path / "tiny.pth"
    state = build_model(cfg.model).state_dict()
    torch.save({"model": state, "config": config_to_dict(cfg), "meta": checkpoint_meta(cfg)}, path)
    allocator.glibc_default_policy()
    PoseEstimator.from_checkpoint(path, detector="whole-image", keep_freed_memory=False)
    assert not allocator.freed_memory_kept()
    PoseEstimator.from_checkpoint(path, detector="whole-image")
    assert allocator.freed_memory_kept()
