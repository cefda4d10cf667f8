"""Image captioning models: an EfficientNet-B0 encoder and three decoders.

- :class:`ImageEncoder` -- torchvision EfficientNet-B0 ``features`` (classifier removed). The
  backbone is frozen unless ``finetune_encoder``; its output is what the feature cache stores.
  ``adapter`` is the final trainable layer that adapts the feature size (transformer only).
- :class:`LSTMDecoder` (caption-rnn) -- the pooled image vector sets the LSTM's initial state.
- :class:`AttentionDecoder` (caption-attention) -- Show, Attend and Tell soft attention over the
  spatial map, with the doubly stochastic penalty; returns alpha for every step.
- :class:`TransformerCaptionDecoder` (caption-transformer) -- nn.TransformerDecoder over the map;
  decoding steps with a key/value cache (:class:`TransformerCache`).

Every decoder has two faces: ``forward(features, input_ids)`` for teacher-forced training, and
``init_state`` / ``step`` / ``reorder_state`` for token-by-token decoding
(:mod:`dlhw.lm.decoding`), which the ONNX export of the decoder step reuses.

Shapes: B batch, T caption length, V vocabulary, C encoder channels, P = h*w spatial positions,
E embedding size, H hidden size, A attention size, D transformer width, nh attention heads,
hd = D / nh, t tokens decoded so far.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn
from torchvision import transforms
from torchvision.models import efficientnet

from dlhw.config import from_dict
from dlhw.core.atomic import write_json_atomic
from dlhw.core.weights import load_state
from dlhw.errors import DlhwError
from dlhw.families.caption.config import CaptionModelConfig
from dlhw.lm.decoding import Decoded, decode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class CaptionModelSpec:
    """Everything needed to rebuild a trained captioner: saved as ``model/config.json``."""

    model: CaptionModelConfig
    vocab_size: int
    max_length: int
    image_size: int
    pad_id: int = 0
    sos_id: int = 1
    eos_id: int = 2
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


# ------------------------------------------------------------------------------------------
# Encoder
# ------------------------------------------------------------------------------------------


def efficientnet_b0_features(pretrained: bool, width_mult: float = 1.0, depth_mult: float = 1.0) -> nn.Sequential:
    """EfficientNet-B0's convolutional trunk (no pooling, no classifier).

    ``pretrained`` loads the ImageNet weights (torchvision downloads them once into the torch hub
    cache); otherwise the same torchvision builder runs with the given multipliers and random init.
    """
    if pretrained:
        try:
            net = efficientnet.efficientnet_b0(weights=efficientnet.EfficientNet_B0_Weights.IMAGENET1K_V1)
        except Exception as err:  # noqa: BLE001 - URLError, SSL, hub cache errors
            raise DlhwError(
                f"could not get the ImageNet EfficientNet-B0 weights ({type(err).__name__}: {err}). "
                "Set model.encoder_weights=scenes or random, put the weights in the torch hub cache, or use "
                "--preset tiny"
            ) from None
        return net.features
    settings, last_channel = efficientnet._efficientnet_conf(
        "efficientnet_b0", width_mult=width_mult, depth_mult=depth_mult
    )
    return efficientnet.EfficientNet(settings, dropout=0.0, last_channel=last_channel).features


def feature_channels(backbone: nn.Sequential) -> int:
    return int(backbone[-1].out_channels)  # type: ignore[arg-type]  # the final 1x1 Conv2dNormActivation


class ImageEncoder(nn.Module):
    """EfficientNet trunk -> pooled vector (B, C) or spatial map (B, P, C) -> adapter."""

    def __init__(self, backbone: nn.Sequential, spatial: bool, adapter_dim: int | None, finetune: bool,
                 positions: int = 0):
        super().__init__()
        self.backbone = backbone
        self.spatial = spatial
        self.finetune = finetune
        self.channels = feature_channels(backbone)
        # CNN features say what is in a cell, hardly where the cell is: a learned embedding per
        # position lets attention pick "the object on the left" (spatial maps only).
        self.position = nn.Parameter(torch.zeros(positions, self.channels)) if spatial and positions else None
        # The one trainable encoder layer: adapts C to the decoder width (transformer only).
        self.adapter: nn.Module = nn.Linear(self.channels, adapter_dim) if adapter_dim else nn.Identity()
        self.out_dim = adapter_dim or self.channels
        if not finetune:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        if not self.finetune:
            self.backbone.eval()  # frozen BatchNorm keeps its running statistics
        return self

    @torch.no_grad()
    def calibrate_batchnorm(self, batches: Iterable[Tensor]) -> int:
        """Estimate the trunk's BatchNorm statistics from images; return how many were seen.

        A randomly initialised EfficientNet in eval mode (running mean 0, variance 1) shrinks its
        activations by ~10x per stage, to ~1e-13 at the output: frozen, it would say nothing
        about the image. With statistics measured on real inputs every stage stays normalised,
        and the frozen random trunk gives usable random features. Weights are not touched.
        """
        norms = [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over all calibration batches
        self.backbone.train()
        seen = 0
        for images in batches:
            self.backbone(images)
            seen += images.size(0)
        for m in norms:
            m.momentum = 0.1
        self.train(self.training)
        return seen

    def extract(self, images: Tensor) -> Tensor:
        """What the feature cache holds: the trunk's output, pooled or flattened."""
        fmap = self.backbone(images)  # (B, C, h, w)
        if self.spatial:
            return fmap.flatten(2).transpose(1, 2)  # (B, P, C)
        return fmap.mean(dim=(2, 3))  # (B, C)

    def forward(self, images: Tensor | None = None, features: Tensor | None = None) -> Tensor:
        if features is None:
            if images is None:
                raise ValueError("pass images or cached features")
            features = self.extract(images)  # (B, C) or (B, P, C)
        if self.position is not None:
            features = features + self.position  # (B, P, C)
        return self.adapter(features)  # (B, [P,] out_dim)


