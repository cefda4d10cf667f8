from __future__ import annotations

from PIL import Image

from tests.conftest import run_cli


def test_data_inspect_writes_the_four_figures(tmp_path):
    code, out = run_cli("data", "inspect", "caption", "--preset", "tiny", "--set", "data.num_scenes=60",
                        "--out", str(tmp_path))
    assert code == 0, out
    names = {"caption_lengths.png", "top_words.png", "samples.png"}
    assert {p.name for p in tmp_path.glob("*.png")} == names
    for name in names:
        with Image.open(tmp_path / name) as image:
            assert image.size[0] > 300 and image.size[1] > 200
    assert '"vocab_size"' in out and '"max_length"' in out
