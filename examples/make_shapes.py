"""Write an image folder for gdrun: circles, squares and triangles as PNG files, one folder per class.

    python make_shapes.py shapes        # shapes/train/{circle,square,triangle}/*.png and shapes/val/...
    gdrun data=image_folder data.path=shapes data.size=[32,32] model=cnn optim=adam optim.lr=0.003

The images differ in size (28 to 40 pixels a side) as photographs do: data.size makes them one size.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")


def shape(kind: str, rng: np.random.Generator) -> Image.Image:
    """One shape of a random colour, size and place on a random pale background."""
    side = int(rng.integers(28, 41))
    background = tuple(int(v) for v in rng.integers(170, 256, size=3))
    colour = tuple(int(v) for v in rng.integers(0, 140, size=3))
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    r = side * rng.uniform(0.22, 0.4)
    cx, cy = (side / 2 + rng.uniform(-0.12, 0.12, size=2) * side).tolist()
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return image


def main(folder: Path, per_class: int = 60, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("val", per_class // 3)):
        for kind in CLASSES:
            out = folder / split / kind
            out.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                shape(kind, rng).save(out / f"{i:03d}.png")
    print(f"wrote {folder}/train and {folder}/val: {len(CLASSES)} classes, {per_class} + {per_class // 3} images each")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "shapes"))
