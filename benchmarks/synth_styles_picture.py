"""The two synthetic drawing styles side by side, with their keypoints: docs/img/synth_styles.jpg.

    python benchmarks/synth_styles_picture.py [--out docs/img/synth_styles.jpg] [--seed 1] [--count 4]

Top row ``heatpose synth --style default`` (what the synthetic configs train on), bottom row
``--style flat`` (the off-style check of docs/training.md, "Heatmap codecs"). The same seed and
image index in two styles are different images; each person's keypoints are drawn on top
(filled: visible, ring: labelled but hidden), so one can see they sit at the same places on the
body in both styles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from heatpose.data.synthetic import STYLES, render_synthetic_image
from heatpose.io import atomic_write
from heatpose.keypoints import COCO17


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img/synth_styles.jpg")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=4, help="images per style")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(STYLES), args.count, figsize=(3.2 * args.count, 2.7 * len(STYLES)), squeeze=False
    )
    for row, style in enumerate(STYLES):
        for col in range(args.count):
            scene = render_synthetic_image(args.seed, col, "coco", (320, 256), "val", style)
            ax = axes[row, col]
            ax.imshow(scene.image[..., ::-1])  # BGR -> RGB
            for person in scene.people:
                k = person.keypoints
                for a, b in COCO17.skeleton:
                    if k[a, 2] > 0 and k[b, 2] > 0:
                        ax.plot(k[[a, b], 0], k[[a, b], 1], color="white", lw=0.8, alpha=0.8)
                seen, hidden = k[:, 2] == 2, k[:, 2] == 1
                ax.scatter(k[seen, 0], k[seen, 1], s=9, c="red", edgecolors="black", linewidths=0.4)
                ax.scatter(
                    k[hidden, 0], k[hidden, 1], s=9, facecolors="none", edgecolors="yellow", linewidths=0.8
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"--style {style}", fontsize=11)
    fig.suptitle(f"heatpose synth: the two drawing styles (seed {args.seed}, val images 0-{args.count - 1})")
    fig.tight_layout()
    out = Path(args.out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    extra = {"pil_kwargs": {"quality": 85}} if fmt in ("jpg", "jpeg") else {}
    atomic_write(out, lambda f: fig.savefig(f, format=fmt, dpi=80, **extra))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
