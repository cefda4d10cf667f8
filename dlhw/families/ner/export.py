"""NER runs to ONNX: one graph ``(input_ids, attention_mask) -> logits``, dynamic batch and sequence.

The check runs the test split through torch and ONNX Runtime with the same windowing code
(:class:`dlhw.families.ner.infer.Tagger`): the largest logit difference on a padded check batch must
stay within the tolerance and every predicted tag must be identical, or the export fails.

``--int8`` writes ``model.int8.onnx`` with ONNX Runtime's *dynamic* quantization (int8 weights,
activations quantized per batch at run time; static quantization with calibrated activation
ranges is known to wreck NER F1), scores the test split with it and refuses to keep it when the
entity F1 drops by more than :data:`INT8_MAX_F1_DROP` points -- ``--force`` keeps it anyway.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dlhw.backends import open_session
from dlhw.core.family import HfExport
from dlhw.core.runs import RunFiles
from dlhw.errors import DlhwError
from dlhw.families.ner.data import Sentence
from dlhw.families.ner.evaluate import score_sentences
from dlhw.families.ner.infer import Tagger, ort_logits, torch_logits
from dlhw.families.ner.model import META_FILE, NerModel, load_ner_model

HF_ATOL = 1e-5
"""Largest logit difference between the run and its ``--hf`` folder (the same weights, another class)."""
INT8_MAX_F1_DROP = 1.0
"""Largest entity-F1 loss (in points, on the test split) that int8 may cost."""
CHECK_BATCH = 16
INPUTS = ("input_ids", "attention_mask")


class LogitsGraph(nn.Module):
    """What the ONNX graph computes: the model's logits, nothing else."""

    def __init__(self, model: NerModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask)["logits"]  # (B, T, L)


@dataclass
class NerExport:
    """A NER run loaded once for its whole export, with its test split."""

    run_dir: Path
    model: NerModel
    tokenizer: Any
    meta: dict[str, Any]
    test: list[Sentence]


def load_for_export(run_dir: Path) -> NerExport:
    from dlhw.config import load_yaml
    from dlhw.core.registry import resolve_config
    from dlhw.families.ner.data import prepare_ner_data

    files = RunFiles(run_dir)
    model, tokenizer, meta = load_ner_model(files.model, "cpu")
    preset = str(load_yaml(files.config).get("preset", "full"))
    config = resolve_config(config_file=files.config, preset=preset)
    return NerExport(run_dir, model, tokenizer, meta, prepare_ner_data(config.data, config.seed).test)


def check_batch(job: NerExport) -> tuple[np.ndarray, np.ndarray]:
    """Padded ``(input_ids, attention_mask)`` of the first test sentences (lengths differ, so padding is tested)."""
    enc = job.tokenizer([s.tokens for s in job.test[:CHECK_BATCH]], is_split_into_words=True, truncation=True,
                        max_length=job.meta["max_length"], padding=True, return_tensors="np")
    return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


def export_ner(job: NerExport, out_dir: Path, opset: int) -> dict[str, Any]:
    """Write ``model.onnx``, ``ner.json`` and the tokenizer into ``out_dir``."""
    ids, mask = check_batch(job)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            LogitsGraph(job.model).eval(), (torch.from_numpy(ids), torch.from_numpy(mask)), str(out_dir / "model.onnx"),
            dynamo=False, opset_version=opset, input_names=list(INPUTS), output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": axes},
        )
    shutil.copy(RunFiles(job.run_dir).model / META_FILE, out_dir / META_FILE)
    job.tokenizer.save_pretrained(out_dir)
    return {"family": "ner", "opset": opset, "files": {"model": "model.onnx"}, "labels": job.meta["labels"],
            "max_length": job.meta["max_length"], "stride": job.meta["stride"], "inputs": list(INPUTS)}


def _tagger(job: NerExport, logits_fn: Any) -> Tagger:
    return Tagger(job.tokenizer, job.meta["labels"], job.meta["max_length"], job.meta["stride"], logits_fn)