# ------------------------------------------------------------------------------------------
# Decoders
# ------------------------------------------------------------------------------------------


class LSTMDecoder(nn.Module):
    """caption-rnn: embed -> LSTM whose initial (h, c) come from the image vector -> vocabulary."""

    def __init__(self, vocab_size: int, feat_dim: int, cfg: CaptionModelConfig, pad_id: int):
        super().__init__()
        self.num_layers = cfg.num_layers
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
        self.init_h = nn.Linear(feat_dim, cfg.hidden_dim)  # image vector -> h0
        self.init_c = nn.Linear(feat_dim, cfg.hidden_dim)  # image vector -> c0
        self.lstm = nn.LSTM(
            cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.hidden_dim, vocab_size)  # hidden -> word logits

    def init_state(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        h0 = torch.tanh(self.init_h(feats))  # (B, H)
        c0 = torch.tanh(self.init_c(feats))  # (B, H)
        layers = self.num_layers
        return (
            h0.unsqueeze(0).repeat(layers, 1, 1).contiguous(),  # (L, B, H)
            c0.unsqueeze(0).repeat(layers, 1, 1).contiguous(),  # (L, B, H)
        )

    def forward(self, feats: Tensor, input_ids: Tensor) -> tuple[Tensor, None]:
        state = self.init_state(feats)  # 2 x (L, B, H)
        emb = self.dropout(self.embed(input_ids))  # (B, T, E)
        out, _ = self.lstm(emb, state)  # (B, T, H)
        return self.fc(self.dropout(out)), None  # (B, T, V)

    def step(self, tokens: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor], None]:
        emb = self.embed(tokens).unsqueeze(1)  # (B, 1, E)
        out, state = self.lstm(emb, state)  # (B, 1, H)
        return self.fc(out[:, 0]), state, None  # (B, V)

    @staticmethod
    def reorder_state(state: tuple[Tensor, Tensor], index: Tensor) -> tuple[Tensor, Tensor]:
        return state[0][:, index], state[1][:, index]  # batch is dim 1 of (L, B, H)


