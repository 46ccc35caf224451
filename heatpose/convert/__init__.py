"""Label-tool exports -> COCO keypoints json: ``heatpose convert --from TOOL INPUT --out FILE``.

Readers (one per tool) turn an export into drafts; :func:`heatpose.convert.common.to_coco`
writes the COCO file. Every element that cannot be converted is printed as one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from heatpose.convert.common import BOX_MARGIN, MIN_MARGIN_PX, Conversion, read_target_schema, to_coco
from heatpose.convert.cvat import read_cvat
from heatpose.convert.label_studio import read_label_studio
from heatpose.convert.labelme import read_labelme
from heatpose.io import atomic_write_json

READERS: dict[str, Callable[[str | Path], Conversion]] = {
    "labelme": read_labelme,
    "cvat-xml": read_cvat,
    "label-studio": read_label_studio,
}


def convert(
    tool: str, source: str | Path, out: str | Path, schema: str | Path | None = None
) -> tuple[dict, list[str]]:
    """Convert ``source`` (a ``tool`` export) and write ``out``; returns (COCO dict, skipped lines)."""
    conv = READERS[tool](source)
    coco = to_coco(conv, read_target_schema(schema))
    atomic_write_json(out, coco, indent=1)
    return coco, conv.skipped


def convert_command(
    tool: str, source: str, out: str, schema: str | None = None, stream: TextIO | None = None
) -> int:
    stream = sys.stdout if stream is None else stream
    coco, skipped = convert(tool, source, out, schema)
    names = coco["categories"][0]["keypoints"]
    no_box = (
        "boxes missing from the source: the labelled joints' box, each side moved out by "
        f"{BOX_MARGIN:g} x its larger side (at least {MIN_MARGIN_PX:g} px), clipped to the image"
    )
    stream.write(
        f"wrote {out}: {len(coco['images'])} images, {len(coco['annotations'])} people, "
        f"{len(names)} keypoints ({', '.join(names)})\n{no_box}\n"
    )
    for line in skipped:
        stream.write(f"skipped: {line}\n")
    if skipped:
        stream.write(f"{len(skipped)} element(s) not converted (listed above)\n")
    return 0
