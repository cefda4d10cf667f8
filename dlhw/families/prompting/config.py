"""Config schema of the prompting family (BIG-Bench Hard sports_understanding; nothing is trained).

A prompt run loads a pretrained model (FLAN-T5 by default; any seq2seq id or causal LM with a
chat template), builds the prompts of each strategy and scores the answers. The tiny preset
replaces the model by a tiny T5 pretrained once on the embedded sports-plausibility task and the
data by that task's held-out statements.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.config.base import RunConfig
from dlhw.core.family import HubAsset
from dlhw.errors import ConfigError

STRATEGIES = ("answer-only", "few-shot", "cot", "cot-few-shot", "cot-sc")
"""Every prompting strategy, in the order runs and reports list them."""


@dataclass
class BbhDataConfig:
    """Where the test items, the CoT exemplars and the few-shot pool come from."""

    source: typing.Literal["hub", "local", "embedded"] = "hub"
    """hub = hf_dataset (+ pool_dataset); local = the official BBH files under data.path; embedded =
    the built-in sports-plausibility task (tiny preset)."""
    hf_dataset: str = "lukaemon/bbh"
    """Hub copy of BIG-Bench Hard for source=hub."""
    hf_config: str = "sports_understanding"
    """Config (task) of hf_dataset."""
    hf_split: str = "test"
    """Split of hf_dataset holding the 250 test items."""
    pool_dataset: str = "tasksource/bigbench"
    """BIG-bench copy whose train/validation splits are the few-shot pool (test items removed)."""
    pool_config: str = "sports_understanding"
    """Config (task) of pool_dataset."""
    pool_splits: list[str] = field(default_factory=lambda: ["train", "validation"])
    """Splits of pool_dataset pooled for shots."""
    path: str | None = None
    """source=local: a folder holding bbh/sports_understanding.json and cot-prompts/sports_understanding.txt
    (the layout of the BIG-Bench Hard repository), optionally pool.json ({"examples": [...]})."""
    max_items: int | None = None
    """Score at most this many test items (null = all)."""
    embedded_test: int = 250
    """source=embedded: held-out statements scored (balanced yes/no)."""

    def __post_init__(self) -> None:
        if self.source == "local" and not self.path:
            raise ConfigError("data.path: required when data.source is local (the BBH repository folder)")
        if self.max_items is not None and self.max_items < 1:
            raise ConfigError("data.max_items: must be >= 1 or null")


@dataclass
class TinyT5Config:
    """The tiny T5 built from a config and pretrained once on the embedded task (model.name null)."""

    d_model: int = 96
    """Width of the residual stream."""
    num_layers: int = 2
    """Encoder layers (and decoder layers)."""
    num_heads: int = 4
    """Attention heads per layer."""
    d_kv: int = 24
    """Size of each head's keys and values."""
    d_ff: int = 192
    """Hidden size of each feed-forward block."""
    pretrain_steps: int = 400
    """Optimizer steps of pretraining on the embedded task's formats, done once and cached."""
    batch_size: int = 32
    """Pretraining examples per step."""
    learning_rate: float = 3e-3
    """Peak AdamW learning rate of the pretraining."""


@dataclass
class PromptModelConfig:
    """The model prompted."""

    name: str | None = "google/flan-t5-large"
    """Hugging Face id or local folder: any seq2seq LM (flan-t5-small/base/large/xl) or a causal LM
    with a chat template; null = the tiny T5 below."""
    tiny: TinyT5Config = field(default_factory=TinyT5Config)
    """Sizes of the tiny T5."""
    dtype: typing.Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype: auto = bfloat16 on a CUDA GPU that supports it, float32 elsewhere."""


@dataclass
class PromptingConfig:
    """Which strategies run and how answers are generated."""

    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    """Strategies to run: answer-only, few-shot, cot, cot-few-shot, cot-sc."""
    shots: int = 3
    """Exemplars of the few-shot strategy, drawn once with the run's seed from the pool."""
    samples: int = 10
    """Self-consistency: sampled chains per item."""
    temperature: float = 0.7
    """Self-consistency sampling temperature."""
    top_p: float = 0.95
    """Self-consistency nucleus sampling threshold."""
    answer_tokens: int = 8
    """New-token limit of answer-only and few-shot generations."""
    cot_tokens: int = 128
    """New-token limit of chain-of-thought generations."""
    batch_size: int = 16
    """Prompts per generation batch (prompts are sorted by length first)."""
    scoring: typing.Literal["generate", "rank"] = "generate"
    """Answer-only and few-shot: generate = free generation then extraction; rank = the label whose
    tokens the model scores more likely."""
    backend: typing.Literal["torch", "onnxruntime", "tensorrt"] = "torch"
    """Where the model runs; onnxruntime uses RUN/export/onnx (`dlhw export RUN --onnx`)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ConfigError(f"prompting.strategies: {unknown or '[]'} unknown or empty; choose from "
                              f"{', '.join(STRATEGIES)}")
        if self.shots < 1 or self.samples < 1:
            raise ConfigError("prompting.shots / prompting.samples: must be >= 1")
        if not 0 < self.top_p <= 1 or self.temperature <= 0:
            raise ConfigError("prompting.top_p must be in (0, 1] and prompting.temperature > 0")


@dataclass
class PromptConfig(RunConfig):
    """A prompt run: bbh-sports (strategies on BBH sports_understanding, no training)."""

    data: BbhDataConfig = field(default_factory=BbhDataConfig)
    """Test items, exemplars and the few-shot pool."""
    model: PromptModelConfig = field(default_factory=PromptModelConfig)
    """The prompted model."""
    prompting: PromptingConfig = field(default_factory=PromptingConfig)
    """Strategies and generation."""


def hub_assets(config: PromptConfig) -> list[HubAsset]:
    """The prompted model and, for ``data.source=hub``, BBH's task and BIG-bench's few-shot pool."""
    from dlhw.core.download import hub_dataset, hub_model

    data = config.data
    sets = (hub_dataset(data.hf_dataset, "data.hf_dataset", data.hf_config)
            + hub_dataset(data.pool_dataset, "data.pool_dataset", data.pool_config) if data.source == "hub" else [])
    return hub_model(config.model.name, "model.name") + sets
