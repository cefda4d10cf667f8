"""The three captioners on tiny sizes: shapes, masks, the loss, save/load."""

from __future__ import annotations

import pytest
import torch

from dlhw.families.caption.config import CaptionModelConfig
from dlhw.families.caption.model import (
    CaptionModel,
    CaptionModelSpec,
    load_caption_model,
    save_caption_model,
)

V, L = 30, 8


def tiny_model(arch: str, **kw) -> CaptionModel:
    torch.manual_seed(0)
    cfg = CaptionModelConfig(
        arch=arch, encoder_weights="random", encoder_width_mult=0.25, encoder_depth_mult=0.25,
        embed_dim=32, hidden_dim=32, attention_dim=16, num_layers=2, num_heads=4, ff_dim=64, dropout=0.0, **kw,
    )
    return CaptionModel(CaptionModelSpec(model=cfg, vocab_size=V, max_length=L, image_size=64)).eval()


def batch(B: int = 3) -> dict[str, torch.Tensor]:
    """Sequences <sos> w.. <eos> <pad>..; inputs drop the last token, labels the first."""
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(4, V, (B, L), generator=g)
    seq[:, 0] = 1
    seq[:, -1] = 2
    seq[0, 4], seq[0, 5:] = 2, 0  # the first caption is short: <eos> then <pad>
    labels = seq[:, 1:].clone()
    labels[labels.eq(0)] = -100
    return {"input_ids": seq[:, :-1], "labels": labels, "pixel_values": torch.randn(B, 3, 64, 64, generator=g)}


@pytest.mark.parametrize("arch", ["rnn", "attention", "transformer"])
def test_forward_shapes_and_a_finite_loss(arch):
    model = tiny_model(arch)
    out = model(**batch())
    assert out["logits"].shape == (3, L - 1, V)
    assert torch.isfinite(out["loss"])


def test_encoder_feature_shapes():
    x = torch.randn(2, 3, 64, 64)
    assert tiny_model("rnn").encoder.extract(x).shape[:1] == (2,) and tiny_model("rnn").encoder.extract(x).dim() == 2
    fmap = tiny_model("attention").encoder.extract(x)
    assert fmap.dim() == 3 and fmap.shape[1] == 4  # 64 px / 32 = 2 x 2 positions
    memory = tiny_model("transformer").encoder(x)
    assert memory.shape[-1] == 32  # the adapter maps C to the decoder width


@pytest.mark.parametrize("arch", ["rnn", "attention", "transformer"])
def test_loss_ignores_padding(arch):
    model = tiny_model(arch, attention_reg=0.0)
    b = batch()
    out = model(**b)
    keep = b["labels"].ne(-100)
    assert keep.sum() < keep.numel()  # the batch does hold padding
    expected = torch.nn.functional.cross_entropy(out["logits"][keep], b["labels"][keep])
    assert torch.allclose(out["loss"], expected, atol=1e-6)
    unmasked = torch.nn.functional.cross_entropy(out["logits"].flatten(0, 1), b["input_ids"].new_zeros(b["labels"].numel()))
    assert not torch.allclose(out["loss"], unmasked)


def test_transformer_is_causal():
    model = tiny_model("transformer")
    b = batch()
    logits = model(**b)["logits"]
    b["input_ids"][:, 4] = 9
    changed = model(**b)["logits"]
    assert torch.allclose(logits[:, :4], changed[:, :4], atol=1e-5)
    assert not torch.allclose(logits[:, 4:], changed[:, 4:], atol=1e-5)


def test_attention_weights_are_distributions_and_the_penalty_counts():
    model = tiny_model("attention")
    memory = model.encoder(batch()["pixel_values"])
    _, alphas = model.decoder(memory, batch()["input_ids"])
    assert alphas.shape == (3, L - 1, 4)
    assert torch.allclose(alphas.sum(-1), torch.ones(3, L - 1), atol=1e-5)
    with_reg = model(**batch())["loss"]
    model.spec.model.attention_reg = 0.0
    assert with_reg > model(**batch())["loss"]


def test_frozen_encoder_has_no_trainable_backbone_and_stays_in_eval():
    model = tiny_model("transformer")
    assert not any(p.requires_grad for p in model.encoder.backbone.parameters())
    assert all(p.requires_grad for p in model.encoder.adapter.parameters())
    model.train()
    assert not model.encoder.backbone.training and model.decoder.training
    tuned = tiny_model("rnn", finetune_encoder=True)
    assert all(p.requires_grad for p in tuned.encoder.backbone.parameters())


