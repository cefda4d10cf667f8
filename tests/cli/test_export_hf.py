"""``dlhw export RUN --hf``: refused in one line where the family's model is not a transformers model, and
the ONNX-only options are refused with it (the exports themselves: tests/families/*/test_hf_export.py)."""

from __future__ import annotations

import pytest

from tests.cli.test_family_options import _run_dir
from tests.conftest import run_cli


def test_hf_is_refused_for_the_caption_family_with_the_reason(tmp_path):
    code, out = run_cli("export", str(_run_dir(tmp_path, "caption-rnn")), "--hf")
    assert code == 2
    assert out.endswith("error: --hf: the caption family has no Hugging Face export (its model is dlhw's own torch "
                        "module (EfficientNet-B0 encoder + dlhw's decoder), not a transformers class: export it with "
                        "--onnx)")


@pytest.mark.parametrize("args", [["--opset", "17"], ["--int8"], ["--atol", "0.1"]])
def test_hf_takes_out_only(tmp_path, args):
    code, out = run_cli("export", str(_run_dir(tmp_path, "chat-lora")), "--hf", *args)
    assert code == 2 and f"error: {args[0]} is an option of the ONNX export; --hf takes --out only" in out


def test_export_needs_exactly_one_of_onnx_and_hf(tmp_path):
    run = str(_run_dir(tmp_path, "ner"))
    assert run_cli("export", run)[1].endswith("error: say what to export: --onnx (optionally with --tensorrt) or --hf")
    assert "two exports" in run_cli("export", run, "--onnx", "--hf")[1]
