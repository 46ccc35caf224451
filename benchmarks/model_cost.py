"""Parameters and FLOPs (multiply-adds) of every model a set of config files describes.

Built on the meta device (no weights read or allocated), so the whole CFA table takes seconds.
Prints a markdown table; the command behind docs/cfa.md's cost table::

    python benchmarks/model_cost.py configs/mpii/*.yaml configs/cfa/*.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from heatpose.config import load_config
from heatpose.models.flops import config_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| config | arch | backbone | stages | aggregate | input | params (M) | GFLOPs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in args.configs:
        cfg = load_config(path)
        m = cfg.model
        w, h = cfg.data.input_size
        cost = config_cost(m, (w, h))
        stages = m.num_stages if m.arch == "cfa" else 1
        aggregate = ("yes" if m.aggregate else "no") if m.arch == "cfa" and stages > 1 else "-"
        print(
            f"| {path.parent.name}/{path.stem} | {m.arch} | R{m.backbone_depth} | {stages} | {aggregate} "
            f"| {w}x{h} | {cost.params / 1e6:.1f} | {cost.flops / 1e9:.1f} |"
        )


if __name__ == "__main__":
    main()
