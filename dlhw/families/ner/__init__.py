"""Named-entity recognition on English and Persian: an XLM-RoBERTa backbone with dlhw's own head.

The package's ``FAMILY`` is all the shared commands know of it (see :mod:`dlhw.core.family`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlhw.core.family import TRAINING_SECTION, ExportSpec, Family, Recipe, lazy
from dlhw.families.ner.config import NerConfig, hub_assets

if TYPE_CHECKING:
    from dlhw.families.ner.evaluate import evaluate_ner_run
    from dlhw.families.ner.export import (
        build_ner_engines,
        check_ner_export,
        export_ner,
        export_ner_hf,
        load_for_export,
        quantize_ner_export,
    )
    from dlhw.families.ner.infer import open_predictor
    from dlhw.families.ner.model import load_run_model
    from dlhw.families.ner.report import (
        data_section,
        evaluation_section,
        inspect_ner_data,
        model_section,
    )
    from dlhw.families.ner.train import train_ner
else:
    open_predictor = lazy("dlhw.families.ner.infer:open_predictor")
    train_ner = lazy("dlhw.families.ner.train:train_ner")
    evaluate_ner_run = lazy("dlhw.families.ner.evaluate:evaluate_ner_run")
    load_for_export = lazy("dlhw.families.ner.export:load_for_export")
    export_ner = lazy("dlhw.families.ner.export:export_ner")
    export_ner_hf = lazy("dlhw.families.ner.export:export_ner_hf")
    check_ner_export = lazy("dlhw.families.ner.export:check_ner_export")
    quantize_ner_export = lazy("dlhw.families.ner.export:quantize_ner_export")
    build_ner_engines = lazy("dlhw.families.ner.export:build_ner_engines")
    data_section = lazy("dlhw.families.ner.report:data_section")
    model_section = lazy("dlhw.families.ner.report:model_section")
    evaluation_section = lazy("dlhw.families.ner.report:evaluation_section")
    inspect_ner_data = lazy("dlhw.families.ner.report:inspect_ner_data")
    load_run_model = lazy("dlhw.families.ner.model:load_run_model")

FAMILY = Family(
    name="ner",
    summary="named-entity recognition: XLM-RoBERTa backbone + dlhw's own token-classification head",
    config_class=NerConfig,
    recipes=(Recipe("ner", "ner", "NER: XLM-R + own head on CoNLL-2003 + PEYMA-ARMAN (English + Persian)"),),
    train=train_ner,
    evaluate=evaluate_ner_run,
    evaluate_options=("split", "batch_size", "device", "backend"),
    export=ExportSpec(load=load_for_export, exporter=export_ner, checker=check_ner_export, atol=1e-3,
                      tensorrt=build_ner_engines, int8=quantize_ner_export, int8_gate=True, hf=export_ner_hf),
    predictor=open_predictor,
    batch_verb="ner",
    batch_command="dlhw.families.ner.cli:ner_cmd",
    report_sections=(data_section, model_section, TRAINING_SECTION, evaluation_section),
    metrics=(("f1", "entity F1"), ("accuracy", "token accuracy")),
    inspect=inspect_ner_data,
    load_model=load_run_model,
    data_dir=("data.data_dir={dir}", "data.source=local"),
    hub_assets=hub_assets,
)
