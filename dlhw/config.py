"""Configuration: dataclass schemas, YAML loading, ``--set key=value`` overrides, validation.

Every recipe has one YAML file in ``configs/`` holding its full preset at the top level and
its other presets (``tiny``) as partial overlays under ``presets:``. Resolving a config means:
load the recipe file -> overlay the preset -> overlay ``--set`` overrides -> build the family's
dataclass, which rejects unknown keys and wrong types with the dotted path of the offending key.

Field help comes from the attribute docstrings written under each field (litgpt style), read
with :func:`field_docs`; ``dlhw config show --explain`` prints them.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from dlhw.errors import ConfigError

__all__ = ["ConfigError"]


# --------------------------------------------------------------------------------------------
# Generic machinery
# --------------------------------------------------------------------------------------------


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Return ``{field: docstring}`` for the attribute docstrings written under dataclass fields."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, path)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from a plain mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(
            f"{where}: unknown key; {cls.__name__} accepts: {', '.join(sorted(names))}"
        )
    kwargs = {
        key: _coerce(value, hints[key], f"{path}.{key}" if path else key)
        for key, value in data.items()
    }
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if path and not str(err).startswith(path):
            raise ConfigError(f"{path}.{err}") from None
        raise


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-mapping form of a config dataclass (for YAML)."""
    return dataclasses.asdict(obj)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in recursively (mappings merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> dict[str, Any]:
    """Turn ``"train.epochs=3"`` into ``{"train": {"epochs": 3}}`` (values parsed as YAML)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    for part in reversed(key.split(".")):
        value = {part: value}
    return value  # type: ignore[return-value]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; syntax errors name the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(err, 'problem', err)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def explain(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """Rows ``(dotted key, type, help)`` for every field of ``cls``, nested dataclasses expanded."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(explain(tp, key + "."))
        else:
            rows.append((key, _type_name(tp), docs.get(f.name, "")))
    return rows


# --------------------------------------------------------------------------------------------
# Shared sections
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """How the HF Trainer runs; shared by every family."""

    epochs: float = 10.0
    """Number of passes over the training set (fractions allowed)."""
    max_steps: int = -1
    """Stop after this many optimizer steps; -1 means run ``epochs`` in full."""
    batch_size: int = 32
    """Samples per device per optimizer micro-step."""
    eval_batch_size: int = 64
    """Samples per device in evaluation and generation."""
    gradient_accumulation_steps: int = 1
    """Micro-steps accumulated into one optimizer step."""
    learning_rate: float = 3e-4
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.0
    """Fraction of the steps spent warming the learning rate up."""
    lr_scheduler: str = "linear"
    """HF scheduler name: linear, cosine, constant, constant_with_warmup, ..."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    precision: typing.Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision: auto = bf16 on a CUDA GPU that supports it, fp32 elsewhere."""
    eval_strategy: typing.Literal["epoch", "steps"] = "epoch"
    """When to compute the validation loss (and save a checkpoint)."""
    eval_steps: int = 500
    """Steps between evaluations and checkpoints when eval_strategy is steps."""
    logging_steps: int = 10
    """Steps between training-loss records in metrics.jsonl."""
    save_total_limit: int = 2
    """Checkpoints kept in checkpoints/ (the best one is always kept)."""
    early_stopping_patience: int = 3
    """Evaluations without a better validation loss before training stops; 0 disables."""
    num_workers: int = 2
    """DataLoader worker processes (image decoding happens there)."""
    group_by_length: bool = False
    """Batch examples of similar length together (less padding; text families)."""
    eval_on_start: bool = False
    """Compute the validation loss once before the first step (the "start" of the loss curve)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""

    def __post_init__(self) -> None:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("train.epochs: must be > 0 unless train.max_steps is set")
        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "eval_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: must be >= 1, got {getattr(self, name)}")
        if self.logging_steps < 1:
            raise ConfigError(f"train.logging_steps: must be >= 1, got {self.logging_steps}")


# --------------------------------------------------------------------------------------------
# Captioning family
# --------------------------------------------------------------------------------------------


@dataclass
class CaptionDataConfig:
    """Where the images and captions come from and how captions become token ids."""

    source: typing.Literal["synthetic", "flickr8k"] = "flickr8k"
    """synthetic = the embedded generated scenes; flickr8k = Flickr8k (local dir or hub id)."""
    data_dir: str | None = None
    """Local Flickr8k directory, Kaggle layout (Images/ + captions.txt) or original layout
    (Flicker8k_Dataset/ + Flickr8k.token.txt). Takes precedence over hf_dataset."""
    hf_dataset: str | None = "jxie/flickr8k"
    """Hugging Face dataset id used when data_dir is not set (columns image, caption_0..4)."""
    num_scenes: int = 1500
    """How many synthetic scenes to generate (synthetic source only)."""
    image_size: int = 224
    """Square side the images are resized to before the encoder."""
    min_freq: int = 5
    """Words seen fewer times in training captions become <unk>."""
    max_length: int | None = None
    """Caption length in tokens including <sos> and <eos>; null = from length_percentile."""
    length_percentile: float = 95.0
    """When max_length is null: the percentile of training-caption lengths that fits without
    truncation (plus 2 for <sos> and <eos>)."""
    val_fraction: float = 0.1
    """Share of images held out for validation (when no official split files exist)."""
    test_fraction: float = 0.1
    """Share of images held out for test (when no official split files exist)."""
    cache_features: bool = True
    """With a frozen encoder, compute image features once and reuse them every epoch."""

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ConfigError("data.val_fraction/test_fraction: must lie strictly between 0 and 1")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError("data.val_fraction + data.test_fraction: must leave images to train on")
        if not 0 < self.length_percentile <= 100:
            raise ConfigError("data.length_percentile: must lie in (0, 100]")
        if self.max_length is not None and self.max_length < 3:
            raise ConfigError("data.max_length: must be >= 3 (<sos>, one word, <eos>)")
        if self.min_freq < 1:
            raise ConfigError("data.min_freq: must be >= 1")
        if self.image_size < 32:
            raise ConfigError("data.image_size: must be >= 32")


@dataclass
class CaptionModelConfig:
    """The EfficientNet-B0 encoder and the decoder; ``arch`` picks the decoder."""

    arch: typing.Literal["rnn", "attention", "transformer"] = "transformer"
    """rnn = LSTM from the pooled vector; attention = soft-attention LSTM over the spatial map;
    transformer = nn.TransformerDecoder over the spatial map."""
    encoder_weights: typing.Literal["imagenet", "scenes", "random"] = "imagenet"
    """imagenet = torchvision's ImageNet EfficientNet-B0 weights (downloaded once); scenes = the
    offline stand-in, pretrained once on embedded scenes and cached; random = random init (a
    frozen random trunk gets BatchNorm statistics estimated on training images)."""
    encoder_width_mult: float = 1.0
    """EfficientNet channel multiplier (1.0 = B0; smaller builds the tiny encoder)."""
    encoder_depth_mult: float = 1.0
    """EfficientNet depth multiplier (1.0 = B0)."""
    finetune_encoder: bool = False
    """Train the EfficientNet backbone as well; otherwise it is frozen and its features cached."""
    embed_dim: int = 256
    """Word embedding size (the model width d_model for the transformer)."""
    hidden_dim: int = 512
    """LSTM hidden size (rnn, attention)."""
    attention_dim: int = 256
    """Size of the additive-attention projection (attention)."""
    num_layers: int = 1
    """LSTM layers (rnn) or decoder layers (transformer)."""
    num_heads: int = 8
    """Attention heads (transformer)."""
    ff_dim: int = 1024
    """Feed-forward size of each decoder layer (transformer)."""
    dropout: float = 0.3
    """Dropout before the output layer and inside the decoder."""
    attention_reg: float = 1.0
    """Weight of the doubly stochastic attention penalty sum_i (1 - sum_t alpha_ti)^2 (attention)."""

    def __post_init__(self) -> None:
        if self.arch == "transformer" and self.embed_dim % self.num_heads:
            raise ConfigError(
                f"model.num_heads: embed_dim {self.embed_dim} must be divisible by num_heads "
                f"{self.num_heads}"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError("model.dropout: must lie in [0, 1)")
        if self.encoder_width_mult <= 0 or self.encoder_depth_mult <= 0:
            raise ConfigError("model.encoder_width_mult/encoder_depth_mult: must be > 0")
        if self.encoder_weights == "imagenet" and (self.encoder_width_mult, self.encoder_depth_mult) != (1.0, 1.0):
            raise ConfigError(
                "model.encoder_weights: ImageNet weights exist for EfficientNet-B0 only; set "
                "encoder_width_mult and encoder_depth_mult to 1.0, or encoder_weights to scenes or random"
            )


@dataclass
class CaptionEvalConfig:
    """Defaults of ``dlhw evaluate`` (its flags override them)."""

    split: typing.Literal["train", "val", "test"] = "test"
    """Which split to score."""
    beam_size: int = 1
    """1 = greedy decoding; > 1 = beam search."""
    length_penalty: float = 0.7
    """Beam search ranks hypotheses by log-prob / length ** length_penalty."""

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError("eval.beam_size: must be >= 1")


@dataclass
class CaptionConfig:
    """A captioning run: caption-rnn, caption-attention or caption-transformer."""

    recipe: str = "caption-transformer"
    """The recipe this config belongs to."""
    preset: str = "full"
    """The preset it was resolved from."""
    seed: int = 42
    """Seeds model init, data generation and splits, and the Trainer."""
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    """Images, captions and preprocessing."""
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    """Encoder and decoder."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop."""
    eval: CaptionEvalConfig = field(default_factory=CaptionEvalConfig)
    """Evaluation defaults."""
