"""Claiming an output folder for generated data: refuse to mix with an existing dataset.

Why: a second ``heatpose synth`` into the same folder used to overwrite images one by one while
the old json still described the old ones; a crash in between left a json beside images it does
not describe. Now an existing dataset is replaced only when asked (``overwrite=True``), and then
its json files are removed *before* any image is written, so at every moment the folder holds
either no json or a json that matches its images (writers write their json last).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from heatpose.errors import HeatposeError


def claim_output(
    json_files: Sequence[Path], data_dirs: Sequence[Path], data_glob: str, overwrite: bool
) -> None:
    """Make ``data_dirs`` exist and hold no stale dataset; remove old ``json_files`` when overwriting.

    A dataset is present when any of ``json_files`` exists or any of ``data_dirs`` holds a file
    matching ``data_glob`` (images of an earlier, possibly interrupted, run). Without ``overwrite``
    that is an error naming what was found. With it, the json files go first, then the old data
    files, so an interrupted overwrite never leaves an old json beside new images.
    """
    for path in [*json_files, *data_dirs]:
        blocking = [q for q in path.parents if q.exists() and not q.is_dir()]
        if path in data_dirs and path.exists() and not path.is_dir():
            blocking.append(path)
        if blocking:
            raise HeatposeError(f"{blocking[0]} is a file, but a folder is needed there")
    found = [p for p in json_files if p.exists()]
    found += [d for d in data_dirs if d.is_dir() and any(f.is_file() for f in d.glob(data_glob))]
    if found and not overwrite:
        listing = ", ".join(str(p) for p in found)
        raise HeatposeError(f"output already holds a dataset ({listing}); pass --overwrite to replace it")
    try:
        for path in json_files:
            if path.is_dir():
                raise HeatposeError(f"{path} is a folder, but the dataset json is to be written there")
            path.unlink(missing_ok=True)
        for d in data_dirs:
            if d.is_dir():
                for old in d.glob(data_glob):
                    if old.is_file():
                        old.unlink()
            d.mkdir(parents=True, exist_ok=True)
        for path in json_files:
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HeatposeError(f"cannot prepare the output folder: {err}") from None
