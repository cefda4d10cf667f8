"""THE registry: one :class:`Family` entry per model family, and the recipes that belong to them.

A family declares everything the shared commands need to know about it -- its config class,
how it trains (optional: a prompting family trains nothing), evaluates, exports (optional), its
batch predictor and verb (optional), the report sections it renders, the headline metrics a
comparison shows, and which options it accepts on ``evaluate``, ``export`` and ``data inspect``.
``train``, ``evaluate``, ``export``, ``data inspect``, ``model summary`` and ``report`` ask this
table and never branch on a family's name.

Entry points are import strings (``"package.module:name"``): listing recipes or showing a config
imports no torch, and this low layer names the higher ones without importing them.

Adding a family = one module per layer (see README "Adding a family") + one entry in
:data:`FAMILIES` + its recipes in :data:`RECIPES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dlhw.config import deep_merge, from_dict, load_yaml, parse_override
from dlhw.core.imports import import_string
from dlhw.core.runs import run_config_dict
from dlhw.errors import ConfigError

TRAINING_SECTION = "training"
"""In ``Family.report_sections``: where the shared training section (steps, time, loss curve) goes."""


@dataclass(frozen=True)
class ExportSpec:
    """How a family's runs become ONNX, and how the export is checked (optimum-onnx style)."""

    load: str
    """``module:function(run_dir) -> handle``: the run's model, loaded once for the whole export."""
    exporter: str
    """``module:function(handle, out_dir, opset) -> meta`` writing the ONNX files."""
    checker: str
    """``module:function(handle, out_dir, meta, atol) -> parity``; raises beyond ``atol``. The
    parity report holds ``max_abs_diff``, ``atol`` and a one-line ``summary``."""
    tensorrt: str
    """``module:function(out_dir, meta, fp16, max_batch) -> settings`` building the engines."""
    atol: float
    """Largest allowed |torch - ONNX Runtime| difference (fp32) unless ``--atol`` says otherwise."""
    opset: int = 17
    """Default ONNX opset (``--opset`` overrides)."""
    int8: str | None = None
    """``module:function(handle, out_dir) -> report`` writing an int8 model and its quality change
    (the report's ``summary`` is printed)."""


@dataclass(frozen=True)
class Family:
    """One model family: what the shared commands may do with its runs."""

    name: str
    summary: str
    config_class: str
    """``module:Class`` of the family's config (a :class:`dlhw.config.RunConfig`)."""
    evaluate: str
    """``module:function(run_dir, **options) -> {"metrics": ...}``; options as in ``options["evaluate"]``."""
    train: str | None = None
    """``module:function(config, run_dir, resume_from)``; None for a family that trains nothing."""
    export: ExportSpec | None = None
    """None when the family's runs cannot be exported yet."""
    predictor: str | None = None
    """``module:function(path, backend, device, ...)`` loading the batch predictor of a run or export."""
    batch_verb: str | None = None
    """Name of the family's batch command (``caption``, ``chat``, ...), registered by the CLI."""
    batch_command: str | None = None
    """``module:command`` implementing ``batch_verb``."""
    report_sections: tuple[str, ...] = ()
    """Run-report sections in order: ``module:function(run_dir, config, summary, evaluation) ->
    list[str]`` (Markdown lines), and :data:`TRAINING_SECTION` where the shared one goes."""
    metrics: tuple[tuple[str, str], ...] = ()
    """Headline metrics ``(key in eval.json "metrics", label)``: comparison columns and bar panels."""
    inspect: str | None = None
    """``module:function(config, out_dir) -> numbers`` behind ``dlhw data inspect FAMILY``."""
    load_model: str | None = None
    """``module:function(run_dir) -> (model, label)``: the run's model as trained (``dlhw model summary``)."""
    data_dir: tuple[str, ...] = ()
    """``--set`` items that ``train --data-dir DIR`` (and ``data inspect --data-dir``) stand for;
    ``{dir}`` is replaced by DIR."""
    calibration: str | None = None
    """``module:function(run_dir, n_batches) -> list of forward kwargs``: a few training batches of the
    run's data, for activation-aware pruning (``dlhw prune --method wanda``)."""
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Options accepted per shared verb (``evaluate``, ``export``, ``inspect``), by parameter name."""

    def load(self, attr: str) -> Any:
        """The object an entry point names, imported now."""
        target = getattr(self, attr)
        if target is None:
            raise ConfigError(f"the {self.name} family has no {attr.replace('_', ' ')}")
        return import_string(target)

    def verbs(self) -> list[str]:
        """The commands that work on this family's recipes and runs."""
        verbs = ["train"] if self.train else []
        verbs.append("evaluate")
        if self.export:
            verbs.append("export")
        if self.batch_verb:
            verbs.append(self.batch_verb)
        if self.inspect:
            verbs.append("data inspect")
        return verbs


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str
    summary: str
    pins: tuple[tuple[str, Any], ...] = ()
    """Dotted config keys the recipe fixes (``("method.kind", "lora")``): the one place that says
    what a recipe trains; a ``--set`` that contradicts a pin is an error naming the right recipe."""

    @property
    def config_file(self) -> Path:
        return Path(str(resources.files("dlhw.configs").joinpath(f"{self.name}.yaml")))


