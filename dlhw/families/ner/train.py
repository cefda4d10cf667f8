"""The ``ner`` recipe: data -> backbone + tokenizer -> untrained score -> train -> save -> evaluate.

The full preset loads an XLM-R backbone with ``AutoModel`` (the stock
``XLMRobertaForTokenClassification`` is not used: the head is dlhw's own, :mod:`dlhw.families.ner.model`)
and trains one epoch on CoNLL-2003 + PEYMA-ARMAN with the engine; the tiny preset trains a
unigram tokenizer on the embedded training sentences and builds a small random XLM-R. Validation
F1 (seqeval, strict IOB2) picks the best checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlhw.core.atomic import write_json_atomic
from dlhw.core.runs import RunFiles
from dlhw.errors import DataError
from dlhw.families.ner.config import NerConfig
from dlhw.families.ner.data import LABELS, NerSplits, Sentence, prepare_ner_data

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

# torch, transformers and the engine are imported inside train_ner, after the data has loaded:
# a full preset without network fails within seconds, before the heavy imports.


def load_backbone(config: NerConfig, splits: NerSplits) -> tuple[Any, torch.nn.Module]:
    """``(tokenizer, backbone)``: the hub model, or the tiny one with a tokenizer trained here."""
    import torch

    from dlhw.families.ner.model import tiny_backbone, train_tiny_tokenizer
    from dlhw.families.ner.ner_tasks import tokenizer_corpus

    cfg = config.model
    if cfg.name is None:
        tokenizer = train_tiny_tokenizer(tokenizer_corpus(splits.train), cfg.tiny.vocab_size)
        return tokenizer, tiny_backbone(cfg.tiny, len(tokenizer), cfg.max_length, tokenizer.pad_token_id)
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.name)
        backbone = AutoModel.from_pretrained(cfg.name, add_pooling_layer=False, dtype=torch.float32)
    except OSError as err:
        raise DataError(f"could not load the backbone {cfg.name!r} ({str(err).splitlines()[0]}); offline, pass a "
                        "local copy with --set model.name=DIR, or train the tiny model with --preset tiny") from None
    return tokenizer, backbone


def encode_split(tokenizer: Any, sentences: list[Sentence], config: NerConfig) -> tuple[list[dict[str, list[int]]], int]:
    """Encoded sentences and how many were truncated at ``model.max_length``."""
    from dlhw.families.ner.model import encode_sentence

    out, truncated = [], 0
    for s in sentences:
        item = encode_sentence(tokenizer, s.tokens, s.tags, config.model.max_length, config.model.label_all_subtokens)
        labelled = sum(label != -100 for label in item["labels"])
        truncated += labelled < len(s.tokens) and not config.model.label_all_subtokens
        out.append(item)
    return out, truncated


def train_ner(config: NerConfig, run_dir: Path, resume_from: Path | None = None) -> dict[str, Any]:
    """Train one NER run into ``run_dir``; returns the training summary."""
    splits = prepare_ner_data(config.data, config.seed)
    from transformers import set_seed

    from dlhw.core.devices import resolve_device
    from dlhw.engine.finish import finish_run
    from dlhw.engine.trainer import Engine, run_training
    from dlhw.families.ner.evaluate import (
        argmax_logits,
        evaluate_sentences,
        make_compute_metrics,
        score_sentences,
    )
    from dlhw.families.ner.infer import Tagger, torch_logits
    from dlhw.families.ner.model import NerCollator, NerModel, save_ner_model

    set_seed(config.seed)
    device = resolve_device(config.train.device)
    logger.info(f"sentences: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test from "
                f"{splits.source}; {splits.quality['test_overlap_dropped']} test sentences seen in train dropped")
    tokenizer, backbone = load_backbone(config, splits)
    model = NerModel(backbone, len(LABELS), config.model.dropout)
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    train_set, truncated = encode_split(tokenizer, splits.train, config)
    val_set, _ = encode_split(tokenizer, splits.val, config)

    def tagger(m: torch.nn.Module) -> Tagger:
        dev = next(m.parameters()).device
        return Tagger(tokenizer, list(LABELS), config.model.max_length, config.model.stride, torch_logits(m, dev),
                      config.eval.batch_size)

    files = RunFiles(run_dir)
    base_file = files.base_eval
    if config.eval.untrained_baseline and not base_file.is_file():
        model.to(device).eval()
        base, _ = score_sentences(tagger(model), splits.test)
        write_json_atomic(base_file, {"split": "test", "metrics": base})
        logger.info(f"untrained model: test entity F1 {base['f1']:.4f}, token accuracy {base['accuracy']:.4f}")

    first = splits.test[0]

    def sample(m: Any) -> str:
        was_training = m.training
        m.eval()
        tags = tagger(m).tag([first.tokens])[0]
        m.train(was_training)
        return " ".join(f"{w}/{t}" if t != "O" else w for w, t in zip(first.tokens, tags, strict=True))

    engine = Engine(compute_metrics=make_compute_metrics(), metric_for_best_model="f1", greater_is_better=True,
                    trainer_kwargs={"preprocess_logits_for_metrics": argmax_logits})
    trainer, result = run_training(model, train_set, val_set, NerCollator(tokenizer.pad_token_id), config.train,
                                   run_dir, config.seed, resume_from=resume_from, sample=sample,
                                   sample_key="sample_tags", engine=engine)
    settings = {"max_length": config.model.max_length, "stride": config.model.stride,
                "label_all_subtokens": config.model.label_all_subtokens,
                "backbone": config.model.name or "tiny XLM-R (random init)"}

    def summary(m: Any) -> dict[str, Any]:
        bb: Any = m.backbone.config
        return {
            "label": "ner",
            "data": {**splits.summary(), "truncated": truncated},
            "model": {"backbone": settings["backbone"], "layers": bb.num_hidden_layers, "hidden_size": bb.hidden_size,
                      "vocab_size": bb.vocab_size, "labels": len(LABELS),
                      "parameters": sum(p.numel() for p in m.parameters())},
        }

    def evaluate(m: Any) -> None:
        m.eval()
        evaluate_sentences(run_dir, tagger(m), splits, "test")

    return finish_run(trainer, result, config, run_dir, summary=summary, evaluate=evaluate,
                      save=lambda m, model_dir: save_ner_model(m, tokenizer, model_dir, settings))
