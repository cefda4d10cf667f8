"""Image captioning: an EfficientNet-B0 encoder with an LSTM, soft-attention LSTM or Transformer decoder.

The package's ``FAMILY`` is all the shared commands know of it (see :mod:`dlhw.core.family`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlhw.core.family import TRAINING_SECTION, ExportSpec, Family, Recipe, lazy
from dlhw.families.caption.config import CaptionConfig, hub_assets

if TYPE_CHECKING:
    from dlhw.families.caption.evaluate import evaluate_caption_run
    from dlhw.families.caption.export import (
        build_caption_engines,
        check_caption_export,
        export_caption,
        load_for_export,
    )
    from dlhw.families.caption.infer import open_predictor
    from dlhw.families.caption.model import load_run_model
    from dlhw.families.caption.report import (
        data_section,
        evaluation_section,
        inspect_caption_data,
        model_section,
    )
    from dlhw.families.caption.train import train_caption
else:
    open_predictor = lazy("dlhw.families.caption.infer:open_predictor")
    train_caption = lazy("dlhw.families.caption.train:train_caption")
    evaluate_caption_run = lazy("dlhw.families.caption.evaluate:evaluate_caption_run")
    load_for_export = lazy("dlhw.families.caption.export:load_for_export")
    export_caption = lazy("dlhw.families.caption.export:export_caption")
    check_caption_export = lazy("dlhw.families.caption.export:check_caption_export")
    build_caption_engines = lazy("dlhw.families.caption.export:build_caption_engines")
    data_section = lazy("dlhw.families.caption.report:data_section")
    model_section = lazy("dlhw.families.caption.report:model_section")
    evaluation_section = lazy("dlhw.families.caption.report:evaluation_section")
    inspect_caption_data = lazy("dlhw.families.caption.report:inspect_caption_data")
    load_run_model = lazy("dlhw.families.caption.model:load_run_model")

FAMILY = Family(
    name="caption",
    summary="image captioning: EfficientNet-B0 encoder + LSTM / soft-attention LSTM / Transformer decoder",
    config_class=CaptionConfig,
    recipes=(
        Recipe("caption-rnn", "caption", "EfficientNet-B0 pooled vector -> LSTM decoder", (("model.arch", "rnn"),)),
        Recipe("caption-attention", "caption", "EfficientNet-B0 spatial map -> soft-attention LSTM",
               (("model.arch", "attention"),)),
        Recipe("caption-transformer", "caption", "EfficientNet-B0 spatial map -> Transformer decoder",
               (("model.arch", "transformer"),)),
    ),
    train=train_caption,
    evaluate=evaluate_caption_run,
    evaluate_options=("split", "beam_size", "batch_size", "device", "backend"),
    export=ExportSpec(load=load_for_export, exporter=export_caption, checker=check_caption_export, atol=1e-3,
                      tensorrt=build_caption_engines,
                      no_hf_because="its model is dlhw's own torch module (EfficientNet-B0 encoder + dlhw's decoder), not a transformers class: export it with --onnx"),
    predictor=open_predictor,
    batch_verb="caption",
    batch_command="dlhw.families.caption.cli:caption_cmd",
    report_sections=(data_section, model_section, TRAINING_SECTION, evaluation_section),
    metrics=(("bleu_4", "BLEU-4"), ("cider", "CIDEr")),
    inspect=inspect_caption_data,
    load_model=load_run_model,
    data_dir=("data.data_dir={dir}", "data.source=flickr8k"),
    hub_assets=hub_assets,
)
