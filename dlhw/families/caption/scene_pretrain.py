"""Offline stand-in for ImageNet weights: the tiny encoder, pretrained once on embedded scenes.

The full preset freezes an ImageNet-pretrained EfficientNet-B0. Offline there are no ImageNet
weights, and a frozen *random* EfficientNet says almost nothing about colour or shape (a linear
probe on its pooled features finds the first object's colour 38% and shape 36% of the time,
against 25% and 33% by chance). So the tiny preset builds the same torchvision EfficientNet at
small width/depth and pretrains it once, like ImageNet pretraining, on scenes that are *not*
the captioning data (their own seed): for each cell of the 3x3 layout, predict which of the
12 colour/shape objects -- or nothing -- is there. The weights are cached in
``$DLHW_CACHE_DIR`` (default ``~/.cache/dlhw``) under a key hashed from the sizes and the code
that generates them, and shared by every caption recipe.
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from dlhw.core.cache import asset_key, cache_dir
from dlhw.families.caption import scenes as scenes_module
from dlhw.families.caption.model import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    efficientnet_b0_features,
    feature_channels,
)
from dlhw.families.caption.scenes import COLOURS, SHAPES, Scene, make_scene

PRETRAIN_SEED = 7919  # not a captioning seed: pretraining never sees the captioning scenes
PRETRAIN_SCENES = 2000
PRETRAIN_EPOCHS = 8
CLASSES = [f"{c} {s}" for c in COLOURS for s in SHAPES]  # index + 1; 0 = empty cell


def cell_labels(scene: Scene) -> Tensor:
    """(9,) class of each 3x3 cell, row-major: 0 empty, else 1 + index in CLASSES."""
    labels = torch.zeros(9, dtype=torch.long)
    for obj in scene.objects:
        cx, cy = (obj.box[0] + obj.box[2]) / 2, (obj.box[1] + obj.box[3]) / 2
        labels[min(int(cy * 3), 2) * 3 + min(int(cx * 3), 2)] = 1 + CLASSES.index(f"{obj.colour} {obj.shape}")
    return labels


def _images(scenes: list[Scene], size: int) -> Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = [torch.frombuffer(bytearray(s.render(size).tobytes()), dtype=torch.uint8) for s in scenes]
    x = torch.stack(pixels).view(len(scenes), size, size, 3).permute(0, 3, 1, 2).float() / 255  # (N, 3, S, S)
    return (x - mean) / std


def pretrain_scene_backbone(width_mult: float, depth_mult: float, image_size: int, log: bool = True) -> dict[str, Tensor]:
    """Train the trunk on per-cell scene labels; return its state dict (deterministic)."""
    gen = torch.Generator().manual_seed(PRETRAIN_SEED)
    with torch.random.fork_rng():
        torch.manual_seed(PRETRAIN_SEED)
        backbone = efficientnet_b0_features(False, width_mult, depth_mult)
        head = nn.Conv2d(feature_channels(backbone), 1 + len(CLASSES), kernel_size=1)  # per-cell classifier
    scenes = [make_scene(PRETRAIN_SEED, i) for i in range(PRETRAIN_SCENES)]
    x = _images(scenes, image_size)  # (N, 3, S, S)
    y = torch.stack([cell_labels(s) for s in scenes])  # (N, 9)
    params = [*backbone.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-4)
    steps = PRETRAIN_EPOCHS * (len(scenes) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    backbone.train()
    bar = tqdm(total=steps, desc="pretraining the tiny encoder on scenes (once)", disable=not log)
    for _ in range(PRETRAIN_EPOCHS):
        order = torch.randperm(len(scenes), generator=gen)
        for i in range(len(scenes) // 64):
            idx = order[i * 64 : (i + 1) * 64]
            fmap = backbone(x[idx])  # (64, C, h, w)
            logits = head(F.adaptive_avg_pool2d(fmap, 3))  # (64, 13, 3, 3)
            loss = F.cross_entropy(logits.flatten(2), y[idx])  # over (64, 13, 9) vs (64, 9)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return {k: v.detach().contiguous() for k, v in backbone.state_dict().items()}


def scene_pretrained_backbone(width_mult: float, depth_mult: float, image_size: int) -> dict[str, Tensor]:
    """The cached pretrained trunk for these sizes, pretraining it first if needed."""
    key = asset_key({"width_mult": width_mult, "depth_mult": depth_mult, "image_size": image_size},
                    sys.modules[__name__], scenes_module, efficientnet_b0_features)
    path = cache_dir() / "encoders" / f"scenes-w{width_mult:g}-d{depth_mult:g}-s{image_size}-{key}.safetensors"
    if path.is_file():
        return load_file(str(path))
    start = time.perf_counter()
    state = pretrain_scene_backbone(width_mult, depth_mult, image_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file(state, str(tmp))
    os.replace(tmp, path)  # atomic: a concurrent run sees the whole file or none
    print(f"tiny encoder pretrained in {time.perf_counter() - start:.0f} s, cached at {path}")
    return state
