"""``dlhw evaluate`` for captioning runs: BLEU-1..4, CIDEr, sample grid, attention heatmaps."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dlhw.config import from_dict, load_yaml
from dlhw.core.atomic import write_json_atomic, write_jsonl_atomic
from dlhw.core.devices import resolve_device
from dlhw.core.runs import RunFiles, read_json, require_run_dir
from dlhw.errors import DlhwError
from dlhw.families.caption.captions import CaptionImage, ImageTensors
from dlhw.families.caption.config import CaptionConfig
from dlhw.families.caption.data import prepare_captions
from dlhw.families.caption.infer import Backend, Captioner, load_captioner
from dlhw.families.caption.metrics import caption_metrics
from dlhw.families.caption.model import image_transform
from dlhw.families.caption.scenes import SHAPES, Scene, scene_of
from dlhw.reports.plots import plot_image_grid, plt, save_figure
from dlhw.reports.run_report import write_run_report

logger = logging.getLogger(__name__)


@dataclass
class Predictions:
    words: list[list[str]]
    """Generated caption of each image, as words."""
    alphas: list[np.ndarray | None]
    """(words, P) attention weights per image for caption-attention (greedy, or the best beam's)."""


def predict(
    captioner: Captioner, images: list[CaptionImage], batch_size: int = 32, beam_size: int = 1,
    length_penalty: float = 0.7, num_workers: int = 0,
) -> Predictions:
    """Caption ``images`` in batches with any backend's captioner."""
    loader = DataLoader(ImageTensors(images, image_transform(captioner.spec)), batch_size=batch_size,
                        num_workers=num_workers)
    words, alphas = [], []
    for batch in tqdm(loader, desc="captioning", unit="batch", leave=False):
        out = captioner.caption(batch, beam_size=beam_size, length_penalty=length_penalty)
        for i, row in enumerate(out.tokens.tolist()):
            caption = captioner.vocab.decode(row)
            words.append(caption)
            alphas.append(out.alphas[i, : len(caption)].cpu().numpy() if out.alphas is not None else None)
    return Predictions(words, alphas)


def attention_localization(scenes: list[Scene], preds: Predictions) -> tuple[int, int]:
    """For each generated shape word naming an object of its scene: does the attention peak of
    that step fall on the object? Returns (hits, words checked).

    The peak is the attention map's highest position; it hits when the centre of that position's
    cell, in image coordinates, lies inside the object's bounding box. A shape word is matched to
    the object of that shape (and of the colour word before it, when two objects share a shape).
    """
    hits = checked = 0
    for scene, words, alphas in zip(scenes, preds.words, preds.alphas, strict=True):
        if alphas is None:
            continue
        side = int(round(alphas.shape[1] ** 0.5))
        for t, word in enumerate(words):
            if word not in SHAPES:
                continue
            colour = words[t - 1] if t > 0 else None
            objects = [o for o in scene.objects if o.shape == word]
            if len(objects) > 1:
                objects = [o for o in objects if o.colour == colour]
            if len(objects) != 1:
                continue  # the word names no object of this scene
            (x0, y0, x1, y1) = objects[0].box
            row, col = divmod(int(alphas[t].argmax()), side)
            cx, cy = (col + 0.5) / side, (row + 0.5) / side
            hits += int(x0 <= cx <= x1 and y0 <= cy <= y1)
            checked += 1
    return hits, checked


def plot_attention(image: np.ndarray, words: list[str], alphas: np.ndarray, grid: tuple[int, int], path: Path) -> Path:
    """One panel per generated word: the image with that step's attention map laid over it."""
    n = len(words) + 1
    cols = min(6, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("image", fontsize=9)
    h, w = image.shape[:2]
    for ax, word, alpha in zip(list(axes.flat)[1:], words, alphas, strict=False):
        ax.imshow(image)
        ax.imshow(alpha.reshape(grid), cmap="jet", alpha=0.5, extent=(0, w, h, 0), interpolation="bilinear")
        ax.set_title(word, fontsize=10)
    return save_figure(fig, path)


def evaluate_caption_run(
    run_dir: str | Path, split: str | None = None, beam_size: int | None = None,
    batch_size: int | None = None, device: str | None = None, backend: Backend = "torch",
) -> dict:
    """Score a run's model on one split; write eval.json, predictions, plots and report.md."""
    run_dir = require_run_dir(run_dir)
    files = RunFiles(run_dir)
    config: CaptionConfig = from_dict(CaptionConfig, load_yaml(files.config))
    split = split or config.eval.split
    beam_size = beam_size or config.eval.beam_size
    data = prepare_captions(config.data, config.seed)
    saved_splits = read_json(files.splits)
    if saved_splits and saved_splits[split] != [im.image_id for im in data.splits[split]]:
        raise DlhwError(
            f"{run_dir}: the {split} split rebuilt from the data differs from the one the run "
            f"was trained with ({files.splits.name}); was the data directory changed?"
        )
    dev = resolve_device(device or config.train.device)
    captioner = load_captioner(run_dir, backend, str(dev))
    images = data.splits[split]
    preds = predict(captioner, images, batch_size or config.train.eval_batch_size, beam_size,
                    config.eval.length_penalty, config.train.num_workers)
    metrics = caption_metrics(data.tokens[split], preds.words)

    write_jsonl_atomic(files.predictions(split), (
        {"image": im.image_id, "caption": " ".join(words), "references": [" ".join(r) for r in refs]}
        for im, words, refs in zip(images, preds.words, data.tokens[split], strict=True)))

    plots = {}
    picks = random.Random(config.seed).sample(range(len(images)), k=min(5, len(images)))
    texts = [
        "gen: " + " ".join(preds.words[i]) + "\n" + "\n".join("ref: " + " ".join(r) for r in data.tokens[split][i][:3])
        for i in picks
    ]
    plot_image_grid([images[i].load() for i in picks], texts, files.plot(f"samples_{split}.png"),
                    title=f"{config.recipe}: {split} images, generated (gen) and reference (ref) captions")
    plots["samples"] = f"plots/samples_{split}.png"
    alphas = preds.alphas[picks[0]] if picks else None
    if config.model.arch == "attention" and alphas is not None:
        i = picks[0]
        positions = alphas.shape[1]
        side = int(round(positions**0.5))
        size = captioner.spec.image_size
        image = np.asarray(images[i].load().resize((size, size)))
        plot_attention(image, preds.words[i], alphas, (side, positions // side),
                       files.plot("attention.png"))
        plots["attention"] = "plots/attention.png"

    if config.model.arch == "attention" and config.data.source == "synthetic":
        scenes = [scene_of(im.image_id, config.seed) for im in images]
        hits, checked = attention_localization(scenes, preds)
        metrics["attention_peak_in_object"] = hits / max(checked, 1)
        logger.info(f"attention peak inside the named object: {hits}/{checked} shape words")

    result = {
        "split": split,
        "beam_size": beam_size,
        "backend": backend,
        "num_images": len(images),
        "metrics": metrics,
        "plots": plots,
    }
    write_json_atomic(files.eval, result)
    write_run_report(run_dir)
    return result
