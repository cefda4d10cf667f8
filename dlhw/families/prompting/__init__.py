"""Prompting strategies on BIG-Bench Hard sports_understanding; nothing is trained.

The package's ``FAMILY`` is all the shared commands know of it (see :mod:`dlhw.core.family`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlhw.core.family import ExportSpec, Family, Recipe, lazy
from dlhw.families.prompting.config import PromptConfig, hub_assets

if TYPE_CHECKING:
    from dlhw.families.prompting.evaluate import evaluate_prompt_run
    from dlhw.families.prompting.export import (
        check_prompt_export,
        export_prompt_hf,
        export_prompt_model,
        load_for_export,
    )
    from dlhw.families.prompting.model import load_run_model
    from dlhw.families.prompting.report import data_section, evaluation_section, model_section
    from dlhw.lm.export import build_seq2seq_engines
else:
    evaluate_prompt_run = lazy("dlhw.families.prompting.evaluate:evaluate_prompt_run")
    load_for_export = lazy("dlhw.families.prompting.export:load_for_export")
    export_prompt_model = lazy("dlhw.families.prompting.export:export_prompt_model")
    export_prompt_hf = lazy("dlhw.families.prompting.export:export_prompt_hf")
    check_prompt_export = lazy("dlhw.families.prompting.export:check_prompt_export")
    data_section = lazy("dlhw.families.prompting.report:data_section")
    model_section = lazy("dlhw.families.prompting.report:model_section")
    evaluation_section = lazy("dlhw.families.prompting.report:evaluation_section")
    load_run_model = lazy("dlhw.families.prompting.model:load_run_model")
    build_seq2seq_engines = lazy("dlhw.lm.export:build_seq2seq_engines")

FAMILY = Family(
    name="prompting",
    summary="prompting strategies on BBH sports_understanding (answer-only, few-shot, CoT, self-consistency); "
            "nothing is trained",
    config_class=PromptConfig,
    recipes=(Recipe("bbh-sports", "prompting", "BBH sports_understanding: answer-only, few-shot, CoT, "
                                               "self-consistency (dlhw prompt bbh-sports)"),),
    evaluate=evaluate_prompt_run,
    export=ExportSpec(load=load_for_export, exporter=export_prompt_model, checker=check_prompt_export, atol=1e-3,
                      tensorrt=build_seq2seq_engines, hf=export_prompt_hf),
    prompt_tasks={"bbh-sports": "dlhw.families.prompting.cli:bbh_sports_cmd"},
    report_sections=(data_section, model_section, evaluation_section),
    metrics=(("best_accuracy", "best accuracy"), ("accuracy_answer_only", "answer-only"),
             ("accuracy_few_shot", "few-shot"), ("accuracy_cot", "CoT"), ("accuracy_cot_few_shot", "few-shot CoT"),
             ("accuracy_cot_sc", "CoT + self-consistency")),
    load_model=load_run_model,
    data_dir=("data.path={dir}", "data.source=local"),
    hub_assets=hub_assets,
)