CAPTION_EXPORT = ExportSpec(
    load="dlhw.families.caption.export:load_for_export",
    exporter="dlhw.families.caption.export:export_caption",
    checker="dlhw.families.caption.export:check_caption_export",
    tensorrt="dlhw.families.caption.export:build_caption_engines",
    atol=1e-3,
)
CHAT_EXPORT = ExportSpec(
    load="dlhw.families.chat.export:load_for_export",
    exporter="dlhw.families.chat.export:export_chat",
    checker="dlhw.families.chat.export:check_chat_export",
    tensorrt="dlhw.lm.export:build_decoder_engines",
    atol=1e-3,
    opset=18,  # optimum-onnx's minimum for Llama / Gemma
    int8="dlhw.families.chat.export:quantize_chat_export",
)
NER_EXPORT = ExportSpec(
    load="dlhw.families.ner.export:load_for_export",
    exporter="dlhw.families.ner.export:export_ner",
    checker="dlhw.families.ner.export:check_ner_export",
    tensorrt="dlhw.families.ner.export:build_ner_engines",
    atol=1e-3,
    int8="dlhw.families.ner.export:quantize_ner_export",
)
SUMMARIZATION_EXPORT = ExportSpec(
    load="dlhw.families.summarization.export:load_for_export",
    exporter="dlhw.families.summarization.export:export_summarizer",
    checker="dlhw.families.summarization.export:check_summarizer_export",
    tensorrt="dlhw.lm.export:build_decoder_engines",
    atol=1e-3,
    opset=18,
    int8="dlhw.families.summarization.export:quantize_summarizer_export",
)
TTS_EXPORT = ExportSpec(
    load="dlhw.families.tts.export:load_for_export",
    exporter="dlhw.families.tts.export:export_tts",
    checker="dlhw.families.tts.export:check_tts_export",
    tensorrt="dlhw.families.tts.export:build_tts_engines",
    atol=1e-3,
)
PROMPTING_EXPORT = ExportSpec(
    load="dlhw.families.prompting.export:load_for_export",
    exporter="dlhw.families.prompting.export:export_prompt_model",
    checker="dlhw.families.prompting.export:check_prompt_export",
    tensorrt="dlhw.families.prompting.export:build_prompt_engines",
    atol=1e-3,
)
EXPORT_OPTIONS = ("tensorrt", "fp16", "opset", "out", "atol", "max_batch")
INSPECT_OPTIONS = ("data_dir", "preset", "overrides", "out_dir")