class SoftAttention(nn.Module):
    """Additive attention: e_i = w^T tanh(W_a a_i + W_h h), alpha = softmax(e), z = sum alpha_i a_i."""

    def __init__(self, feat_dim: int, hidden_dim: int, attention_dim: int):
        super().__init__()
        self.enc_proj = nn.Linear(feat_dim, attention_dim)  # W_a: annotation vectors
        self.dec_proj = nn.Linear(hidden_dim, attention_dim)  # W_h: previous hidden state
        self.score = nn.Linear(attention_dim, 1)  # w: one score per position

    def forward(self, annotations: Tensor, projected: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        # projected = enc_proj(annotations), computed once per image
        e = self.score(torch.tanh(projected + self.dec_proj(h).unsqueeze(1))).squeeze(2)  # (B, P)
        alpha = F.softmax(e, dim=1)  # (B, P)
        z = (alpha.unsqueeze(2) * annotations).sum(dim=1)  # (B, C)
        return z, alpha


class AttentionDecoder(nn.Module):
    """caption-attention: Show, Attend and Tell.

    LSTMCell input = [previous word embedding; gated context z_t]; the word is read off the
    paper's deep output layer L_o(E y_{t-1} + L_h h_t + L_z z_t), so the context the attention
    picked feeds the prediction directly.
    """

    def __init__(self, vocab_size: int, feat_dim: int, cfg: CaptionModelConfig, pad_id: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
        self.attention = SoftAttention(feat_dim, cfg.hidden_dim, cfg.attention_dim)
        self.init_h = nn.Linear(feat_dim, cfg.hidden_dim)  # mean annotation -> h0
        self.init_c = nn.Linear(feat_dim, cfg.hidden_dim)  # mean annotation -> c0
        self.gate = nn.Linear(cfg.hidden_dim, feat_dim)  # beta_t: how much context to let in
        self.cell = nn.LSTMCell(cfg.embed_dim + feat_dim, cfg.hidden_dim)
        self.out_h = nn.Linear(cfg.hidden_dim, cfg.embed_dim)  # L_h
        self.out_z = nn.Linear(feat_dim, cfg.embed_dim)  # L_z
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.embed_dim, vocab_size)  # L_o: deep output -> word logits

    def init_state(self, annotations: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        mean = annotations.mean(dim=1)  # (B, C)
        h = torch.tanh(self.init_h(mean))  # (B, H)
        c = torch.tanh(self.init_c(mean))  # (B, H)
        projected = self.attention.enc_proj(annotations)  # (B, P, A)
        return h, c, annotations, projected

    def step(self, tokens: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...], Tensor]:
        h, c, annotations, projected = state
        z, alpha = self.attention(annotations, projected, h)  # (B, C), (B, P)
        z = torch.sigmoid(self.gate(h)) * z  # (B, C)
        emb = self.embed(tokens)  # (B, E)
        h, c = self.cell(torch.cat([emb, z], dim=1), (h, c))  # (B, H) each
        deep = emb + self.out_h(h) + self.out_z(z)  # (B, E)
        return self.fc(self.dropout(deep)), (h, c, annotations, projected), alpha  # (B, V), ..., (B, P)

    def forward(self, annotations: Tensor, input_ids: Tensor) -> tuple[Tensor, Tensor]:
        state: tuple[Tensor, ...] = self.init_state(annotations)
        logits, alphas = [], []
        for t in range(input_ids.size(1)):
            step_logits, state, alpha = self.step(input_ids[:, t], state)  # (B, V), (B, P)
            logits.append(step_logits)
            alphas.append(alpha)
        return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)  # (B, T, V), (B, T, P)

    @staticmethod
    def reorder_state(state: tuple[Tensor, ...], index: Tensor) -> tuple[Tensor, ...]:
        return tuple(s[index] for s in state)


def _in_projection(attn: nn.MultiheadAttention, x: Tensor, first: int, stop: int) -> Tensor:
    """x (B, T, D) through parts ``first:stop`` of the packed query/key/value projection (0 q, 1 k, 2 v)."""
    D = attn.embed_dim
    bias = attn.in_proj_bias[first * D : stop * D] if attn.in_proj_bias is not None else None
    return F.linear(x, attn.in_proj_weight[first * D : stop * D], bias)  # (B, T, (stop - first) * D)


