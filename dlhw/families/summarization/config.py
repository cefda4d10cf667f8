"""Config schema of the summarization family: CNN/DailyMail and TweetSumm with a causal LM.

``summarize-sft`` fine-tunes every weight with TRL's ``SFTTrainer`` (``method.kind = full``);
``summarize-lora`` trains a LoRA adapter from the shared PEFT module (``method.kind = lora``).
``dlhw prompt summarize`` resolves one of these recipes too (cnn_dailymail -> summarize-sft,
tweetsumm -> summarize-lora) and fills :class:`PromptConfig`, so a zero-shot or few-shot run sits
next to the trained ones in ``dlhw report compare``.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.config.base import RunConfig
from dlhw.config.lm import TinyModelConfig
from dlhw.config.peft import MethodConfig
from dlhw.core.family import HubAsset
from dlhw.errors import ConfigError


@dataclass
class SummDataConfig:
    """Which documents and summaries, how many, and how long they may be."""

    dataset: typing.Literal["cnn_dailymail", "tweetsumm"] = "cnn_dailymail"
    """cnn_dailymail (news articles -> highlights) or tweetsumm (support dialogues -> summaries)."""
    source: typing.Literal["embedded", "hub", "local", "raw"] = "hub"
    """embedded = the built-in synthetic task; hub = hf_dataset; local = files at data.path
    (CNN/DM-shaped parquet/csv/jsonl, DialogStudio JSON, or .jsonl/.csv with article|dialogue|text and
    highlights|summary); raw = the raw TweetSumm release at data.path plus twcs.csv at data.twcs_path."""
    hf_dataset: str = "abisee/cnn_dailymail"
    """Hub id for source=hub (Salesforce/dialogstudio for tweetsumm)."""
    hf_config: str | None = "3.0.0"
    """Hub config name (3.0.0 for CNN/DailyMail, TweetSumm for DialogStudio)."""
    path: str | None = None
    """source=local or raw: a file or a directory of files."""
    twcs_path: str | None = None
    """source=raw: Kaggle's customer-support-on-Twitter twcs.csv, from which the dialogue texts are rebuilt
    (default: DIR/twcs.csv next to data.path)."""
    train_examples: int = 5000
    """Training examples drawn with the seed from the train split."""
    val_examples: int = 500
    """Validation examples (validation split, or held out of train when there is none)."""
    test_examples: int = 100
    """Test examples scored by ROUGE and BERTScore."""
    embedded_examples: int = 600
    """source=embedded: documents generated (train + val + test)."""
    train_reference: int = 0
    """Which reference summary trains (index; dialogues have 2-3). Scoring uses every reference."""
    max_input_tokens: int | None = None
    """Document tokens kept in a prompt; null = the 95th percentile of the train documents (measured
    with the model's tokenizer), so 5% are truncated and counted, never silently dropped."""
    max_length: int = 1024
    """Upper bound on prompt + summary tokens in training, and the context of generation."""

    def __post_init__(self) -> None:
        if self.source in ("local", "raw") and not self.path:
            raise ConfigError(f"data.path: required when data.source is {self.source}")
        if self.source == "raw" and self.dataset != "tweetsumm":
            raise ConfigError("data.source=raw: only tweetsumm has a raw release (+ twcs.csv)")
        if min(self.train_examples, self.val_examples, self.test_examples) < 1:
            raise ConfigError("data.train_examples / val_examples / test_examples: must be >= 1")
        if self.max_length < 32:
            raise ConfigError("data.max_length: must be >= 32")


@dataclass
class SummModelConfig:
    """The base model and how it is loaded."""

    name: str | None = "HuggingFaceTB/SmolLM2-360M"
    """Hugging Face id or local path (stabilityai/stablelm-3b-4e1t for LoRA); null = the tiny Llama
    below, pretrained once on embedded English text."""
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    """Sizes of the tiny base model."""
    quantization: typing.Literal["auto", "none", "nf4", "int8"] = "none"
    """auto = auto_quantization on CUDA for LoRA, none elsewhere; nf4 = 4-bit, int8 = 8-bit
    (bitsandbytes, CUDA only)."""
    auto_quantization: typing.Literal["dataset", "nf4", "int8"] = "dataset"
    """What quantization=auto loads for LoRA on CUDA: dataset = int8 (8-bit, as the assignment names)
    for TweetSumm, nf4 (4-bit) otherwise; or nf4 / int8 for every dataset."""
    dtype: typing.Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype: auto = bfloat16 on a CUDA GPU that supports it, float32 elsewhere."""
    template: typing.Literal["auto", "chat", "plain"] = "auto"
    """Prompt format: chat = the tokenizer's chat template (instruct models), plain = ``Article: ...
    Summary:`` text (base models); auto = chat when the name says Instruct/-it/chat, else plain."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, about 30% slower)."""
    attn_implementation: str | None = None
    """eager, sdpa or flash_attention_2; null = the transformers default."""


@dataclass
class SummEvalConfig:
    """Generation and scoring."""

    max_new_tokens: int | None = None
    """Generation limit; null = 1.25 x the 95th percentile of train summary tokens (+ EOS)."""
    batch_size: int = 16
    """Documents per generation batch (left padding, KV cache)."""
    do_sample: bool = False
    """Sample instead of greedy decoding (temperature / top_p / top_k then apply)."""
    temperature: float = 1.0
    """Sampling temperature (do_sample only)."""
    top_p: float = 1.0
    """Nucleus sampling mass (do_sample only)."""
    top_k: int = 0
    """Sample among the k likeliest tokens (0 = all; do_sample only)."""
    bertscore_model: str | None = "roberta-large"
    """BERTScore model (the library's English default); null = the run's own tiny base (not comparable)."""
    bertscore_rescale: bool = True
    """Rescale BERTScore with the library's baseline where one exists for the language and model."""
    bootstrap: int = 1000
    """Bootstrap resamples for the 95% intervals."""
    language: str = "en"
    """Language of the summaries: en stems with Porter; any other scores unstemmed."""
    report_examples: int = 5
    """Examples shown side by side in the report."""

    def __post_init__(self) -> None:
        if self.do_sample and self.temperature <= 0:
            raise ConfigError("eval.temperature: must be > 0 when eval.do_sample is true")


@dataclass
class PromptConfig:
    """Prompting without training (``dlhw prompt summarize``); unused by the training recipes."""

    shots: int = 0
    """Examples in the prompt: 0 (zero-shot), 1 (one-shot), 3 (few-shot), drawn from train."""
    model: str | None = None
    """The model prompted: Hub id, local folder or a dlhw run directory; null = model.name."""


@dataclass
class SummMethodConfig(MethodConfig):
    """Fine-tuning method: full (every weight, summarize-sft) or lora (summarize-lora)."""

    kind: typing.Literal["full", "lora", "prompt-tuning", "prefix-tuning", "p-tuning", "partial"] = "full"  # type: ignore[assignment]
    """Set by the recipe: full for summarize-sft, lora for summarize-lora."""


@dataclass
class SummarizationConfig(RunConfig):
    """A summarization run: summarize-sft, summarize-lora (and prompt runs of `dlhw prompt summarize`)."""

    data: SummDataConfig = field(default_factory=SummDataConfig)
    """Documents, summaries and lengths."""
    model: SummModelConfig = field(default_factory=SummModelConfig)
    """Base model."""
    method: SummMethodConfig = field(default_factory=SummMethodConfig)
    """Fine-tuning method."""
    eval: SummEvalConfig = field(default_factory=SummEvalConfig)
    """Generation and scoring."""
    prompting: PromptConfig = field(default_factory=PromptConfig)
    """Zero-/few-shot settings (prompt runs only)."""

    def auto_kbit(self) -> str:
        """The k-bit kind ``model.quantization=auto`` loads for LoRA on CUDA (``model.auto_quantization``
        resolved: TweetSumm LoRA is 8-bit, everything else 4-bit NF4)."""
        if self.model.auto_quantization != "dataset":
            return self.model.auto_quantization
        return "int8" if self.data.dataset == "tweetsumm" else "nf4"


def hub_assets(config: SummarizationConfig) -> list[HubAsset]:
    """The base model, the prompted model, the BERTScore model and, for ``data.source=hub``, the documents."""
    from dlhw.core.download import hub_dataset, hub_model

    data = config.data
    return (hub_model(config.model.name, "model.name") + hub_model(config.prompting.model, "prompting.model (dlhw prompt summarize)")
            + hub_model(config.eval.bertscore_model, "eval.bertscore_model")
            + (hub_dataset(data.hf_dataset, "data.hf_dataset", data.hf_config) if data.source == "hub" else []))
