from __future__ import annotations

from PIL import Image

from tests.conftest import run_cli


def test_data_inspect_writes_the_four_figures(tmp_path):
    """Length per image (scatter), length histogram, top-20 words, five samples: one file each."""
    code, out = run_cli("data", "inspect", "caption", "--preset", "tiny", "--set", "data.num_scenes=60",
                        "--out", str(tmp_path))
    assert code == 0, out
    names = {"length_scatter.png", "length_histogram.png", "top_words.png", "samples.png"}
    assert {p.name for p in tmp_path.glob("*.png")} == names
    for name in names:
        with Image.open(tmp_path / name) as image:
            assert image.size[0] > 300 and image.size[1] > 200
    assert '"vocab_size"' in out and '"max_length"' in out
