"""Persian text-to-speech: SpeechT5 + HiFi-GAN with x-vector speaker embeddings.

The package's ``FAMILY`` is all the shared commands know of it (see :mod:`dlhw.core.family`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlhw.core.family import TRAINING_SECTION, ExportSpec, Family, Recipe, lazy
from dlhw.families.tts.config import TtsConfig, hub_assets

if TYPE_CHECKING:
    from dlhw.families.tts.evaluate import evaluate_tts_run
    from dlhw.families.tts.export import (
        build_tts_engines,
        check_tts_export,
        export_tts,
        export_tts_hf,
        load_for_export,
    )
    from dlhw.families.tts.infer import open_predictor
    from dlhw.families.tts.model import load_run_model
    from dlhw.families.tts.report import (
        data_section,
        evaluation_section,
        inspect_tts_data,
        model_section,
    )
    from dlhw.families.tts.train import train_tts
else:
    open_predictor = lazy("dlhw.families.tts.infer:open_predictor")
    train_tts = lazy("dlhw.families.tts.train:train_tts")
    evaluate_tts_run = lazy("dlhw.families.tts.evaluate:evaluate_tts_run")
    load_for_export = lazy("dlhw.families.tts.export:load_for_export")
    export_tts = lazy("dlhw.families.tts.export:export_tts")
    export_tts_hf = lazy("dlhw.families.tts.export:export_tts_hf")
    check_tts_export = lazy("dlhw.families.tts.export:check_tts_export")
    build_tts_engines = lazy("dlhw.families.tts.export:build_tts_engines")
    data_section = lazy("dlhw.families.tts.report:data_section")
    model_section = lazy("dlhw.families.tts.report:model_section")
    evaluation_section = lazy("dlhw.families.tts.report:evaluation_section")
    inspect_tts_data = lazy("dlhw.families.tts.report:inspect_tts_data")
    load_run_model = lazy("dlhw.families.tts.model:load_run_model")

FAMILY = Family(
    name="tts",
    summary="Persian text-to-speech: SpeechT5 + HiFi-GAN with x-vector speakers (Common Voice fa)",
    config_class=TtsConfig,
    recipes=(Recipe("tts", "tts", "Persian TTS: SpeechT5 fine-tuned on Common Voice fa, x-vector speakers"),),
    train=train_tts,
    evaluate=evaluate_tts_run,
    evaluate_options=("batch_size", "device"),
    export=ExportSpec(load=load_for_export, exporter=export_tts, checker=check_tts_export, atol=1e-3,
                      tensorrt=build_tts_engines, hf=export_tts_hf),
    predictor=open_predictor,
    batch_verb="tts",
    batch_command="dlhw.families.tts.cli:tts_cmd",
    report_sections=(data_section, model_section, TRAINING_SECTION, evaluation_section),
    metrics=(("mel_l1", "mel L1"), ("mcd", "MCD (dB)"), ("duration_ratio", "duration ratio")),
    inspect=inspect_tts_data,
    load_model=load_run_model,
    data_dir=("data.data_dir={dir}", "data.source=commonvoice"),
    hub_assets=hub_assets,
)
