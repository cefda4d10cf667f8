"""`--dtype` for captioning: bf16 captions and their log-probabilities against fp32 (slow: trained runs).

Tolerances, measured on the tiny runs' 120 test images (greedy): bf16 on the CPU gave the fp32 caption
for 109/120 images (transformer) and 119/120 (attention); the per-token log-probability of the fp32
caption, teacher-forced through both models, differed by 0.0027 / 0.0024 on average, 0.029 / 0.022
at the 99th percentile (the largest single token: 0.08 / 0.33, where two words were nearly tied).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from dlhw.families.caption.infer import TorchCaptioner, open_predictor

pytestmark = pytest.mark.slow

SAME_CAPTIONS = 0.85
"""Share of images whose bf16 greedy caption is the fp32 one."""
MEAN_LOGP_ATOL = 0.01
"""Mean |bf16 - fp32| log-probability per token of the fp32 captions."""
P99_LOGP_ATOL = 0.1
"""Its 99th percentile."""


def _test_pixels(run: Path) -> torch.Tensor:
    from dlhw.config import from_dict, load_yaml
    from dlhw.core.runs import RunFiles
    from dlhw.families.caption.config import CaptionConfig
    from dlhw.families.caption.data import prepare_captions
    from dlhw.families.caption.model import image_transform, load_spec

    config = from_dict(CaptionConfig, load_yaml(RunFiles(run).config))
    transform = image_transform(load_spec(run / "model"))
    return torch.stack([transform(im.load().convert("RGB"))
                        for im in prepare_captions(config.data, config.seed).splits["test"]])  # (N, 3, H, W)


def _token_logp(captioner: TorchCaptioner, pixels: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(N, L) log-probabilities of ``tokens`` (after <sos>), teacher-forced, in float32."""
    sos = torch.full((tokens.shape[0], 1), captioner.spec.sos_id)
    with torch.no_grad():
        logits = captioner.model(input_ids=torch.cat([sos, tokens[:, :-1]], 1).to(captioner.device),
                                 pixel_values=pixels.to(captioner.device, captioner.dtype))["logits"]  # (N, L, V)
    return torch.log_softmax(logits.float(), -1).gather(-1, tokens[..., None].to(captioner.device))[..., 0].cpu()


def _compare(fp32: TorchCaptioner, other: TorchCaptioner, pixels: torch.Tensor) -> float:
    """Checks ``other``'s captions against ``fp32``'s; returns the mean log-probability difference."""
    reference = fp32.caption(pixels).tokens.cpu()  # (N, L)
    tokens = other.caption(pixels).tokens.cpu()
    same = (tokens == reference).all(1).float().mean().item()
    assert same >= SAME_CAPTIONS, f"{same:.1%} of the captions are the fp32 ones"
    ends = (reference == fp32.spec.eos_id).long()
    kept = (ends.cumsum(1) - ends) == 0  # (N, L): each caption up to and with its <eos>
    diff = (_token_logp(fp32, pixels, reference) - _token_logp(other, pixels, reference)).abs()[kept]
    assert diff.mean().item() <= MEAN_LOGP_ATOL and diff.quantile(0.99).item() <= P99_LOGP_ATOL, \
        f"|log p difference| mean {diff.mean():.4f}, p99 {diff.quantile(0.99):.4f}"
    return diff.mean().item()


@pytest.mark.parametrize("arch", ["transformer", "attention"])
def test_bf16_on_the_cpu_captions_as_fp32_does(trained_runs: dict[str, Path], arch: str) -> None:
    run = trained_runs[arch]
    pixels = _test_pixels(run)
    bf16 = open_predictor(str(run), "torch", "cpu", dtype="bf16").captioner  # the batch verb's path
    assert isinstance(bf16, TorchCaptioner)
    assert _compare(TorchCaptioner.from_run(run, "cpu"), bf16, pixels) > 0.0  # not the fp32 model again
    alphas = bf16.caption(pixels[:2]).alphas
    assert alphas is None or alphas.dtype is torch.float32  # attention maps come back in float32


@pytest.mark.gpu
def test_cuda_bf16_captions_as_fp32_and_batches_as_one_at_a_time(trained_runs: dict[str, Path],
                                                                   record_property: Any) -> None:
    run = trained_runs["transformer"]  # one architecture: the GPU check has minutes for every family
    pixels = _test_pixels(run)
    bf16 = TorchCaptioner.from_run(run, "cuda", torch.bfloat16)
    record_property("bf16_vs_fp32_mean_logp_diff", round(_compare(TorchCaptioner.from_run(run, "cuda"), bf16, pixels), 5))
    batched = bf16.caption(pixels[:32]).tokens.cpu()  # (32, L)
    alone = [bf16.caption(pixels[i:i + 1]).tokens.cpu()[0] for i in range(32)]
    same = sum(bool((row[:len(a)] == a).all()) and not row[len(a):].ne(bf16.spec.pad_id).any()
               for row, a in zip(batched, alone, strict=True))
    record_property("batched_equal_alone", f"{same}/32")
    assert same >= SAME_CAPTIONS * 32, f"{same}/32 batched captions are the one-at-a-time ones"
