"""Persian instruction tuning of a small LLM with every PEFT method, or partial fine-tuning.

The package's ``FAMILY`` is all the shared commands know of it (see :mod:`dlhw.core.family`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlhw.core.family import TRAINING_SECTION, ExportSpec, Family, Recipe, lazy
from dlhw.families.chat.config import ChatConfig, hub_assets

if TYPE_CHECKING:
    from dlhw.families.chat.evaluate import evaluate_chat_run
    from dlhw.families.chat.export import (
        check_chat_export,
        export_chat,
        export_chat_hf,
        load_for_export,
        quantize_chat_export,
    )
    from dlhw.families.chat.infer import open_predictor
    from dlhw.families.chat.model import load_run_model
    from dlhw.families.chat.report import data_section, evaluation_section, model_section
    from dlhw.families.chat.train import train_chat
    from dlhw.lm.export import build_decoder_engines
else:
    open_predictor = lazy("dlhw.families.chat.infer:open_predictor")
    train_chat = lazy("dlhw.families.chat.train:train_chat")
    evaluate_chat_run = lazy("dlhw.families.chat.evaluate:evaluate_chat_run")
    load_for_export = lazy("dlhw.families.chat.export:load_for_export")
    export_chat = lazy("dlhw.families.chat.export:export_chat")
    export_chat_hf = lazy("dlhw.families.chat.export:export_chat_hf")
    check_chat_export = lazy("dlhw.families.chat.export:check_chat_export")
    quantize_chat_export = lazy("dlhw.families.chat.export:quantize_chat_export")
    data_section = lazy("dlhw.families.chat.report:data_section")
    model_section = lazy("dlhw.families.chat.report:model_section")
    evaluation_section = lazy("dlhw.families.chat.report:evaluation_section")
    build_decoder_engines = lazy("dlhw.lm.export:build_decoder_engines")
    load_run_model = lazy("dlhw.families.chat.model:load_run_model")

FAMILY = Family(
    name="chat",
    summary="Persian instruction tuning of a small LLM with a PEFT method or partial fine-tuning",
    config_class=ChatConfig,
    recipes=(
        Recipe("chat-prompt-tuning", "chat", "Persian chat: prompt tuning (virtual-token embeddings)",
               (("method.kind", "prompt-tuning"),)),
        Recipe("chat-prefix-tuning", "chat", "Persian chat: prefix tuning (key/value prefixes per layer)",
               (("method.kind", "prefix-tuning"),)),
        Recipe("chat-p-tuning", "chat", "Persian chat: P-tuning (virtual tokens from a prompt encoder)",
               (("method.kind", "p-tuning"),)),
        Recipe("chat-lora", "chat", "Persian chat: LoRA / DoRA / rsLoRA / LoHa (method.variant)", (("method.kind", "lora"),)),
        Recipe("chat-partial", "chat", "Persian chat: train decoder layers 0, 1, L-2, L-1 only",
               (("method.kind", "partial"),)),
    ),
    train=train_chat,
    evaluate=evaluate_chat_run,
    evaluate_options=("batch_size", "device"),
    export=ExportSpec(load=load_for_export, exporter=export_chat, checker=check_chat_export, atol=1e-3,
                      opset=18, tensorrt=build_decoder_engines, int8=quantize_chat_export, hf=export_chat_hf),
    predictor=open_predictor,
    batch_verb="chat",
    batch_command="dlhw.families.chat.cli:chat_cmd",
    report_sections=(data_section, model_section, TRAINING_SECTION, evaluation_section),
    metrics=(("perplexity", "test perplexity"), ("exact_match", "exact match")),
    load_model=load_run_model,
    data_dir=("data.path={dir}", "data.source=local"),
    hub_assets=hub_assets,
)
