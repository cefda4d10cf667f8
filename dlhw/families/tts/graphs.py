"""SpeechT5 synthesis as three graphs: text encoder, one decoder step with past key/values, postnet + vocoder.

Every backend runs these same three modules: the torch backend calls them directly, the ONNX
export traces them (:mod:`dlhw.families.tts.export`), so torch and ONNX Runtime do the same arithmetic.

The decoder step reproduces ``SpeechT5ForTextToSpeech``'s autoregressive step with explicit
tensors (no ``Cache`` objects) so it exports cleanly and batches: the speech prenet on the last
frame, its position's scaled positional encoding, the speaker projection, the decoder layers
(self-attention over the past keys/values, cross-attention to the padded encoder output under its
mask), then the frame projection (``reduction_factor`` frames) and the stop probability.

SpeechT5 keeps its prenet dropout on at inference (Tacotron's trick for varied, robust decoding);
here the dropout masks are an *input* of the step, drawn by the caller from a seeded generator,
so synthesis is reproducible and every backend sees the same masks. A mask row is drawn as
SpeechT5 draws it (``bernoulli(p)``, kept where 1, scaled by ``1 / (1 - p)``) and shared by the batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class TextEncoder(nn.Module):
    def __init__(self, model: Any):
        super().__init__()
        self.encoder = model.speecht5.encoder

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.encoder(input_values=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, S, H)


def _attend(attn: Any, query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None) -> Tensor:
    """SpeechT5Attention's arithmetic on (B, heads, T, hd) projections."""
    weights = torch.matmul(query, key.transpose(-1, -2))  # (B, nh, Tq, Tk)
    if bias is not None:
        weights = weights + bias  # (B, 1, 1, Tk) additive mask
    probs = torch.softmax(weights, dim=-1)
    out = torch.matmul(probs, value)  # (B, nh, Tq, hd)
    b, nh, tq, hd = out.shape
    return attn.out_proj(out.transpose(1, 2).reshape(b, tq, nh * hd))  # (B, Tq, H)


def _heads(x: Tensor, nh: int) -> Tensor:
    b, t, h = x.shape
    return x.view(b, t, nh, h // nh).transpose(1, 2)  # (B, nh, T, hd)


class DecoderStep(nn.Module):
    """One autoregressive step: ``(frame, position, prenet_masks, speaker, memory, memory_mask, *past)``
    -> ``(spectrum (B, r, M), stop_prob (B, r), *present)``."""

    def __init__(self, model: Any):
        super().__init__()
        config = model.config
        self.prenet = model.speecht5.decoder.prenet
        self.layers = model.speecht5.decoder.wrapped_decoder.layers
        self.postnet = model.speech_decoder_postnet
        self.reduction = config.reduction_factor
        self.mels = config.num_mel_bins
        self.heads = config.decoder_attention_heads
        self.scale = 1.0 / (1.0 - config.speech_decoder_prenet_dropout)

    def forward(self, frame: Tensor, position: Tensor, prenet_masks: Tensor, speaker: Tensor, memory: Tensor,
                memory_mask: Tensor, *past: Tensor) -> tuple[Tensor, ...]:
        x = frame[:, None, :]  # (B, 1, M)
        for i, layer in enumerate(self.prenet.layers):
            x = torch.relu(layer(x)) * prenet_masks[i] * self.scale  # (B, 1, U): SpeechT5's inference dropout
        x = self.prenet.final_layer(x)  # (B, 1, H)
        enc = self.prenet.encode_positions
        x = x + enc.alpha * enc.pe[0].index_select(0, position.reshape(1))[None]  # (B, 1, H)
        spk = nn.functional.normalize(speaker)[:, None, :]  # (B, 1, 512)
        x = torch.relu(self.prenet.speaker_embeds_layer(torch.cat([x, spk], dim=-1)))  # (B, 1, H)
        bias = (1.0 - memory_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min  # (B, 1, 1, S)
        present: list[Tensor] = []
        for i, layer in enumerate(self.layers):
            sa = layer.self_attn
            q = _heads(sa.q_proj(x) * sa.scaling, self.heads)  # (B, nh, 1, hd)
            k = torch.cat([past[2 * i], _heads(sa.k_proj(x), self.heads)], dim=2)  # (B, nh, t+1, hd)
            v = torch.cat([past[2 * i + 1], _heads(sa.v_proj(x), self.heads)], dim=2)
            present += [k, v]
            x = layer.self_attn_layer_norm(x + _attend(sa, q, k, v, None))  # (B, 1, H)
            ca = layer.encoder_attn
            q = _heads(ca.q_proj(x) * ca.scaling, self.heads)
            ck, cv = _heads(ca.k_proj(memory), self.heads), _heads(ca.v_proj(memory), self.heads)  # (B, nh, S, hd)
            x = layer.encoder_attn_layer_norm(x + _attend(ca, q, ck, cv, bias))
            x = layer.final_layer_norm(x + layer.feed_forward(x))
        h = x[:, 0]  # (B, H)
        spectrum = self.postnet.feat_out(h).view(h.shape[0], self.reduction, self.mels)  # (B, r, M)
        stop = torch.sigmoid(self.postnet.prob_out(h))  # (B, r)
        return (spectrum, stop, *present)


class PostnetVocoder(nn.Module):
    """``mel (B, T, M)`` -> ``(refined mel (B, T, M), waveform (B, T * hop))``."""

    def __init__(self, model: Any, vocoder: Any):
        super().__init__()
        self.postnet = model.speech_decoder_postnet
        self.vocoder = vocoder

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        refined = self.postnet.postnet(mel)  # (B, T, M)
        return refined, self.vocoder(refined)  # (B, T * 256)


def empty_past(model: Any, batch: int, device: torch.device | str = "cpu") -> list[Tensor]:
    c = model.config
    hd = c.hidden_size // c.decoder_attention_heads
    return [torch.zeros(batch, c.decoder_attention_heads, 0, hd, device=device) for _ in range(2 * c.decoder_layers)]
