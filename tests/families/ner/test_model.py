"""NER model: sub-token label alignment (standalone ``▁`` pieces), the own head, save and load."""

from __future__ import annotations

import torch

from dlhw.families.ner.config import TinyNerModelConfig
from dlhw.families.ner.data import LABELS
from dlhw.families.ner.model import (
    NerCollator,
    NerModel,
    align_labels,
    encode_sentence,
    label_positions,
    load_ner_model,
    save_ner_model,
    tiny_backbone,
    train_tiny_tokenizer,
)

CORPUS = ["Ali went to Paris today .", "Sara met Reza in London .", "علی به تهران رفت .", "سارا در شیراز ماند ."] * 20


def test_label_sits_after_a_standalone_space_piece():
    pieces = ["<s>", "▁", "ته", "ران", "▁رفت", "▁", "،", "</s>"]
    word_ids = [None, 0, 0, 0, 1, 2, 2, None]
    assert label_positions(word_ids, pieces, 3) == [2, 4, 6]
    b_loc, o = LABELS.index("B-LOC"), LABELS.index("O")
    assert align_labels(word_ids, pieces, [b_loc, o, o]) == [-100, -100, b_loc, -100, o, -100, o, -100]
    i_loc = LABELS.index("I-LOC")
    assert align_labels(word_ids, pieces, [b_loc, o, o], label_all_subtokens=True) == \
        [-100, -100, b_loc, i_loc, o, -100, o, -100]


def test_real_tokenizer_emits_standalone_pieces_and_alignment_skips_them():
    tokenizer = train_tiny_tokenizer(CORPUS, 120)
    words = ["Zoltan", "به", "کرمانشاه", "رفت"]
    tags = ["B-PER", "O", "B-LOC", "O"]
    item = encode_sentence(tokenizer, words, tags, max_length=64)
    pieces = tokenizer.convert_ids_to_tokens(item["input_ids"])
    labelled = [(p, LABELS[x]) for p, x in zip(pieces, item["labels"], strict=True) if x != -100]
    assert "▁" in pieces  # unseen words start with a standalone space piece
    assert [x for _, x in labelled] == tags  # one label per word
    assert all(p != "▁" for p, _ in labelled)
    assert item["input_ids"][0] == tokenizer.cls_token_id and item["input_ids"][-1] == tokenizer.sep_token_id


def test_head_loss_ignores_minus_100_and_save_load_round_trip(tmp_path):
    tokenizer = train_tiny_tokenizer(CORPUS, 120)
    cfg = TinyNerModelConfig(vocab_size=120, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = NerModel(tiny_backbone(cfg, len(tokenizer), 32, tokenizer.pad_token_id), dropout=0.0).eval()
    batch = NerCollator(tokenizer.pad_token_id)([encode_sentence(tokenizer, ["Ali", "went"], ["B-PER", "O"], 32),
                                                 encode_sentence(tokenizer, ["Sara"], ["B-PER"], 32)])
    assert batch["labels"][1, -1] == -100 and batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()
    out = model(**batch)
    keep = batch["labels"] != -100
    expected = torch.nn.functional.cross_entropy(out["logits"][keep], batch["labels"][keep])
    assert torch.allclose(out["loss"], expected)
    assert out["logits"].shape == (*batch["input_ids"].shape, len(LABELS))
    save_ner_model(model, tokenizer, tmp_path / "model", {"max_length": 32, "stride": 8})
    assert {"config.json", "model.safetensors", "ner.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "model").iterdir()}
    loaded, tok2, meta = load_ner_model(tmp_path / "model")
    assert meta["labels"] == list(LABELS) and meta["max_length"] == 32
    assert tok2("Ali went")["input_ids"] == tokenizer("Ali went")["input_ids"]
    assert torch.equal(loaded(**batch)["logits"], out["logits"])
