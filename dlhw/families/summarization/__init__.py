"""Summarization with a causal LM: TRL SFT, LoRA, and zero/few-shot prompting.

The package's ``FAMILY`` is all the shared commands know of it (see :mod:`dlhw.core.family`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlhw.core.family import TRAINING_SECTION, ExportSpec, Family, Recipe, lazy
from dlhw.families.summarization.config import SummarizationConfig, hub_assets

if TYPE_CHECKING:
    from dlhw.families.summarization.calibration import summarization_calibration
    from dlhw.families.summarization.evaluate import evaluate_summarization_run
    from dlhw.families.summarization.export import (
        check_summarizer_export,
        export_summarizer,
        export_summarizer_hf,
        load_for_export,
        quantize_summarizer_export,
    )
    from dlhw.families.summarization.infer import open_predictor
    from dlhw.families.summarization.model import load_run_model
    from dlhw.families.summarization.report import (
        data_section,
        evaluation_section,
        inspect_summarization_data,
        model_section,
    )
    from dlhw.families.summarization.train import train_summarization
    from dlhw.lm.export import build_decoder_engines
else:
    open_predictor = lazy("dlhw.families.summarization.infer:open_predictor")
    train_summarization = lazy("dlhw.families.summarization.train:train_summarization")
    evaluate_summarization_run = lazy("dlhw.families.summarization.evaluate:evaluate_summarization_run")
    load_for_export = lazy("dlhw.families.summarization.export:load_for_export")
    export_summarizer = lazy("dlhw.families.summarization.export:export_summarizer")
    export_summarizer_hf = lazy("dlhw.families.summarization.export:export_summarizer_hf")
    check_summarizer_export = lazy("dlhw.families.summarization.export:check_summarizer_export")
    quantize_summarizer_export = lazy("dlhw.families.summarization.export:quantize_summarizer_export")
    data_section = lazy("dlhw.families.summarization.report:data_section")
    model_section = lazy("dlhw.families.summarization.report:model_section")
    evaluation_section = lazy("dlhw.families.summarization.report:evaluation_section")
    inspect_summarization_data = lazy("dlhw.families.summarization.report:inspect_summarization_data")
    load_run_model = lazy("dlhw.families.summarization.model:load_run_model")
    summarization_calibration = lazy("dlhw.families.summarization.calibration:summarization_calibration")
    build_decoder_engines = lazy("dlhw.lm.export:build_decoder_engines")

FAMILY = Family(
    name="summarization",
    summary="news and dialogue summarization with a causal LM: TRL SFT, LoRA, zero/few-shot prompting",
    config_class=SummarizationConfig,
    recipes=(
        Recipe("summarize-sft", "summarization", "CNN/DailyMail: SmolLM2-360M, TRL SFT on the summary tokens",
               (("method.kind", "full"),)),
        Recipe("summarize-lora", "summarization", "TweetSumm: LoRA on stablelm-3b-4e1t (r 16, alpha 64, q/v)",
               (("method.kind", "lora"),)),
    ),
    train=train_summarization,
    evaluate=evaluate_summarization_run,
    evaluate_options=("batch_size", "device", "backend"),
    export=ExportSpec(load=load_for_export, exporter=export_summarizer, checker=check_summarizer_export, atol=1e-3,
                      opset=18, tensorrt=build_decoder_engines, int8=quantize_summarizer_export,
                      hf=export_summarizer_hf),
    predictor=open_predictor,
    batch_verb="summarize",
    batch_command="dlhw.families.summarization.cli:summarize_cmd",
    prompt_tasks={"summarize": "dlhw.families.summarization.prompt_cli:summarize_prompt_cmd"},
    report_sections=(data_section, model_section, TRAINING_SECTION, evaluation_section),
    metrics=(("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum"),
             ("bertscore_f1", "BERTScore F1")),
    inspect=inspect_summarization_data,
    load_model=load_run_model,
    calibration=summarization_calibration,
    data_dir=("data.path={dir}", "data.source=local"),
    hub_assets=hub_assets,
)
