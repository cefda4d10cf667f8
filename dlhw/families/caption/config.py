"""Config schema of the captioning family (caption-rnn, caption-attention, caption-transformer)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.config.base import RunConfig
from dlhw.core.family import HubAsset
from dlhw.errors import ConfigError


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
class CaptionConfig(RunConfig):
    """A captioning run: caption-rnn, caption-attention or caption-transformer."""

    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    """Images, captions and preprocessing."""
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    """Encoder and decoder."""
    eval: CaptionEvalConfig = field(default_factory=CaptionEvalConfig)
    """Evaluation defaults."""


def hub_assets(config: CaptionConfig) -> list[HubAsset]:
    """Flickr8k from the Hub (``data.source=flickr8k`` without ``data.data_dir``) and torchvision's ImageNet
    EfficientNet-B0 weights (``model.encoder_weights=imagenet``)."""
    from dlhw.core.download import hub_dataset

    data = config.data
    assets = (hub_dataset(data.hf_dataset, "data.hf_dataset")
              if data.source == "flickr8k" and not data.data_dir else [])
    if config.model.encoder_weights == "imagenet":
        from torchvision.models import EfficientNet_B0_Weights

        assets.append(HubAsset("url", EfficientNet_B0_Weights.IMAGENET1K_V1.url, "model.encoder_weights"))
    return assets