FAMILIES: dict[str, Family] = {
    "caption": Family(
        name="caption",
        summary="image captioning: EfficientNet-B0 encoder + LSTM / soft-attention LSTM / Transformer decoder",
        config_class="dlhw.families.caption.config:CaptionConfig",
        train="dlhw.families.caption.train:train_caption",
        evaluate="dlhw.families.caption.evaluate:evaluate_caption_run",
        export=CAPTION_EXPORT,
        predictor="dlhw.families.caption.infer:load_captioner",
        batch_verb="caption",
        batch_command="dlhw.families.caption.cli:caption_cmd",
        report_sections=("dlhw.families.caption.report:data_section", "dlhw.families.caption.report:model_section",
                         TRAINING_SECTION, "dlhw.families.caption.report:evaluation_section"),
        metrics=(("bleu_4", "BLEU-4"), ("cider", "CIDEr")),
        inspect="dlhw.families.caption.report:inspect_caption_data",
        load_model="dlhw.families.caption.model:load_run_model",
        data_dir=("data.data_dir={dir}", "data.source=flickr8k"),
        options={
            "evaluate": ("split", "beam_size", "batch_size", "device", "backend"),
            "export": EXPORT_OPTIONS,
            "inspect": INSPECT_OPTIONS,
        },
    ),
    "chat": Family(
        name="chat",
        summary="Persian instruction tuning of a small LLM with a PEFT method or partial fine-tuning",
        config_class="dlhw.families.chat.config:ChatConfig",
        train="dlhw.families.chat.train:train_chat",
        evaluate="dlhw.families.chat.evaluate:evaluate_chat_run",
        export=CHAT_EXPORT,
        predictor="dlhw.families.chat.infer:load_chat_generator",
        batch_verb="chat",
        batch_command="dlhw.families.chat.cli:chat_cmd",
        report_sections=("dlhw.families.chat.report:data_section", "dlhw.families.chat.report:model_section",
                         TRAINING_SECTION, "dlhw.families.chat.report:evaluation_section"),
        metrics=(("perplexity", "test perplexity"), ("exact_match", "exact match")),
        load_model="dlhw.lm.run:load_run_model",
        data_dir=("data.path={dir}", "data.source=local"),
        options={
            "evaluate": ("batch_size", "device"),
            "export": (*EXPORT_OPTIONS, "int8"),
        },
    ),
    "summarization": Family(
        name="summarization",
        summary="news and dialogue summarization with a causal LM: TRL SFT, LoRA, zero/few-shot prompting",
        config_class="dlhw.families.summarization.config:SummarizationConfig",
        train="dlhw.families.summarization.train:train_summarization",
        evaluate="dlhw.families.summarization.evaluate:evaluate_summarization_run",
        export=SUMMARIZATION_EXPORT,
        predictor="dlhw.families.summarization.infer:load_summarizer",
        batch_verb="summarize",
        batch_command="dlhw.families.summarization.cli:summarize_cmd",
        report_sections=("dlhw.families.summarization.report:data_section", "dlhw.families.summarization.report:model_section",
                         TRAINING_SECTION, "dlhw.families.summarization.report:evaluation_section"),
        metrics=(("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum"),
                 ("bertscore_f1", "BERTScore F1")),
        inspect="dlhw.families.summarization.report:inspect_summarization_data",
        load_model="dlhw.families.summarization.model:load_run_model",
        calibration="dlhw.families.summarization.calibration:summarization_calibration",
        data_dir=("data.path={dir}", "data.source=local"),
        options={
            "evaluate": ("batch_size", "device", "backend"),
            "export": (*EXPORT_OPTIONS, "int8"),
            "inspect": INSPECT_OPTIONS,
        },
    ),
    "ner": Family(
        name="ner",
        summary="named-entity recognition: XLM-RoBERTa backbone + dlhw's own token-classification head",
        config_class="dlhw.families.ner.config:NerConfig",
        train="dlhw.families.ner.train:train_ner",
        evaluate="dlhw.families.ner.evaluate:evaluate_ner_run",
        export=NER_EXPORT,
        predictor="dlhw.families.ner.infer:load_tagger",
        batch_verb="ner",
        batch_command="dlhw.families.ner.cli:ner_cmd",
        report_sections=("dlhw.families.ner.report:data_section", "dlhw.families.ner.report:model_section",
                         TRAINING_SECTION, "dlhw.families.ner.report:evaluation_section"),
        metrics=(("f1", "entity F1"), ("accuracy", "token accuracy")),
        inspect="dlhw.families.ner.report:inspect_ner_data",
        load_model="dlhw.families.ner.model:load_run_model",
        data_dir=("data.data_dir={dir}", "data.source=local"),
        options={
            "evaluate": ("split", "batch_size", "device", "backend"),
            "export": (*EXPORT_OPTIONS, "int8", "force"),
            "inspect": INSPECT_OPTIONS,
        },
    ),
    "tts": Family(
        name="tts",
        summary="Persian text-to-speech: SpeechT5 + HiFi-GAN with x-vector speakers (Common Voice fa)",
        config_class="dlhw.families.tts.config:TtsConfig",
        train="dlhw.families.tts.train:train_tts",
        evaluate="dlhw.families.tts.evaluate:evaluate_tts_run",
        export=TTS_EXPORT,
        predictor="dlhw.families.tts.infer:load_synthesizer",
        batch_verb="tts",
        batch_command="dlhw.families.tts.cli:tts_cmd",
        report_sections=("dlhw.families.tts.report:data_section", "dlhw.families.tts.report:model_section",
                         TRAINING_SECTION, "dlhw.families.tts.report:evaluation_section"),
        metrics=(("mel_l1", "mel L1"), ("mcd", "MCD (dB)"), ("duration_ratio", "duration ratio")),
        inspect="dlhw.families.tts.report:inspect_tts_data",
        load_model="dlhw.families.tts.model:load_run_model",
        data_dir=("data.data_dir={dir}", "data.source=commonvoice"),
        options={
            "evaluate": ("batch_size", "device"),
            "export": EXPORT_OPTIONS,
            "inspect": INSPECT_OPTIONS,
        },
    ),
    "prompting": Family(
        name="prompting",
        summary="prompting strategies on BBH sports_understanding (answer-only, few-shot, CoT, self-consistency); "
                "nothing is trained",
        config_class="dlhw.families.prompting.config:PromptConfig",
        evaluate="dlhw.families.prompting.evaluate:evaluate_prompt_run",
        export=PROMPTING_EXPORT,
        report_sections=("dlhw.families.prompting.report:data_section", "dlhw.families.prompting.report:model_section",
                         "dlhw.families.prompting.report:evaluation_section"),
        metrics=(("best_accuracy", "best accuracy"), ("accuracy_answer_only", "answer-only"),
                 ("accuracy_few_shot", "few-shot"), ("accuracy_cot", "CoT"), ("accuracy_cot_few_shot", "few-shot CoT"),
                 ("accuracy_cot_sc", "CoT + self-consistency")),
        load_model="dlhw.families.prompting.model:load_run_model",
        data_dir=("data.path={dir}", "data.source=local"),
        options={"evaluate": (), "export": ("opset", "out", "atol")},
    ),
}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("caption-rnn", "caption", "EfficientNet-B0 pooled vector -> LSTM decoder",
               (("model.arch", "rnn"),)),
        Recipe("caption-attention", "caption", "EfficientNet-B0 spatial map -> soft-attention LSTM",
               (("model.arch", "attention"),)),
        Recipe("caption-transformer", "caption", "EfficientNet-B0 spatial map -> Transformer decoder",
               (("model.arch", "transformer"),)),
        Recipe("chat-prompt-tuning", "chat", "Persian chat: prompt tuning (virtual-token embeddings)",
               (("method.kind", "prompt-tuning"),)),
        Recipe("chat-prefix-tuning", "chat", "Persian chat: prefix tuning (key/value prefixes per layer)",
               (("method.kind", "prefix-tuning"),)),
        Recipe("chat-p-tuning", "chat", "Persian chat: P-tuning (virtual tokens from a prompt encoder)",
               (("method.kind", "p-tuning"),)),
        Recipe("chat-lora", "chat", "Persian chat: LoRA / DoRA / rsLoRA / LoHa (method.variant)",
               (("method.kind", "lora"),)),
        Recipe("chat-partial", "chat", "Persian chat: train decoder layers 0, 1, L-2, L-1 only",
               (("method.kind", "partial"),)),
        Recipe("tts", "tts", "Persian TTS: SpeechT5 fine-tuned on Common Voice fa, x-vector speakers"),
        Recipe("summarize-sft", "summarization", "CNN/DailyMail: SmolLM2-360M, TRL SFT on the summary tokens",
               (("method.kind", "full"),)),
        Recipe("summarize-lora", "summarization", "TweetSumm: LoRA on stablelm-3b-4e1t (r 16, alpha 64, q/v)",
               (("method.kind", "lora"),)),
        Recipe("ner", "ner", "NER: XLM-R + own head on CoNLL-2003 + PEYMA-ARMAN (English + Persian)"),
        Recipe("bbh-sports", "prompting", "BBH sports_understanding: answer-only, few-shot, CoT, self-consistency "
                                          "(dlhw prompt bbh-sports)"),
    ]
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)} (see `dlhw recipes`)"
        ) from None