@dataclass
class TransformerCache:
    """What incremental Transformer decoding keeps between steps; dim 0 of every tensor is the batch."""

    cross: tuple[Tensor, ...]
    """Per layer, the cross-attention key and value of the image: 2 x layers of (B, nh, P, hd), computed once."""
    past: tuple[Tensor, ...]
    """Per layer, the self-attention key and value of the tokens fed so far: 2 x layers of (B, nh, t, hd)."""
    keep: Tensor
    """(B, t) bool, False where the token fed was <pad>: ``forward`` hides those keys too."""

    def select(self, index: Tensor) -> TransformerCache:
        """Rows picked / repeated by ``index`` (B',) (beam search)."""
        return TransformerCache(tuple(c[index] for c in self.cross), tuple(p[index] for p in self.past),
                                self.keep[index])


class TransformerCaptionDecoder(nn.Module):
    """caption-transformer: token + learned positional embeddings -> causal TransformerDecoder.

    Training runs ``forward`` (nn.TransformerDecoder over the whole caption). Decoding is
    incremental (``init_state`` / ``step`` / :meth:`incremental`): the image's cross-attention
    keys/values are projected once, and each step runs the new token only, against the cached
    self-attention keys/values of the earlier ones. nn.TransformerDecoderLayer hides its attention's
    keys and values, so :meth:`incremental` writes the same pre-norm layer out on the layer's own
    weights (inference arithmetic: dropout off); it gives ``forward``'s logits at every position.
    The ONNX decoder step traces it.
    """

    def __init__(self, vocab_size: int, cfg: CaptionModelConfig, max_length: int, pad_id: int):
        super().__init__()
        self.pad_id = pad_id
        self.scale = math.sqrt(cfg.embed_dim)
        self.heads = cfg.num_heads
        self.head_dim = cfg.embed_dim // cfg.num_heads
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
        self.pos = nn.Embedding(max_length, cfg.embed_dim)  # one vector per position
        layer = nn.TransformerDecoderLayer(
            cfg.embed_dim, cfg.num_heads, cfg.ff_dim, cfg.dropout, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.num_layers, norm=nn.LayerNorm(cfg.embed_dim))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.embed_dim, vocab_size)  # width -> word logits

    def forward(self, memory: Tensor, input_ids: Tensor) -> tuple[Tensor, None]:
        T = input_ids.size(1)
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.embed(input_ids) * self.scale + self.pos(positions)  # (B, T, D)
        causal = torch.ones(T, T, dtype=torch.bool, device=input_ids.device).triu(1)  # (T, T), True = hidden
        padding = input_ids.eq(self.pad_id)  # (B, T), True where padded
        out = self.decoder(
            self.dropout(x), memory, tgt_mask=causal, tgt_key_padding_mask=padding, tgt_is_causal=True
        )  # (B, T, D)
        return self.fc(out), None  # (B, T, V)

    # -- incremental decoding ----------------------------------------------------------------

    def layers(self) -> list[nn.TransformerDecoderLayer]:
        return list(self.decoder.layers)

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)  # (B, T, D) -> (B, nh, T, hd)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
        """Scaled dot-product attention of (B, nh, 1, hd) queries, heads merged back: (B, 1, D)."""
        scores = torch.matmul(q * self.head_dim**-0.5, k.transpose(-2, -1))  # (B, nh, 1, T)
        if bias is not None:
            scores = scores + bias  # (B, 1, 1, T): -inf on hidden keys
        return torch.matmul(scores.softmax(-1), v).transpose(1, 2).flatten(2)  # (B, 1, D)

    def cross_keys_values(self, memory: Tensor) -> tuple[Tensor, ...]:
        """Every layer's cross-attention key and value of ``memory`` (B, P, D): 2 x layers of (B, nh, P, hd)."""
        out: list[Tensor] = []
        for layer in self.layers():
            k, v = _in_projection(layer.multihead_attn, memory, 1, 3).chunk(2, dim=-1)  # (B, P, D) each
            out += [self._heads(k), self._heads(v)]  # (B, nh, P, hd) each
        return tuple(out)

    def incremental(self, tokens: Tensor, position: Tensor, cache: TransformerCache) -> tuple[Tensor, TransformerCache]:
        """The logits after ``tokens`` (B,) fed at ``position`` () = t, and the cache grown to t + 1."""
        keep = torch.cat([cache.keep, tokens.ne(self.pad_id)[:, None]], dim=1)  # (B, t+1)
        hidden = torch.zeros_like(keep, dtype=self.fc.weight.dtype).masked_fill(~keep, float("-inf"))  # (B, t+1)
        hidden = hidden[:, None, None, :]  # (B, 1, 1, t+1): added to every head's scores
        x = self.embed(tokens)[:, None] * self.scale + self.pos(position.view(1))  # (B, 1, D)
        past: list[Tensor] = []
        for i, layer in enumerate(self.layers()):
            attn = layer.self_attn
            q, k, v = _in_projection(attn, layer.norm1(x), 0, 3).chunk(3, dim=-1)  # (B, 1, D) each
            k = torch.cat([cache.past[2 * i], self._heads(k)], dim=2)  # (B, nh, t+1, hd)
            v = torch.cat([cache.past[2 * i + 1], self._heads(v)], dim=2)  # (B, nh, t+1, hd)
            past += [k, v]
            x = x + attn.out_proj(self._attend(self._heads(q), k, v, hidden))  # (B, 1, D)
            cross = layer.multihead_attn
            q = _in_projection(cross, layer.norm2(x), 0, 1)  # (B, 1, D)
            x = x + cross.out_proj(self._attend(self._heads(q), cache.cross[2 * i], cache.cross[2 * i + 1], None))
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))  # (B, 1, D)
        if self.decoder.norm is not None:
            x = self.decoder.norm(x)  # (B, 1, D)
        return self.fc(x[:, 0]), TransformerCache(cache.cross, tuple(past), keep)  # (B, V)

    def init_state(self, memory: Tensor) -> TransformerCache:
        B = memory.size(0)
        empty = memory.new_zeros((B, self.heads, 0, self.head_dim))  # (B, nh, 0, hd)
        keep = torch.ones((B, 0), dtype=torch.bool, device=memory.device)  # (B, 0)
        return TransformerCache(self.cross_keys_values(memory), (empty,) * (2 * len(self.decoder.layers)), keep)

    def step(self, tokens: Tensor, state: TransformerCache) -> tuple[Tensor, TransformerCache, None]:
        position = torch.tensor(state.keep.size(1), device=tokens.device)  # () = t, the tokens fed before
        logits, state = self.incremental(tokens, position, state)  # (B, V)
        return logits, state, None

    @staticmethod
    def reorder_state(state: TransformerCache, index: Tensor) -> TransformerCache:
        return state.select(index)


