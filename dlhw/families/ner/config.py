"""Config schema of the NER family (recipe ``ner``: an XLM-R backbone with dlhw's own head)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.config.base import RunConfig
from dlhw.core.family import HubAsset
from dlhw.errors import ConfigError

NER_FORMATS = ("conll", "peyma", "arman", "tsv")

LONG_LINE_CHARS = 50_000
"""Default of ``dlhw ner --long-line``: a line whose words, joined by single spaces, are longer than
this is tagged on its own, one batch of windows at a time, instead of batched with other lines."""


@dataclass
class NerDataConfig:
    """Which sentences, in which native format, and how their labels become one IOB2 set."""

    source: typing.Literal["embedded", "hub", "local"] = "hub"
    """embedded = the built-in bilingual task; hub = conll_dataset + mixed_dataset; local = data_dir."""
    conll_dataset: str | None = "eriktks/conll2003"
    """Hub id of a parquet copy of CoNLL-2003 (the original `conll2003` script no longer loads
    with datasets >= 4); null = English is left out."""
    mixed_dataset: str | None = "AliFartout/PEYMA-ARMAN-Mixed"
    """Hub id of the Persian PEYMA + ARMAN mix (labels such as B_LOC; O is not id 0); null = Persian
    is left out."""
    data_dir: str | None = None
    """source=local: a folder of native files, or split subfolders / files named train, validation
    (or dev, valid), test. Each file's format comes from ``formats`` or is guessed from its lines."""
    formats: dict[str, str] = field(default_factory=dict)
    """Format per file-name glob in data_dir (``{"*.conll": "conll", "peyma*": "peyma"}``): conll
    (token POS chunk NER, IOB1), peyma (token|tag), arman (token tag), tsv (token<TAB>tag)."""
    label_map: dict[str, str] = field(default_factory=dict)
    """Extra entity-type renames on top of the built-in ones (``{"pers": "PER", "event": "EVE"}``);
    a type mapped to O is dropped."""
    drop_test_overlap: bool = True
    """Remove test sentences that also occur in train (the Persian mix repeats sentences across
    its splits)."""
    dedupe_train: bool = False
    """Keep one copy of each exact duplicate sentence within train."""
    max_train: int | None = None
    """Use at most this many training sentences (null = all)."""
    val_fraction: float = 0.1
    """Share of train held out for validation where a source has no validation split."""
    embedded_train: int = 1600
    """source=embedded: training sentences (half English, half Persian)."""
    embedded_val: int = 120
    """source=embedded: validation sentences."""
    embedded_test: int = 300
    """source=embedded: test sentences, whose entity names never occur in train."""

    def __post_init__(self) -> None:
        if self.source == "local" and not self.data_dir:
            raise ConfigError("data.data_dir: required when data.source is local (or pass --data-dir DIR)")
        if self.source == "hub" and not (self.conll_dataset or self.mixed_dataset):
            raise ConfigError("data.conll_dataset / data.mixed_dataset: at least one is needed for source=hub")
        bad = sorted(set(self.formats.values()) - set(NER_FORMATS))
        if bad:
            raise ConfigError(f"data.formats: unknown format {bad[0]!r}; use one of {', '.join(NER_FORMATS)}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError("data.val_fraction: must lie strictly between 0 and 1")


@dataclass
class TinyNerModelConfig:
    """The tiny XLM-R-shaped backbone built from a config (used when model.name is null)."""

    vocab_size: int = 500
    """SentencePiece-style unigram vocabulary trained on the embedded text."""
    hidden_size: int = 64
    """Width of the residual stream."""
    num_layers: int = 3
    """Transformer encoder layers."""
    num_heads: int = 4
    """Attention heads per layer (hidden_size must divide by it)."""
    intermediate_size: int = 128
    """Hidden size of each layer's MLP."""

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ConfigError("model.tiny.hidden_size: must be a multiple of model.tiny.num_heads")


@dataclass
class NerModelConfig:
    """The backbone, dlhw's token-classification head and how word labels meet sub-tokens."""

    name: str | None = "FacebookAI/xlm-roberta-base"
    """Hugging Face id or local folder of the backbone (loaded with AutoModel); null = the tiny one."""
    tiny: TinyNerModelConfig = field(default_factory=TinyNerModelConfig)
    """Sizes of the tiny backbone."""
    dropout: float = 0.1
    """Dropout before the head's linear layer."""
    max_length: int = 256
    """Sub-tokens per window, special tokens included; longer sentences are truncated in training
    and windowed with ``stride`` at prediction time."""
    stride: int = 32
    """Sub-tokens of overlap between prediction windows of a long sentence."""
    label_all_subtokens: bool = False
    """Label every sub-token of a word (B- becomes I- after the first) instead of the first only."""
    gradient_checkpointing: bool = False
    """Recompute the backbone's activations in the backward pass (less memory, slower)."""

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ConfigError("model.max_length: must be >= 8")
        if not 0 <= self.stride < self.max_length // 2:
            raise ConfigError("model.stride: must be >= 0 and below half of model.max_length")
        if not 0 <= self.dropout < 1:
            raise ConfigError("model.dropout: must lie in [0, 1)")


@dataclass
class NerEvalConfig:
    """Scoring after training (and for `dlhw evaluate`)."""

    batch_size: int = 32
    """Sentences per prediction batch."""
    untrained_baseline: bool = True
    """Score the freshly initialized model on test before training (``base_eval.json``)."""


@dataclass
class NerConfig(RunConfig):
    """A named-entity recognition run (recipe ``ner``)."""

    data: NerDataConfig = field(default_factory=NerDataConfig)
    """Sentences and labels."""
    model: NerModelConfig = field(default_factory=NerModelConfig)
    """Backbone and head."""
    eval: NerEvalConfig = field(default_factory=NerEvalConfig)
    """Evaluation."""


def hub_assets(config: NerConfig) -> list[HubAsset]:
    """The backbone and, for ``data.source=hub``, the CoNLL-2003 copy and the Persian mix."""
    from dlhw.core.download import hub_dataset, hub_model

    data = config.data
    sets = (hub_dataset(data.conll_dataset, "data.conll_dataset") + hub_dataset(data.mixed_dataset, "data.mixed_dataset")
            if data.source == "hub" else [])
    return hub_model(config.model.name, "model.name") + sets