def check_ner_export(job: NerExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """Logits within ``atol`` on a padded batch; identical tags on the whole test split."""
    from dlhw.backends.parity import Decision, check_parity

    session = open_session(out_dir / "model.onnx", ["CPUExecutionProvider"])
    job.model.eval()  # the exporter restores its wrapper's (training) mode: compare in inference mode
    ids, mask = check_batch(job)
    torch_out = torch_logits(job.model, torch.device("cpu"))(ids, mask)
    ort_out = ort_logits(session)(ids, mask)
    keep = mask.astype(bool)  # padded positions are never read
    sentences = [s.tokens for s in job.test]
    torch_tags = _tagger(job, torch_logits(job.model, torch.device("cpu"))).tag(sentences)
    ort_tags = _tagger(job, ort_logits(session)).tag(sentences)
    return check_parity({"logits": (torch_out[keep], ort_out[keep])}, atol,
                        decisions=[Decision("tags", "test sentence", torch_tags, ort_tags)],
                        what=f"a padded check batch of {len(ids)} test sentences",
                        extra={"test_sentences": len(sentences), "identical_tag_sentences": len(sentences)})


def quantize_weights(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the weights (activations quantized at run time)."""
    from dlhw.backends.quantize import quantize_int8

    quantize_int8(source, target)


def quantize_ner_export(job: NerExport, out_dir: Path, force: bool = False) -> dict[str, Any]:
    """``model.int8.onnx`` and the test F1 before and after; refused beyond a 1-point drop unless ``force``."""
    target = out_dir / "model.int8.onnx"
    quantize_weights(out_dir / "model.onnx", target)
    fp32, _ = score_sentences(_tagger(job, ort_logits(open_session(out_dir / "model.onnx", ["CPUExecutionProvider"]))),
                              job.test)
    int8, _ = score_sentences(_tagger(job, ort_logits(open_session(target, ["CPUExecutionProvider"]))), job.test)
    change = 100 * (int8["f1"] - fp32["f1"])
    sizes = {"fp32": (out_dir / "model.onnx").stat().st_size, "int8": target.stat().st_size}
    line = (f"test entity F1 {fp32['f1']:.4f} -> {int8['f1']:.4f} ({change:+.2f} points) on {len(job.test)} sentences")
    if change < -INT8_MAX_F1_DROP and not force:
        target.unlink()
        raise DlhwError(f"int8 refused: {line}, more than the {INT8_MAX_F1_DROP:g}-point limit; model.int8.onnx was "
                        "not written. Export without --int8, or add --force to write it anyway")
    summary = (f"int8: model.int8.onnx ({sizes['int8'] / 2**20:.1f} MiB, fp32 {sizes['fp32'] / 2**20:.1f} MiB); {line}"
               + (" -- kept by --force despite the drop" if change < -INT8_MAX_F1_DROP else ""))
    return {"file": target.name, "f1_fp32": fp32["f1"], "f1_int8": int8["f1"], "f1_change_points": change,
            "forced": bool(force and change < -INT8_MAX_F1_DROP), "bytes_fp32": sizes["fp32"],
            "bytes_int8": sizes["int8"], "summary": summary}


def build_ner_engines(out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]:
    """TensorRT engines for ``model.onnx``: batch 1..max_batch, sequence 1..max_length."""
    from dlhw.backends.tensorrt import shape_profiles, tensorrt_providers

    profile = shape_profiles({name: ["batch", "sequence"] for name in INPUTS}, max_batch, meta["max_length"])
    settings = {"fp16": fp16, "max_batch": max_batch, **profile}
    open_session(out_dir / "model.onnx", tensorrt_providers(out_dir, settings))  # builds the engines into the cache
    return settings



def export_ner_hf(run_dir: Path, out_dir: Path) -> HfExport:
    """``dlhw export RUN --hf``: the backbone and dlhw's head as the backbone's ``AutoModelForTokenClassification``.

    dlhw's head is dropout + one linear layer over the backbone's last hidden states -- the same
    computation as transformers' token-classification head (``classifier``), so the weights move over
    unchanged (``backbone.*`` -> the base model prefix) with the labels as ``id2label``. Checked: logits
    of a padded test batch and the tags of the whole test split equal the run's.
    """
    from transformers import AutoConfig, AutoModelForTokenClassification

    job = load_for_export(run_dir)
    labels = list(job.meta["labels"])
    config = AutoConfig.from_pretrained(RunFiles(run_dir).model)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.classifier_dropout = job.meta.get("dropout", 0.1)
    hf = AutoModelForTokenClassification.from_config(config)
    prefix = hf.base_model_prefix
    state = {(f"{prefix}.{k.removeprefix('backbone.')}" if k.startswith("backbone.") else k): v
             for k, v in job.model.state_dict().items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DlhwError(f"--hf: {type(hf).__name__} does not match dlhw's model (missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]}); export it with --onnx instead")
    hf.save_pretrained(out_dir)
    job.tokenizer.save_pretrained(out_dir)
    shutil.copy(RunFiles(run_dir).model / META_FILE, out_dir / META_FILE)
    reloaded = AutoModelForTokenClassification.from_pretrained(out_dir).eval()
    job.model.eval()
    ids, mask = check_batch(job)
    keep = mask.astype(bool)
    cpu = torch.device("cpu")
    sentences = [s.tokens for s in job.test]
    diff = float(np.abs(torch_logits(job.model, cpu)(ids, mask)[keep] - torch_logits(reloaded, cpu)(ids, mask)[keep]).max())
    ours = _tagger(job, torch_logits(job.model, cpu)).tag(sentences)
    theirs = _tagger(job, torch_logits(reloaded, cpu)).tag(sentences)
    differ = sum(a != b for a, b in zip(ours, theirs, strict=True))
    if diff > HF_ATOL or differ:
        raise DlhwError(f"--hf: the reloaded {type(reloaded).__name__} differs from the run: logits by {diff:.3g} "
                        f"(tolerance {HF_ATOL:g}), tags on {differ} of {len(sentences)} test sentences; nothing was written")
    name = job.meta.get("backbone") or config.name_or_path
    from dlhw.core.download import is_hub_id

    load = ('folder = "path/to/this/folder"\nfrom transformers import AutoModelForTokenClassification, AutoTokenizer\n\n'
            'tokenizer = AutoTokenizer.from_pretrained(folder)\n'
            'model = AutoModelForTokenClassification.from_pretrained(folder)  # labels in model.config.id2label')
    return HfExport(
        form="model", library="transformers", pipeline_tag="token-classification",
        base_model=str(name) if is_hub_id(str(name)) else None, method="full fine-tuning (backbone + head)",
        load=load, check=(f"logits of the reloaded folder differ from the run's by at most {diff:.2g} on a padded batch of {len(ids)} "
                          f"test sentences; tags identical on all {len(sentences)} test sentences"),
        limits=(f"dlhw's own head (dropout + linear over {len(labels)} IOB2 labels) saved as {type(hf).__name__}: "
                "the same computation, loaded by the standard class.",
                "dlhw labels a word on its first sub-token that is not a lone '▁' and windows long sentences "
                f"(max_length {job.meta['max_length']}, stride {job.meta['stride']}, in ner.json); transformers' "
                "token-classification pipeline aggregates sub-tokens its own way, so word-level tags can differ."))
