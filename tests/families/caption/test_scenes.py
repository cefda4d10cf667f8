from __future__ import annotations

import numpy as np

from dlhw.families.caption.captions import clean_caption
from dlhw.families.caption.scenes import COLOURS, SHAPES, make_scene, make_scenes


def test_scenes_are_deterministic_and_independent_of_count():
    a = make_scenes(50, seed=3)
    assert make_scenes(20, seed=3) == a[:20]
    assert make_scenes(20, seed=4) != a[:20]
    assert np.array_equal(np.asarray(a[7].render(64)), np.asarray(make_scene(3, 7).render(64)))


def test_task_covers_shapes_colours_relations_and_a_large_enough_vocabulary():
    scenes = make_scenes(400, seed=0)
    assert {o.shape for s in scenes for o in s.objects} == set(SHAPES)
    assert {o.colour for s in scenes for o in s.objects} == set(COLOURS)
    assert {len(s.objects) for s in scenes} == {1, 2}
    assert all(len(s.captions) >= 3 for s in scenes)
    words = {w for s in scenes for c in s.captions for w in clean_caption(c)}
    assert len(words) >= 20
    assert {"above", "left", "right", "top", "bottom", "center"} <= words


def test_captions_describe_what_is_drawn():
    for scene in make_scenes(100, seed=1):
        image = np.asarray(scene.render(96)).astype(int)
        for obj in scene.objects:
            assert obj.phrase in scene.captions[0] or obj.phrase in scene.captions[1]
            x0, y0, x1, y1 = (int(v * 96) for v in obj.box)
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2 + (y1 - y0) // 4  # inside a triangle too
            assert tuple(image[cy, cx]) == COLOURS[obj.colour]
        if len(scene.objects) == 2:
            a, b = scene.objects
            rel = scene.captions[0]
            if "left of" in rel:
                assert a.box[2] <= b.box[0]
            if "above" in rel:
                assert a.box[3] <= b.box[1]
