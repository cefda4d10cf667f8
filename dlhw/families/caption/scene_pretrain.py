"""Offline stand-in for ImageNet weights: the tiny encoder, pretrained once on embedded scenes.

The full preset freezes an ImageNet-pretrained EfficientNet-B0. Offline there are no ImageNet
weights, and a frozen *random* EfficientNet says almost nothing about colour or shape (a linear
probe on its pooled features finds the first object's colour 38% and shape 36% of the time,
against 25% and 33% by chance). So the tiny preset builds the same torchvision EfficientNet at
small width/depth and pretrains it once, like ImageNet pretraining, on scenes that are *not*
the captioning data (their own seed): for each cell of the 3x3 layout, predict which of the
12 colour/shape objects -- or nothing -- is there, with the tiny presets' one pretraining loop
(:func:`dlhw.core.pretrain.pretrain_loop`). The weights are cached like the other tiny bases
(:func:`dlhw.core.cache.cached_base`) in ``$DLHW_CACHE_DIR/encoders/`` (default ``~/.cache/dlhw``),
under a key hashed from the sizes and the code that generates them, and shared by every caption recipe.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from dlhw.core import pretrain as core_pretrain
from dlhw.core.cache import asset_key, cache_dir, cached_base
from dlhw.core.pretrain import one_cycle, pretrain_loop, seeded
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
BATCH = 64
WEIGHTS = "backbone.safetensors"
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


class SceneProbe(nn.Module):
    """The trunk with a per-cell classifier on top: what the scene pretraining trains."""

    def __init__(self, backbone: nn.Sequential):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Conv2d(feature_channels(backbone), 1 + len(CLASSES), kernel_size=1)  # per-cell classifier

    def forward(self, x: Tensor) -> Tensor:
        fmap = self.backbone(x)  # (B, C, h, w)
        return self.head(F.adaptive_avg_pool2d(fmap, 3)).flatten(2)  # (B, 13, 9): the 3x3 cells' logits


def pretrain_scene_backbone(width_mult: float, depth_mult: float, image_size: int,
                            log: bool = True) -> tuple[dict[str, Tensor], float]:
    """Train the trunk on per-cell scene labels; return its state dict and the last loss (deterministic)."""
    probe = seeded(PRETRAIN_SEED, lambda: SceneProbe(efficientnet_b0_features(False, width_mult, depth_mult)))
    scenes = [make_scene(PRETRAIN_SEED, i) for i in range(PRETRAIN_SCENES)]
    x = _images(scenes, image_size)  # (N, 3, S, S)
    y = torch.stack([cell_labels(s) for s in scenes])  # (N, 9)
    per_epoch = len(scenes) // BATCH
    gen = torch.Generator().manual_seed(PRETRAIN_SEED)
    order = torch.arange(0)

    def batch(step: int) -> tuple[Tensor, Tensor]:
        nonlocal order
        if step % per_epoch == 0:  # a new epoch: a new order of the scenes
            order = torch.randperm(len(scenes), generator=gen)
        idx = order[step % per_epoch * BATCH : (step % per_epoch + 1) * BATCH]
        return x[idx], y[idx]  # (64, 3, S, S), (64, 9)

    def loss(model: nn.Module, xy: tuple[Tensor, Tensor]) -> Tensor:
        return F.cross_entropy(model(xy[0]), xy[1])  # over (64, 13, 9) vs (64, 9)

    final = pretrain_loop(probe, batch, PRETRAIN_EPOCHS * per_epoch, lr=3e-3, seed=PRETRAIN_SEED, loss=loss,
                          weight_decay=1e-4, schedule=one_cycle(), clip=None,
                          desc="pretraining the tiny encoder on scenes (once)", log=log)
    return {k: v.detach().contiguous() for k, v in probe.backbone.state_dict().items()}, final


def build_scene_backbone(width_mult: float, depth_mult: float, image_size: int, out_dir: Path,
                         log: bool = True) -> None:
    """Pretrain the trunk and write it to ``out_dir``: the weights, then ``pretrain.json`` last."""
    state, final = pretrain_scene_backbone(width_mult, depth_mult, image_size, log)
    save_file(state, str(out_dir / WEIGHTS))
    (out_dir / "pretrain.json").write_text(json.dumps({
        "width_mult": width_mult, "depth_mult": depth_mult, "image_size": image_size, "seed": PRETRAIN_SEED,
        "scenes": PRETRAIN_SCENES, "epochs": PRETRAIN_EPOCHS, "final_loss": round(final, 4),
    }, indent=2), encoding="utf-8")


def scene_pretrained_backbone(width_mult: float, depth_mult: float, image_size: int) -> dict[str, Tensor]:
    """The cached pretrained trunk for these sizes, pretraining it first if needed."""
    key = asset_key({"width_mult": width_mult, "depth_mult": depth_mult, "image_size": image_size},
                    sys.modules[__name__], scenes_module, efficientnet_b0_features, core_pretrain)
    path = cache_dir() / "encoders" / f"scenes-w{width_mult:g}-d{depth_mult:g}-s{image_size}-{key}"
    cached_base(path, lambda folder: build_scene_backbone(width_mult, depth_mult, image_size, folder),
                "tiny encoder")
    return load_file(str(path / WEIGHTS))