# ------------------------------------------------------------------------------------------
# The captioner
# ------------------------------------------------------------------------------------------


class CaptionModel(nn.Module):
    """Encoder + decoder with a Trainer-friendly forward returning ``{"loss", "logits"}``."""

    def __init__(self, spec: CaptionModelSpec, backbone: nn.Sequential | None = None):
        super().__init__()
        cfg = spec.model
        self.spec = spec
        if backbone is None:
            backbone = efficientnet_b0_features(
                cfg.encoder_weights == "imagenet", cfg.encoder_width_mult, cfg.encoder_depth_mult
            )
        self.encoder = ImageEncoder(
            backbone,
            spatial=cfg.arch != "rnn",
            adapter_dim=cfg.embed_dim if cfg.arch == "transformer" else None,
            finetune=cfg.finetune_encoder,
            positions=math.ceil(spec.image_size / 32) ** 2,  # EfficientNet downsamples by 32
        )
        feat_dim = self.encoder.out_dim
        if cfg.arch == "rnn":
            self.decoder: nn.Module = LSTMDecoder(spec.vocab_size, feat_dim, cfg, spec.pad_id)
        elif cfg.arch == "attention":
            self.decoder = AttentionDecoder(spec.vocab_size, feat_dim, cfg, spec.pad_id)
        else:
            self.decoder = TransformerCaptionDecoder(spec.vocab_size, cfg, spec.max_length, spec.pad_id)

    def forward(
        self,
        input_ids: Tensor,
        labels: Tensor | None = None,
        pixel_values: Tensor | None = None,
        features: Tensor | None = None,
    ) -> dict[str, Tensor]:
        memory = self.encoder(pixel_values, features)  # (B, [P,] F)
        logits, alphas = self.decoder(memory, input_ids)  # (B, T, V), (B, T, P) | None
        out = {"logits": logits}
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
            if alphas is not None and self.spec.model.attention_reg > 0:
                mask = labels.ne(-100).unsqueeze(2).to(alphas.dtype)  # (B, T, 1)
                coverage = (alphas * mask).sum(dim=1)  # (B, P): attention each position received
                loss = loss + self.spec.model.attention_reg * ((1.0 - coverage) ** 2).sum(1).mean()
            out["loss"] = loss
        return out

    @torch.no_grad()
    def generate(
        self,
        pixel_values: Tensor | None = None,
        features: Tensor | None = None,
        beam_size: int = 1,
        length_penalty: float = 0.7,
    ) -> Decoded:
        """Caption a batch: greedy (with attention maps for caption-attention) or beam search."""
        memory = self.encoder(pixel_values, features)  # (B, [P,] F)
        spec = self.spec
        stepper: Any = self.decoder  # each decoder is a Stepper (init_state / step / reorder_state)
        return decode(
            stepper, memory, memory.size(0), spec.sos_id, spec.eos_id, spec.pad_id,
            max_new=spec.max_length - 1, beam_size=beam_size, length_penalty=length_penalty,
            device=memory.device,
        )

    def num_parameters(self, trainable_only: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameter count; ``exclude_embeddings`` (HF Trainer's FLOP estimate asks so) leaves out the
        word and position embeddings."""
        skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)} if exclude_embeddings else set()
        return sum(p.numel() for p in self.parameters()
                   if (p.requires_grad or not trainable_only) and id(p) not in skip)


def image_transform(spec: CaptionModelSpec) -> transforms.Compose:
    """PIL image -> normalised (3, S, S) tensor, as the encoder expects."""
    return transforms.Compose([
        transforms.Resize((spec.image_size, spec.image_size)),
        transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std),
    ])


def save_caption_model(model: CaptionModel, directory: str | Path) -> None:
    """``model.safetensors`` + ``config.json`` (the spec), loadable with :func:`load_caption_model`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    write_json_atomic(Path(directory) / "config.json", asdict(model.spec))


def load_spec(directory: str | Path) -> CaptionModelSpec:
    return spec_from_dict(json.loads((Path(directory) / "config.json").read_text(encoding="utf-8")))


def spec_from_dict(raw: dict[str, Any]) -> CaptionModelSpec:
    raw = dict(raw)
    raw["model"] = from_dict(CaptionModelConfig, raw["model"])
    raw["mean"], raw["std"] = tuple(raw["mean"]), tuple(raw["std"])
    return CaptionModelSpec(**raw)


def load_caption_model(directory: str | Path, device: str | torch.device = "cpu") -> CaptionModel:
    """Rebuild from ``config.json`` with random init (no download), then load the saved weights."""
    spec = load_spec(directory)
    cfg = spec.model
    backbone = efficientnet_b0_features(False, cfg.encoder_width_mult, cfg.encoder_depth_mult)
    model = CaptionModel(spec, backbone=backbone)
    load_state(model, Path(directory) / "model.safetensors")
    return model.to(device).eval()


def load_run_model(run_dir: str | Path) -> tuple[CaptionModel, str]:
    """A caption run's model as trained (the backbone frozen unless it was fine-tuned), and a label."""
    model = load_caption_model(Path(run_dir) / "model")
    model.requires_grad_(True)
    if not model.spec.model.finetune_encoder:
        model.encoder.backbone.requires_grad_(False)
    return model, f"{run_dir} (caption, {model.spec.model.arch} decoder)"
