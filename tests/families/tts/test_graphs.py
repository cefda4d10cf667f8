"""The synthesis graphs reproduce SpeechT5's own forward pass."""

from __future__ import annotations

import torch

from dlhw.families.tts.config import TinySpeechT5Config
from dlhw.families.tts.graphs import DecoderStep, TextEncoder, empty_past
from dlhw.families.tts.model import tiny_speecht5


def test_decoder_steps_with_past_equal_the_teacher_forced_forward() -> None:
    torch.manual_seed(0)
    model = tiny_speecht5(TinySpeechT5Config(), 60).eval()
    # SpeechT5 keeps its prenet dropout on; with p = 0 its mask is all zeros (bernoulli(0)): feed the same
    model.config.speech_decoder_prenet_dropout = 0.0
    ids = torch.randint(4, 60, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0  # the second text is padded
    speakers, mel = torch.randn(2, 512), torch.randn(2, 6, 80)
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, speaker_embeddings=speakers, labels=mel).spectrogram
        memory = TextEncoder(model)(ids, mask)
        step, past = DecoderStep(model), empty_past(model, 2)
        inputs = torch.cat([torch.zeros(2, 1, 80), mel[:, 1::2][:, :-1]], dim=1)  # shifted, one per r frames
        zeros = torch.zeros(2, model.config.speech_decoder_prenet_units)
        frames = []
        for t in range(inputs.shape[1]):
            out = step(inputs[:, t], torch.tensor(t), zeros, speakers, memory, mask.float(), *past)
            frames.append(out[0])
            past = list(out[2:])
            assert past[0].shape == (2, model.config.decoder_attention_heads, t + 1, 32)
        ours = model.speech_decoder_postnet.postnet(torch.cat(frames, dim=1))
    assert ours.shape == reference.shape == (2, 6, 80)
    assert float((ours - reference).abs().max()) < 1e-4
