"""Export the three tiny caption runs to ONNX and run them through ONNX Runtime (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from dlhw.families.caption.infer import OrtCaptioner, TorchCaptioner
from dlhw.families.caption.model import image_transform, load_caption_model
from dlhw.families.caption.scenes import make_scenes
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
ARCHS = ["rnn", "attention", "transformer"]


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for scene in make_scenes(40, seed=123):  # scenes the models never saw
        scene.render(96).save(folder / f"{scene.image_id}.png")
    return folder


def _captions(path) -> dict[str, str]:
    return {r["path"]: r["caption"] for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize("arch", ARCHS)
def test_export_passes_parity_and_ort_captions_match_torch(trained_runs, scene_folder, tmp_path, arch):
    run = trained_runs[arch]
    code, out = run_cli("export", str(run), "--onnx")
    assert code == 0, out
    export = run / "export" / "onnx"
    meta = json.loads((export / "export.json").read_text())
    assert {"encoder.onnx", "decoder_step.onnx", "vocab.json", "export.json"} <= {p.name for p in export.iterdir()}
    assert meta["parity"]["greedy_tokens_equal"] and max(meta["parity"]["max_abs_diff"].values()) <= 1e-3
    assert meta["spec"]["image_size"] == 96 and meta["preprocessing"]["mean"] == [0.485, 0.456, 0.406]

    results = {}
    for backend, model in (("torch", run), ("onnxruntime", export)):
        out_file = tmp_path / f"{backend}.jsonl"
        code, out = run_cli("caption", str(scene_folder), "--model", str(model), "--backend", backend,
                            "--batch-size", "16", "--out", str(out_file), "--num-workers", "0")
        assert code == 0, out
        results[backend] = _captions(out_file)
    assert len(results["torch"]) == 40 and results["torch"].keys() == results["onnxruntime"].keys()
    differ = [k for k in results["torch"] if results["torch"][k] != results["onnxruntime"][k]]
    assert not differ, f"the export promises equal greedy tokens; {len(differ)}/40 captions differ"

    torch_bleu = json.loads((run / "eval.json").read_text())
    if torch_bleu["split"] != "test" or torch_bleu["beam_size"] != 1:
        run_cli("evaluate", str(run))
        torch_bleu = json.loads((run / "eval.json").read_text())
    code, out = run_cli("evaluate", str(run), "--backend", "onnxruntime")
    assert code == 0, out
    ort_eval = json.loads((run / "eval.json").read_text())
    assert ort_eval["backend"] == "onnxruntime"
    assert abs(ort_eval["metrics"]["bleu_4"] - torch_bleu["metrics"]["bleu_4"]) * 100 <= 0.5


@pytest.fixture(scope="module")
def transformer_export(trained_runs, tiny_run):
    run = trained_runs["transformer"]
    return run, tiny_run.exported(run)


@pytest.fixture(scope="module")
def scene_pixels(transformer_export):
    run, _ = transformer_export
    transform = image_transform(load_caption_model(run / "model").spec)
    return torch.stack([transform(s.render(96)) for s in make_scenes(12, seed=321)])  # (12, 3, 96, 96)


def _names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def test_transformer_step_graph_takes_a_per_layer_cache_of_any_length(transformer_export):
    import onnxruntime as ort

    run, export = transformer_export
    spec = load_caption_model(run / "model").spec
    layers, heads, head_dim = spec.model.num_layers, spec.model.num_heads, spec.model.embed_dim // spec.model.num_heads
    positions = (spec.image_size // 32) ** 2  # the 3 x 3 map of a 96 px image
    encoder = ort.InferenceSession(str(export / "encoder.onnx"), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(export / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in step.get_inputs()}
    outputs = {o.name: o.shape for o in step.get_outputs()}
    cross, past, present = _names("cross", layers), _names("past", layers), _names("present", layers)

    encoded = {o.name: o.shape for o in encoder.get_outputs()}  # computed once per image: (B, heads, P, head_dim)
    assert list(encoded) == cross and all(dims[:2] == ["batch", heads] and dims[3] == head_dim for dims in encoded.values())
    assert list(inputs) == ["tokens", "position", "past_mask", *cross, *past]  # no fixed-length prefix, no memory
    assert inputs["tokens"] == ["batch"] and inputs["position"] == [] and inputs["past_mask"] == ["batch", "past"]
    assert all(inputs[name] == ["batch", heads, positions, head_dim] for name in cross)
    assert all(inputs[name] == ["batch", heads, "past", head_dim] for name in past)
    assert list(outputs) == ["logits", "present_mask", *present]
    assert all(outputs[name] == ["batch", heads, "past_plus_one", head_dim] for name in present)
    meta = json.loads((export / "export.json").read_text())
    assert meta["step_inputs"] == list(inputs) and meta["step_outputs"] == list(outputs)


def test_ort_cache_grows_from_empty_and_reorders_like_torch(transformer_export, scene_pixels):
    run, export = transformer_export
    model = load_caption_model(run / "model")
    spec, decoder = model.spec, model.decoder
    ort = OrtCaptioner(export, lambda graph: ["CPUExecutionProvider"])
    pixels = scene_pixels[:4]
    encoded = dict(zip(ort.output_names, ort.encoder.run(None, {"pixel_values": pixels.numpy()}), strict=True))
    ours, theirs = ort.stepper.init_state(encoded), decoder.init_state(model.encoder(pixels))
    assert ours["past.0.key"].shape[2] == 0  # the first step runs on an empty cache (t = 0)
    tokens = torch.full((4,), spec.sos_id)

    def step_both(tokens, ours, theirs):
        ort_logits, ours, _ = ort.stepper.step(tokens, ours)
        with torch.no_grad():
            torch_logits, theirs, _ = decoder.step(tokens, theirs)  # (4, V)
        assert torch.allclose(ort_logits, torch_logits, atol=1e-4)
        for i in range(2 * spec.model.num_layers):
            kind = ("key", "value")[i % 2]
            assert torch.allclose(torch.from_numpy(ours[f"past.{i // 2}.{kind}"]), theirs.past[i], atol=1e-4)
        return ort_logits, ours, theirs

    for t in range(3):
        logits, ours, theirs = step_both(tokens, ours, theirs)
        assert ours["past.0.key"].shape[2] == t + 1 and ours["past_mask"].shape == (4, t + 1)
        tokens = logits.argmax(-1)  # (4,)
    index = torch.tensor([3, 0, 0, 2])  # beam search's rows: picked, repeated, moved
    before = ours["past.1.value"]
    ours = ort.stepper.reorder_state(ours, index)
    theirs = decoder.reorder_state(theirs, index)
    assert (ours["past.1.value"] == before[[3, 0, 0, 2]]).all()
    logits, ours, theirs = step_both(tokens[index], ours, theirs)
    assert torch.equal(logits[1], logits[2]) and not torch.allclose(logits[0], logits[1])


@pytest.mark.parametrize("beam_size", [1, 3])
def test_ort_greedy_and_beam_captions_equal_torchs(transformer_export, scene_pixels, beam_size):
    run, export = transformer_export
    torch_captioner = TorchCaptioner.from_run(run)
    ort_captioner = OrtCaptioner(export, lambda graph: ["CPUExecutionProvider"])
    ours = torch_captioner.caption(scene_pixels, beam_size=beam_size)
    theirs = ort_captioner.caption(scene_pixels, beam_size=beam_size)
    pad = torch_captioner.spec.pad_id
    assert ours.tokens.shape[0] == 12 and (ours.tokens.ne(pad).sum(1) > 2).all()  # real captions, not just <eos>
    assert torch.equal(ours.tokens, theirs.tokens)
    assert torch.allclose(ours.scores, theirs.scores, atol=1e-4)


def test_an_export_with_the_padded_prefix_step_is_refused_with_the_fix(transformer_export, tmp_path):
    import shutil

    from dlhw.errors import ConfigError

    _, export = transformer_export
    old = tmp_path / "onnx"
    shutil.copytree(export, old)
    meta = json.loads((old / "export.json").read_text())
    meta["step_inputs"] = ["memory", "prefix", "last"]  # what decoder_step.onnx took before the cache
    (old / "export.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"export the run again with `dlhw export RUN --onnx`"):
        OrtCaptioner(old, lambda graph: ["CPUExecutionProvider"])


def test_tensorrt_profiles_let_the_cache_start_empty():
    from dlhw.backends.tensorrt import shape_profiles

    shapes = {"tokens": ["batch"], "position": [], "past_mask": ["batch", "past"],
              "cross.0.key": ["batch", 4, 9, 16], "past.0.key": ["batch", 4, "past", 16]}
    profiles = shape_profiles(shapes, 8, 1, {"past": (0, 10, 20)})
    assert profiles == {
        "trt_profile_min_shapes": "tokens:1,past_mask:1x0,cross.0.key:1x4x9x16,past.0.key:1x4x0x16",
        "trt_profile_opt_shapes": "tokens:4,past_mask:4x10,cross.0.key:4x4x9x16,past.0.key:4x4x10x16",
        "trt_profile_max_shapes": "tokens:8,past_mask:8x20,cross.0.key:8x4x9x16,past.0.key:8x4x20x16",
    }


def test_export_beyond_tolerance_fails_with_the_difference_and_leaves_nothing(trained_runs, tmp_path):
    run = trained_runs["rnn"]
    target = tmp_path / "export"
    proc = subprocess.run([sys.executable, "-m", "dlhw", "export", str(run), "--onnx", "--atol", "1e-12",
                           "--out", str(target)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "differs from torch by" in proc.stderr and "tolerance 1e-12" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no export, no partial directory


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only failure")
@pytest.mark.parametrize("args", [["export", "{run}", "--onnx", "--tensorrt"],
                                  ["caption", "{folder}", "--model", "{run}", "--backend", "tensorrt",
                                   "--out", "{out}"]])
def test_tensorrt_without_a_gpu_fails_fast_and_says_why(trained_runs, scene_folder, tmp_path, args):
    run = trained_runs["rnn"]
    argv = [a.format(run=run, folder=scene_folder, out=tmp_path / "o.jsonl") for a in args]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlhw", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert time.perf_counter() - start < 30
    assert "TensorRT is not available" in proc.stderr and "NVIDIA GPU" in proc.stderr
    assert "--backend onnxruntime" in proc.stderr
    assert not (tmp_path / "o.jsonl").exists() or (tmp_path / "o.jsonl").read_text() == ""


@pytest.mark.gpu
def test_tensorrt_engines_are_built_cached_and_used(trained_runs, scene_folder, tmp_path):
    from dlhw.backends.tensorrt import tensorrt_missing

    if tensorrt_missing():
        pytest.skip("; ".join(tensorrt_missing()))
    run = trained_runs["transformer"]
    code, out = run_cli("export", str(run), "--onnx", "--tensorrt", "--max-batch", "8")
    assert code == 0, out
    export = run / "export" / "onnx"
    assert any((export / "trt_cache").iterdir())
    out_file = tmp_path / "trt.jsonl"
    code, out = run_cli("caption", str(scene_folder), "--model", str(export), "--backend", "tensorrt",
                        "--batch-size", "8", "--out", str(out_file), "--device", "cuda")
    assert code == 0, out
    assert len(_captions(out_file)) == 40
