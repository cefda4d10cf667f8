"""The embedded synthetic captioning task: generated scenes of coloured shapes.

Each scene holds one or two objects (circle, square, triangle in red, green, blue or yellow)
placed on a 3x3 grid. A single object is described by its position ("a red circle in the top
left"), a pair by their relation ("a red circle to the left of a blue square"). Every scene has
three reference captions that vary the phrasing; a pair is always named left or top object
first, so that when a caption names an object, which object it is follows from the image
alone. The objects' bounding boxes are kept so that attention maps can be checked against them.

Scene ``i`` of seed ``s`` depends on ``(s, i)`` alone, so ``num_scenes`` only adds scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 119, 220),
    "yellow": (235, 200, 20),
}
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
BACKGROUND = (236, 236, 236)


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    box: tuple[float, float, float, float]
    """(x0, y0, x1, y1) as fractions of the image side."""

    @property
    def phrase(self) -> str:
        return f"a {self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    image_id: str
    objects: tuple[SceneObject, ...]
    captions: tuple[str, ...]

    def render(self, size: int) -> Image.Image:
        """Draw the scene as a ``size`` x ``size`` RGB image."""
        image = Image.new("RGB", (size, size), BACKGROUND)
        draw = ImageDraw.Draw(image)
        for obj in self.objects:
            x0, y0, x1, y1 = (v * size for v in obj.box)
            fill = COLOURS[obj.colour]
            if obj.shape == "circle":
                draw.ellipse((x0, y0, x1, y1), fill=fill)
            elif obj.shape == "square":
                draw.rectangle((x0, y0, x1, y1), fill=fill)
            else:
                draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
        return image


def _position_name(row: int, col: int) -> str:
    if (row, col) == (1, 1):
        return "center"
    if row == 1:
        return COLS[col]
    if col == 1:
        return ROWS[row]
    return f"{ROWS[row]} {COLS[col]}"


def _box(rng: np.random.Generator, row: int, col: int) -> tuple[float, float, float, float]:
    cell = 1 / 3
    side = cell * rng.uniform(0.6, 0.85)
    x0 = col * cell + rng.uniform(0.0, cell - side)
    y0 = row * cell + rng.uniform(0.0, cell - side)
    return (x0, y0, x0 + side, y0 + side)


def _pick_object(rng: np.random.Generator) -> tuple[str, str]:
    return SHAPES[rng.integers(len(SHAPES))], list(COLOURS)[rng.integers(len(COLOURS))]


def make_scene(seed: int, index: int) -> Scene:
    """Scene ``index`` of the task seeded with ``seed``."""
    rng = np.random.default_rng([seed, index])
    image_id = f"scene_{index:05d}"
    if rng.random() < 0.4:
        row, col = int(rng.integers(3)), int(rng.integers(3))
        shape, colour = _pick_object(rng)
        obj = SceneObject(shape, colour, _box(rng, row, col))
        where = _position_name(row, col)
        captions = (
            f"{obj.phrase} in the {where}",
            f"there is {obj.phrase} in the {where}",
            f"{obj.phrase} at the {where}",
        )
        return Scene(image_id, (obj,), captions)

    first = _pick_object(rng)
    second = _pick_object(rng)
    while second == first:
        second = _pick_object(rng)
    if rng.random() < 0.5:  # side by side: same row, first object on the left
        row = int(rng.integers(3))
        cols = sorted(rng.choice(3, size=2, replace=False))
        cells = [(row, cols[0]), (row, cols[1])]
        relation = "to the left of"
    else:  # stacked: same column, first object on top
        col = int(rng.integers(3))
        rows = sorted(rng.choice(3, size=2, replace=False))
        cells = [(rows[0], col), (rows[1], col)]
        relation = "above"
    a = SceneObject(*first, _box(rng, *cells[0]))
    b = SceneObject(*second, _box(rng, *cells[1]))
    captions = (
        f"{a.phrase} {relation} {b.phrase}",
        f"{a.phrase} is {relation} {b.phrase}",
        f"there is {a.phrase} {relation} {b.phrase}",
    )
    return Scene(image_id, (a, b), captions)


def scene_of(image_id: str, seed: int) -> Scene:
    """The scene behind an image id such as ``scene_00042`` (ids come from :func:`make_scene`)."""
    return make_scene(seed, int(image_id.removeprefix("scene_")))


def make_scenes(num_scenes: int, seed: int) -> list[Scene]:
    """The first ``num_scenes`` scenes of the task seeded with ``seed``."""
    return [make_scene(seed, i) for i in range(num_scenes)]
