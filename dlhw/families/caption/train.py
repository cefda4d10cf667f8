"""The captioning recipe: setup -> (cache features) -> train -> save -> report.

caption-rnn, caption-attention and caption-transformer share it; ``model.arch`` picks the
decoder. With a frozen encoder, the EfficientNet trunk runs once over every train and val
image and the Trainer then trains on the cached features.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import set_seed

from dlhw.core.atomic import write_json_atomic
from dlhw.core.devices import resolve_device
from dlhw.core.runs import RunFiles
from dlhw.engine.finish import finish_run
from dlhw.engine.trainer import run_training
from dlhw.families.caption.captions import ImageTensors
from dlhw.families.caption.config import CaptionConfig
from dlhw.families.caption.data import PreparedCaptions, prepare_captions
from dlhw.families.caption.model import (
    CaptionModel,
    CaptionModelSpec,
    image_transform,
    save_caption_model,
)
from dlhw.families.caption.scene_pretrain import scene_pretrained_backbone

logger = logging.getLogger(__name__)

CALIBRATION_IMAGES = 512


class CaptionPairs(Dataset):
    """One item per (image, caption): the image as cached features or pixels, plus token ids."""

    def __init__(self, source: Tensor | ImageTensors, image_index: list[int], ids: list[list[int]], pad_id: int):
        self.source = source
        self.cached = isinstance(source, Tensor)
        self.image_index = image_index
        self.ids = torch.tensor(ids, dtype=torch.long)  # (N, L)
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.image_index)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        seq = self.ids[i]  # (L,)
        labels = seq[1:].clone()  # (L-1,) next-word targets
        labels[labels.eq(self.pad_id)] = -100  # the loss ignores <pad>
        key = "features" if self.cached else "pixel_values"
        return {key: self.source[self.image_index[i]], "input_ids": seq[:-1], "labels": labels}


def collate(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {key: torch.stack([it[key] for it in items]) for key in items[0]}


@torch.no_grad()
def cache_features(
    model: CaptionModel, images: ImageTensors, batch_size: int, num_workers: int, device: torch.device, desc: str
) -> Tensor:
    """Run the frozen trunk once over ``images``; the result lives on the CPU."""
    model.encoder.eval().to(device)
    loader = DataLoader(images, batch_size=batch_size, num_workers=num_workers)
    chunks = [model.encoder.extract(batch.to(device)).cpu() for batch in tqdm(loader, desc=desc, unit="batch")]
    return torch.cat(chunks)  # (N, C) or (N, P, C)


def model_spec(config: CaptionConfig, data: PreparedCaptions) -> CaptionModelSpec:
    return CaptionModelSpec(
        model=config.model, vocab_size=len(data.vocab), max_length=data.max_length,
        image_size=config.data.image_size,
    )


def train_caption(config: CaptionConfig, run_dir: Path, resume_from: Path | None = None) -> dict[str, Any]:
    """Train one captioning run into ``run_dir``; returns the training summary."""
    set_seed(config.seed)
    data = prepare_captions(config.data, config.seed)
    summary_data = data.summary()
    for line in [summary_data["splits"], *summary_data["notes"]]:  # type: ignore[misc]
        logger.info(line)
    logger.info(f"vocabulary: {len(data.vocab)} tokens; caption length {data.max_length} = {data.max_length_how}")

    spec = model_spec(config, data)
    model = CaptionModel(spec)
    device = resolve_device(config.train.device)
    transform = image_transform(spec)
    with torch.no_grad():
        probe = model.encoder.extract(transform(data.splits.train[0].load()).unsqueeze(0))
    feature_shape = list(probe.shape[1:])
    logger.info(f"encoder output per image: {feature_shape} ({'spatial map P x C' if probe.dim() == 3 else 'pooled C'})")

    if config.model.encoder_weights == "scenes":
        model.encoder.backbone.load_state_dict(scene_pretrained_backbone(
            config.model.encoder_width_mult, config.model.encoder_depth_mult, config.data.image_size))
    elif config.model.encoder_weights == "random" and not config.model.finetune_encoder:
        calibration = ImageTensors(data.splits.train[:CALIBRATION_IMAGES], transform)
        loader = DataLoader(calibration, batch_size=64, num_workers=config.train.num_workers)
        seen = model.encoder.calibrate_batchnorm(batch for batch in loader)
        logger.info(f"random frozen encoder: BatchNorm statistics estimated on {seen} training images")

    use_cache = config.data.cache_features and not config.model.finetune_encoder
    sources: dict[str, Tensor | ImageTensors] = {}
    cache_time = 0.0
    for split in ("train", "val"):
        tensors = ImageTensors(data.splits[split], transform)
        if use_cache:
            start = time.perf_counter()
            sources[split] = cache_features(
                model, tensors, config.train.eval_batch_size, config.train.num_workers, device,
                desc=f"caching {split} features",
            )
            cache_time += time.perf_counter() - start
        else:
            sources[split] = tensors
    datasets = {}
    for split in ("train", "val"):
        index, ids = data.encoded_pairs(split)
        datasets[split] = CaptionPairs(sources[split], index, ids, data.vocab.pad_id)

    sample_source = sources["val"][0]
    sample_key = "features" if use_cache else "pixel_values"

    def sample(m: CaptionModel) -> str:
        x = sample_source.unsqueeze(0).to(next(m.parameters()).device)
        out = m.generate(**{sample_key: x})  # type: ignore[arg-type]
        return " ".join(data.vocab.decode(out.tokens[0].tolist()))

    trainer, result = run_training(
        model, datasets["train"], datasets["val"], collate, config.train, run_dir, config.seed,
        resume_from=resume_from, sample=sample, sample_key=f"sample_caption[{data.splits.val[0].image_id}]",
    )

    def save(m: CaptionModel, model_dir: Path) -> None:
        save_caption_model(m, model_dir)
        data.vocab.save(model_dir / "vocab.json")
        write_json_atomic(RunFiles(run_dir).splits, data.splits.ids(), indent=None)  # thousands of ids: one line

    def summary(m: CaptionModel) -> dict[str, Any]:
        return {
            "data": summary_data,
            "model": {
                "arch": config.model.arch,
                "encoder_output_shape": feature_shape,
                "parameters": m.num_parameters(),
                "trainable_parameters": m.num_parameters(trainable_only=True),
                "feature_cache": use_cache,
                "feature_cache_seconds": round(cache_time, 2),
            },
        }

    # no evaluation here: `dlhw evaluate RUN` scores a caption run (BLEU, CIDEr, beam search, plots)
    return finish_run(trainer, result, config, run_dir, save=save, summary=summary)