def family_of(recipe: str) -> Family:
    return FAMILIES[get_recipe(recipe).family]


def family_of_run(run_dir: str | Path) -> Family:
    """The family of a run directory, from the recipe in its ``config.yaml``."""
    recipe = run_config_dict(run_dir).get("recipe")
    if not recipe:
        raise ConfigError(f"{run_dir}/config.yaml: no `recipe:` key")
    return family_of(str(recipe))


def recipes_of(family: str) -> list[Recipe]:
    return [r for r in RECIPES.values() if r.family == family]


def presets_of(raw: dict[str, Any]) -> list[str]:
    return ["full", *raw.get("presets", {})]


def _lookup(raw: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_pins(recipe: Recipe, config: Any) -> None:
    """A config value that contradicts a recipe's pin is an error naming the recipe to use."""
    for key, value in recipe.pins:
        actual = config
        for part in key.split("."):
            actual = getattr(actual, part)
        if actual != value:
            other = next((r.name for r in recipes_of(recipe.family) if (key, actual) in r.pins), None)
            hint = f"use `dlhw train {other}`" if other else f"{key} is fixed by the recipe"
            raise ConfigError(f"{key}: recipe {recipe.name} trains {value}, not {actual}; {hint}")


def data_dir_overrides(family: Family, data_dir: str) -> tuple[str, ...]:
    """The ``--set`` items that ``--data-dir DIR`` stands for in ``family``."""
    if not family.data_dir:
        raise ConfigError(f"--data-dir: the {family.name} family reads no local dataset directory")
    return tuple(item.replace("{dir}", data_dir) for item in family.data_dir)


def resolve_config(
    recipe: str | None = None,
    preset: str = "full",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    seed: int | None = None,
) -> Any:
    """Resolve a recipe's config: YAML file -> preset overlay -> ``--set`` overrides -> dataclass -> pins.

    ``config_file`` replaces the shipped recipe YAML; it may be a recipe file (with ``presets:``)
    or a resolved ``config.yaml`` from a run directory.
    """
    raw = load_yaml(config_file) if config_file else None
    if recipe is None:
        if raw is None or "recipe" not in raw:
            raise ConfigError("no recipe given and the config file has no `recipe:` key")
        recipe = str(raw["recipe"])
    spec = get_recipe(recipe)
    if raw is None:
        raw = load_yaml(spec.config_file)
    presets = raw.pop("presets", {}) or {}
    if preset != raw.get("preset", "full"):
        if preset not in presets:
            raise ConfigError(
                f"recipe {recipe!r} has no preset {preset!r}; presets: {', '.join(['full', *presets])}"
            )
        raw = deep_merge(raw, presets[preset])
    raw = deep_merge(raw, {"recipe": recipe, "preset": preset})
    for item in overrides:
        raw = deep_merge(raw, parse_override(item))
    if seed is not None:
        raw["seed"] = seed
    for key, value in spec.pins:  # a pinned key the file leaves out takes the recipe's value
        if not _lookup(raw, key)[0]:
            raw = deep_merge(raw, parse_override(f"{key}={value}"))
    config = from_dict(import_string(FAMILIES[spec.family].config_class), raw)
    check_pins(spec, config)
    return config


def validate_file(path: str | Path) -> list[str]:
    """Validate a recipe YAML (every preset) or a resolved run config; return what was checked."""
    raw = load_yaml(path)
    recipe = raw.get("recipe")
    if recipe is None:
        raise ConfigError(f"{path}: missing `recipe:` (one of {', '.join(RECIPES)})")
    get_recipe(recipe)
    presets = presets_of(raw) if "presets" in raw else [raw.get("preset", "full")]
    return [f"{recipe} [{resolve_config(recipe, p, config_file=path).preset}]" for p in presets]
