"""Captioning throughput: per-image torch greedy loop vs batched torch vs batched ONNX Runtime.

A caption-transformer with the full preset's sizes (EfficientNet-B0 at 224 px, 3-layer
512-wide decoder, random weights, a 3,000-word vocabulary) is exported with `dlhw export` and
timed side by side in one run on the same preprocessed images (decoding/resizing excluded: the
batch runner does it in DataLoader workers for every backend alike). Both backends decode with
the Transformer's key/value cache (torch: the decoder's own steps; ONNX Runtime: decoder_step.onnx)
on as many threads (torch's, which OMP_NUM_THREADS sets). Greedy captions are compared across the
three; the batched runs are split into encoder and decoding time. A random decoder hardly looks
at the image, so its captions may all be one (the distinct-caption count says how many); the
caption tests compare torch and ONNX Runtime on trained tiny runs.

    python benchmarks/caption_throughput.py [--images 64] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.backends.export import export_run  # noqa: E402
from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.config import dump_yaml, to_dict  # noqa: E402
from dlhw.core.registry import resolve_config  # noqa: E402
from dlhw.families.caption.captions import SPECIALS, Vocabulary  # noqa: E402
from dlhw.families.caption.infer import OrtCaptioner  # noqa: E402
from dlhw.families.caption.model import (  # noqa: E402
    CaptionModel,
    CaptionModelSpec,
    image_transform,
    save_caption_model,
)
from dlhw.families.caption.scenes import make_scenes  # noqa: E402


def make_run(root: Path) -> tuple[Path, CaptionModel]:
    config = resolve_config("caption-transformer", overrides=["model.encoder_weights=random"])
    spec = CaptionModelSpec(model=config.model, vocab_size=3000, max_length=22, image_size=224)
    torch.manual_seed(0)
    model = CaptionModel(spec).eval()
    run = root / "run"
    save_caption_model(model, run / "model")
    Vocabulary([*SPECIALS, *(f"w{i}" for i in range(3000 - len(SPECIALS)))]).save(run / "model" / "vocab.json")
    (run / "config.yaml").write_text(dump_yaml(to_dict(config)))
    return run, model


def timed(fn, repeats: int = 2) -> tuple[float, object]:
    fn()  # warm-up
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    n, bs = args.images, args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        run, model = make_run(Path(tmp))
        export = export_run(run)
        ort_captioner = OrtCaptioner(export, lambda graph: ["CPUExecutionProvider"])
        transform = image_transform(model.spec)
        pixels = torch.stack([transform(s.render(224)) for s in make_scenes(n, seed=0)])
        batches = [pixels[i : i + bs] for i in range(0, n, bs)]

        def loop() -> list[torch.Tensor]:
            return [model.generate(pixel_values=pixels[i : i + 1]).tokens[0] for i in range(n)]

        def batched_torch() -> list[torch.Tensor]:
            return [row for batch in batches for row in model.generate(pixel_values=batch).tokens]

        def batched_ort() -> list[torch.Tensor]:
            return [row for batch in batches for row in ort_captioner.caption(batch).tokens]

        def torch_encoder() -> list[torch.Tensor]:
            return [model.encoder(batch) for batch in batches]

        def ort_encoder() -> list[object]:
            return [ort_captioner.encoder.run(None, {"pixel_values": batch.numpy()}) for batch in batches]

        with torch.inference_mode():
            t_loop, out_loop = timed(loop)
            t_torch, out_torch = timed(batched_torch)
            t_ort, out_ort = timed(batched_ort)
            t_torch_enc, _ = timed(torch_encoder)
            t_ort_enc, _ = timed(ort_encoder)

    def same(a, b) -> int:
        return sum(torch.equal(x[: len(y)], y[: len(x)]) for x, y in zip(a, b, strict=True))

    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} on CPU, "
          f"onnxruntime {__import__('onnxruntime').__version__} CPUExecutionProvider, "
          f"{torch.get_num_threads()} threads each")
    print(f"caption-transformer, EfficientNet-B0 224 px + 3x512 decoder (random weights), {n} images, "
          f"greedy, max {model.spec.max_length - 1} tokens, batch {bs}")
    rows = [("torch, one image at a time", t_loop), (f"torch, batch {bs}", t_torch), (f"onnxruntime, batch {bs}", t_ort)]
    print(f"{'':32}{'images/s':>10}{'vs loop':>10}")
    for name, seconds in rows:
        print(f"{name:32}{n / seconds:>10.1f}{t_loop / seconds:>9.2f}x")
    print(f"onnxruntime vs batched torch: {t_torch / t_ort:.2f}x")
    print(f"batched, seconds for {n} images: torch encoder {t_torch_enc:.2f} + decoding {t_torch - t_torch_enc:.2f}; "
          f"onnxruntime encoder {t_ort_enc:.2f} + decoding {t_ort - t_ort_enc:.2f}")
    print(f"greedy captions equal to the loop's: batched torch {same(out_torch, out_loop)}/{n}, "
          f"onnxruntime {same(out_ort, out_loop)}/{n}; {len({tuple(t.tolist()) for t in out_loop})} distinct captions")


if __name__ == "__main__":
    main()
