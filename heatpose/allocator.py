"""Keep freed memory in the process for reuse instead of handing it back to the OS (glibc).

Why: a forward pass allocates its activations afresh on every call, and most of them are large
(R50 at 256x192, batch 16: 50 MB for each 256-channel layer1 output). glibc's ``malloc`` serves
blocks over its mmap threshold (128 KiB, adapting up to 32 MiB) with a fresh ``mmap`` and
unmaps them on ``free``; every later call then pays a page fault per 4 KiB page while the kernel
zeroes memory it just took back. On the 2-vCPU AMD EPYC VM this project is measured on, a plain
eager R50 forward at batch 16 ran at 6.3-7.2 images/s with glibc's defaults and 12.7-13.8 with
freed memory kept; the fused fp32 path at 11.8-12.6 against 16.3-17.1, bf16 at 23.4-24.6
against 31.7-33.2; a bf16 R50 training step at 256x192, batch 16, at 7.7-7.8 against 8.5-9.0
samples/s. Where every activation stays under 32 MiB (R18 at 128x96, batch 32) glibc's adaptive
threshold already reuses them and nothing changes. docs/benchmarks.md has the commands.

:func:`keep_freed_memory` sets two ``mallopt`` parameters, the same effect as starting the
process with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``: no block is served by
``mmap`` and freed memory is not trimmed, so the next forward reuses pages that are already
mapped. This is the job a caching allocator (jemalloc or tcmalloc preloaded, onnxruntime's
arena, PyTorch's CUDA allocator) does elsewhere. The price: the process keeps its peak heap
until it exits, which is what a long inference or training run wants anyway. It serves the
thread that runs the model in every heatpose command, the main thread; a block of 64 MiB or more
allocated again and again on another thread (a web server's worker, say) lives in that thread's
own glibc arena and was still mapped afresh each time here, so run the model on the main thread
or preload jemalloc/tcmalloc there.

It is process-wide, so heatpose sets it only where the process is its own (every ``heatpose``
command; ``heatpose bench`` after timing its eager baseline under the defaults) and where a
Python user builds a CPU :class:`~heatpose.predictor.PoseEstimator` (``keep_freed_memory=False``
leaves it alone). Off glibc (macOS, musl) it does nothing and says so by returning False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from functools import cache

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# glibc's defaults (what glibc_default_policy() sets back): its mmap count limit, and the largest
# mmap threshold its adaptation reaches (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
DEFAULT_MMAP_MAX = 65536
ADAPTED_MMAP_THRESHOLD = 32 * 1024 * 1024
KEEP_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes a C int


@cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


_state = {"kept": False}


def keep_freed_memory() -> bool:
    """Make glibc keep and reuse freed memory from now on; True if it took effect."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD) == 1
    _state["kept"] = _state["kept"] or ok
    return ok


def glibc_default_policy() -> bool:
    """glibc's default policy again, in the state it adapts to in a model-running process; True if set.

    By default glibc starts with a 128 KiB mmap threshold and raises it to the size of each
    mmapped block freed, up to 32 MiB (trim threshold: twice that), so after a first forward every
    activation up to 32 MiB comes from the heap and larger ones are mapped afresh. ``mallopt``
    turns that adaptation off, so this sets its end state directly: mmap for blocks over 32 MiB,
    trim above 64 MiB. ``heatpose bench`` times its eager baseline under it.
    """
    libc = _glibc()
    if libc is None:
        return False
    ok = all(
        libc.mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_MAX, DEFAULT_MMAP_MAX),
            (M_MMAP_THRESHOLD, ADAPTED_MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, 2 * ADAPTED_MMAP_THRESHOLD),
        )
    )
    _state["kept"] = False
    return ok


def release_free_memory() -> None:
    """Hand the free memory glibc is keeping back to the OS now (the policy stays as it is)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` is in effect in this process."""
    return _state["kept"]
