"""TTS export: three graphs, parity on mel frames and stop steps, batched synthesis equal to one by one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlhw.families.tts.infer import load_synthesizer, split_text


@pytest.mark.slow
def test_export_records_parity_and_its_files(tts_run: Path) -> None:  # noqa: F811
    export = tts_run / "export" / "onnx"
    meta = json.loads((export / "export.json").read_text(encoding="utf-8"))
    assert meta["files"] == {"encoder": "encoder.onnx", "decoder_step": "decoder_step.onnx",
                             "postnet_vocoder": "postnet_vocoder.onnx"}
    parity = meta["parity"]
    assert parity["max_abs_diff"]["mel_frames"] <= 1e-3 and parity["max_abs_diff"]["stop_prob"] <= 1e-3
    assert len(parity["frames"]) == 4 and parity["steps_compared"] == max(parity["frames"]) // 2  # every step (r = 2)
    assert all((export / f).is_file() for f in meta["files"].values())
    assert (export / "speakers.json").is_file() and (export / "spm_char.model").is_file()


@pytest.mark.slow
def test_batched_synthesis_equals_one_at_a_time(tts_run: Path) -> None:  # noqa: F811
    synth = load_synthesizer(tts_run, "torch")
    texts = ["سلام", "این کتاب روی میز است", "باران می‌بارد و دریا آبی است", "ماه"]
    together = synth.synthesize(texts)
    for text, batched in zip(texts, together, strict=True):
        alone = synth.synthesize([text])[0]
        assert alone.frames == batched.frames  # each utterance stops on its own step
        assert float(np.abs(alone.mel - batched.mel).max()) < 1e-3
    assert len({s.frames for s in together}) > 1


def test_split_text_prefers_sentence_ends_then_commas() -> None:
    fits = lambda t: len(t) <= 20  # noqa: E731
    assert split_text("یک دو سه. چهار پنج شش. هفت", fits) == ["یک دو سه.", "چهار پنج شش. هفت"]
    assert split_text("الف ب پ ت ث, ج چ ح خ د ذ ر", fits) == ["الف ب پ ت ث,", "ج چ ح خ د ذ ر"]
    pieces = split_text("آ" * 50, fits)
    assert "".join(pieces) == "آ" * 50 and all(fits(p) for p in pieces)


def _profile(settings: dict[str, str], which: str) -> dict[str, list[int]]:
    """``{"input": [dims]}`` of one ``trt_profile_<which>_shapes`` string."""
    entries = settings[f"trt_profile_{which}_shapes"].split(",")
    return {name: [int(d) for d in dims.split("x")] for name, dims in (e.split(":") for e in entries)}


@pytest.mark.slow
def test_tensorrt_engines_get_a_profile_per_graph_covering_every_dynamic_input(tts_run: Path, monkeypatch) -> None:
    from dlhw.backends.session import TENSORRT, ExportHandle
    from dlhw.backends.tensorrt import graph_input_shapes
    from dlhw.families.tts.export import build_tts_engines

    export = tts_run / "export" / "onnx"
    meta = json.loads((export / "export.json").read_text(encoding="utf-8"))
    opened: dict[str, list] = {}  # what would build the engines on a GPU: the file and its providers
    monkeypatch.setattr("dlhw.backends.open_session", lambda path, providers, *_: opened.setdefault(path.name, providers))
    settings = build_tts_engines(export, meta, fp16=True, max_batch=8)
    assert sorted(opened) == ["decoder_step.onnx", "encoder.onnx", "postnet_vocoder.onnx"]
    config = json.loads((export / "tts.json").read_text(encoding="utf-8"))["config"]
    steps = config["max_speech_positions"] // config["reduction_factor"] - 1
    for graph, file in meta["files"].items():
        name, options = opened[file][0]
        assert name == TENSORRT and options["trt_fp16_enable"] is True
        dynamic = {k for k, dims in graph_input_shapes(export / file).items() if any(isinstance(d, str) for d in dims)}
        low, high = _profile(settings[graph], "min"), _profile(settings[graph], "max")
        assert set(low) == set(high) == dynamic  # every dynamic input, nothing else
        assert all(dims[0] == 1 for k, dims in low.items() if k.startswith(("input", "frame", "mel", "past")))
        assert all(dims[0] == 8 for k, dims in high.items() if k.startswith(("input", "frame", "mel", "past")))
    assert _profile(settings["decoder_step"], "min")["past.0.key"][2] == 0  # the cache starts empty
    assert _profile(settings["decoder_step"], "max")["past.0.key"][2] == steps
    assert _profile(settings["postnet_vocoder"], "max")["mel"][1] == config["max_speech_positions"]
    handle = ExportHandle(export, {**meta, "tensorrt": settings},
                          [(TENSORRT, {}), "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert handle.providers_for("decoder_step")[0][1]["trt_profile_max_shapes"] == settings["decoder_step"][
        "trt_profile_max_shapes"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Specified provider")
def test_a_tts_session_that_did_not_get_tensorrt_is_refused(tts_run: Path) -> None:
    import onnxruntime as ort

    from dlhw.backends.tensorrt import tensorrt_providers
    from dlhw.errors import DlhwError
    from dlhw.families.tts.infer import OrtGraphs

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has TensorRT")
    export = tts_run / "export" / "onnx"
    # this ONNX Runtime has no TensorRT provider: it starts the session on the CPU, and dlhw refuses it
    with pytest.raises(DlhwError, match=r"encoder.onnx: ONNX Runtime was asked for TensorrtExecutionProvider, "
                                        r"CUDAExecutionProvider, CPUExecutionProvider but the session got "
                                        r"CPUExecutionProvider"):
        OrtGraphs(export, providers_for=lambda graph: tensorrt_providers(export, {"fp16": False}))