@pytest.mark.parametrize("arch", ["rnn", "attention", "transformer"])
def test_save_and_load_give_the_same_captions(arch, tmp_path):
    model = tiny_model(arch)
    x = batch()["pixel_values"]
    save_caption_model(model, tmp_path / "model")
    again = load_caption_model(tmp_path / "model")
    assert torch.equal(model.generate(pixel_values=x).tokens, again.generate(pixel_values=x).tokens)
    assert (tmp_path / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("arch", ["rnn", "attention", "transformer"])
def test_batched_generation_equals_one_at_a_time(arch):
    model = tiny_model(arch)
    x = batch(4)["pixel_values"]
    together = model.generate(pixel_values=x)
    for i in range(4):
        alone = model.generate(pixel_values=x[i : i + 1])
        n = alone.tokens.size(1)
        assert torch.equal(together.tokens[i, :n], alone.tokens[0])
    beams = model.generate(pixel_values=x, beam_size=3, length_penalty=0.0)
    assert beams.tokens.shape[0] == 4
    # beam search (no length penalty) never finds a less likely caption than greedy
    assert torch.all(beams.scores >= together.scores - 1e-4)


def test_transformer_cached_steps_give_the_forward_logits_at_every_position():
    model = tiny_model("transformer")
    b = batch()
    ids = b["input_ids"].clone()  # (3, 7); row 0 ends in <eos> <pad> <pad>
    ids[1, 3] = 0  # a <pad> inside a caption: forward hides its key from later positions, so must the cache
    with torch.no_grad():
        memory = model.encoder(b["pixel_values"])
        full, _ = model.decoder(memory, ids)  # (3, 7, V)
        state = model.decoder.init_state(memory)
        assert state.past[0].shape == (3, 4, 0, 8)  # (B, heads, t = 0, head_dim)
        for t in range(ids.size(1)):
            logits, state, _ = model.decoder.step(ids[:, t], state)  # (3, V)
            assert torch.allclose(logits, full[:, t], atol=1e-5), f"position {t}"
    assert len(state.past) == 2 * 2 and state.past[3].shape == (3, 4, L - 1, 8)
    assert len(state.cross) == 2 * 2 and state.cross[0].shape == (3, 4, 4, 8)  # (B, heads, P, head_dim)
    assert state.keep.tolist() == ids.ne(0).tolist()


def test_transformer_reordered_cache_continues_the_picked_rows():
    model = tiny_model("transformer")
    b = batch()
    ids = b["input_ids"]  # (3, 7)
    index = torch.tensor([2, 0, 0, 1])  # rows picked and repeated, as beam search does
    with torch.no_grad():
        memory = model.encoder(b["pixel_values"])
        state = model.decoder.init_state(memory)
        for t in range(4):
            _, state, _ = model.decoder.step(ids[:, t], state)
        state = model.decoder.reorder_state(state, index)
        logits, _, _ = model.decoder.step(ids[index, 4], state)  # (4, V)
        expected, _ = model.decoder(memory[index], ids[index, :5])  # (4, 5, V)
    assert torch.allclose(logits, expected[:, 4], atol=1e-5)
    assert torch.equal(logits[1], logits[2]) and not torch.allclose(logits[0], logits[1])


def test_beam_search_returns_the_attention_of_its_best_beam():
    model = tiny_model("attention")
    x = batch(4)["pixel_values"]
    greedy = model.generate(pixel_values=x)
    beams = model.generate(pixel_values=x, beam_size=3, length_penalty=0.0)
    assert beams.alphas is not None and beams.alphas.shape[:2] == beams.tokens.shape
    # the weights are the ones that produced the returned tokens: teacher-forcing those tokens
    # through the decoder gives the same maps at every step
    fed = torch.cat([torch.full((4, 1), model.spec.sos_id), beams.tokens[:, :-1]], dim=1)  # (B, L)
    _, forced = model.decoder(model.encoder(x), fed)  # (B, L, P)
    assert torch.allclose(beams.alphas, forced, atol=1e-6)
    assert not torch.equal(beams.tokens, greedy.tokens)  # (this random model: beams find a shorter caption)

    # sharpened output layer: every step's argmax is near-certain, so the best beam is greedy's
    # caption, and its weights are greedy's
    with torch.no_grad():
        model.decoder.fc.weight.mul_(100.0)
        model.decoder.fc.bias.mul_(100.0)
    greedy = model.generate(pixel_values=x)
    beams = model.generate(pixel_values=x, beam_size=3, length_penalty=0.0)
    n = greedy.tokens.size(1)
    assert torch.equal(beams.tokens[:, :n], greedy.tokens)
    assert torch.allclose(beams.alphas[:, :n], greedy.alphas, atol=1e-6)
