"""The NER model: an ``AutoModel`` backbone (XLM-R) with dlhw's own token-classification head.

The head is dropout + one linear layer over :data:`dlhw.families.ner.data.LABELS`; the loss ignores
label -100. Word labels meet sub-tokens in :func:`label_positions`: each word's label sits on its
first sub-token that is not a standalone ``▁`` piece (XLM-R writes ``▁`` alone before many
Persian words and some punctuation; labelling that piece would teach the model to tag a space),
every other sub-token gets -100 -- or, with ``label_all_subtokens``, the word's label with B-
turned into I-.

A saved model is a directory in the ``save_pretrained`` style: ``config.json`` (the backbone's
config), ``model.safetensors`` (backbone and head), ``ner.json`` (labels and settings) and the
tokenizer files. The tiny preset's backbone is an XLM-R config with small sizes and random
weights, its tokenizer a unigram model (SentencePiece-style ``▁`` pieces) trained on the
embedded text and wrapped as ``XLMRobertaTokenizerFast``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from dlhw.core.atomic import write_json_atomic
from dlhw.core.weights import load_state
from dlhw.families.ner.data import LABELS

META_FILE = "ner.json"
SPACE_PIECE = "▁"
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R's ids 0..3


class NerModel(nn.Module):
    """Backbone -> dropout -> linear over the labels."""

    def __init__(self, backbone: Any, num_labels: int = len(LABELS), dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        hidden: int = backbone.config.hidden_size
        self.dropout = nn.Dropout(dropout)  # regularizes the head on top of the encoder's states
        self.classifier = nn.Linear(hidden, num_labels)  # one score per label and sub-token
        self.num_labels = num_labels
        self.config = backbone.config  # the Trainer reads model.config

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                labels: Tensor | None = None) -> dict[str, Tensor]:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        logits = self.classifier(self.dropout(hidden))  # (B, T, L)
        out = {"logits": logits}
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1),
                                               ignore_index=-100)  # labels (B, T) -> (B*T,)
            out = {"loss": loss, "logits": logits}
        return out

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        self.backbone.gradient_checkpointing_enable(**kwargs)


def label_positions(word_ids: list[int | None], pieces: list[str], n_words: int) -> list[int | None]:
    """Per word, the sub-token that carries its label: the first one that is not a standalone
    ``▁`` (the first one when the word has nothing else); None for a word with no sub-token."""
    first: list[int | None] = [None] * n_words
    chosen: list[int | None] = [None] * n_words
    for pos, (word, piece) in enumerate(zip(word_ids, pieces, strict=True)):
        if word is None or word >= n_words:
            continue
        if first[word] is None:
            first[word] = pos
        if chosen[word] is None and piece != SPACE_PIECE:
            chosen[word] = pos
    return [c if c is not None else f for c, f in zip(chosen, first, strict=True)]


def align_labels(word_ids: list[int | None], pieces: list[str], word_labels: list[int],
                 label_all_subtokens: bool = False) -> list[int]:
    """Sub-token labels for one encoded sentence: the word's label at its label position, -100
    elsewhere (or, with ``label_all_subtokens``, the I- label on its other non-``▁`` pieces)."""
    positions = label_positions(word_ids, pieces, len(word_labels))
    labels = [-100] * len(word_ids)
    for word, pos in enumerate(positions):
        if pos is not None:
            labels[pos] = word_labels[word]
    if label_all_subtokens:
        for pos, (owner, piece) in enumerate(zip(word_ids, pieces, strict=True)):
            if owner is None or labels[pos] != -100 or piece == SPACE_PIECE or owner >= len(word_labels):
                continue
            name = LABELS[word_labels[owner]]
            labels[pos] = LABELS.index("I-" + name[2:]) if name.startswith("B-") else word_labels[owner]
    return labels


def encode_sentence(tokenizer: Any, words: list[str], tags: list[str], max_length: int,
                    label_all_subtokens: bool = False) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` of one training sentence (truncated at ``max_length``)."""
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    ids = [LABELS.index(t) for t in tags]
    labels = align_labels(enc.word_ids(), enc.tokens(), ids, label_all_subtokens)
    return {"input_ids": enc["input_ids"], "labels": labels}


class NerCollator:
    """Pads ``input_ids`` with the pad id, ``labels`` with -100, and builds the attention mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Tensor]:
        longest = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), longest), self.pad_id, dtype=torch.long)  # (B, T)
        labels = torch.full((len(batch), longest), -100, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)  # (B, T)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            mask[i, :n] = 1
            if "labels" in b:
                labels[i, :n] = torch.tensor(b["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train_tiny_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """An XLM-R-style tokenizer: ``▁`` metaspace pre-tokenization + a unigram model over ``texts``."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import (
        XLMRobertaTokenizer,  # tokenizers-backed in transformers 5 (the old ...Fast)
    )

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE_PIECE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=SPACE_PIECE, prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=[*SPECIAL_TOKENS, "<mask>"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok = _stable_unigram(tok)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return XLMRobertaTokenizer(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                               cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def _stable_unigram(tok: Any) -> Any:
    """The trained unigram model with a reproducible id order: the trainer returns the same pieces
    in a run-dependent order, and the single characters it adds for coverage with scores that differ
    from run to run, so a seeded tiny run would not repeat itself. Specials keep ids 0..4; single
    characters get one score below every longer piece; all follow by score, then text."""
    from tokenizers import Tokenizer

    state = json.loads(tok.to_str())
    vocab = state["model"]["vocab"]
    n_special = len(SPECIAL_TOKENS) + 1
    words = [(piece, round(score, 4)) for piece, score in vocab[n_special:] if len(piece.lstrip(SPACE_PIECE)) > 1]
    floor = min((score for _, score in words), default=0.0) - 1.0  # every single character scores the same
    chars = [(piece, floor) for piece, _ in vocab[n_special:] if len(piece.lstrip(SPACE_PIECE)) <= 1]
    rest = sorted(([piece, score] for piece, score in words + chars), key=lambda v: (-v[1], v[0]))
    state["model"]["vocab"] = vocab[:n_special] + rest
    return Tokenizer.from_str(json.dumps(state))


def tiny_backbone(cfg: Any, vocab_size: int, max_length: int, pad_id: int) -> nn.Module:
    """A randomly initialized XLM-R encoder with the sizes of ``cfg`` (:class:`TinyNerModelConfig`)."""
    from transformers import AutoModel, XLMRobertaConfig

    config = XLMRobertaConfig(
        vocab_size=vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
        max_position_embeddings=max_length + pad_id + 2, pad_token_id=pad_id, bos_token_id=0, eos_token_id=2,
        type_vocab_size=1,
    )
    return AutoModel.from_config(config, add_pooling_layer=False)


def save_ner_model(model: NerModel, tokenizer: Any, directory: str | Path, settings: dict[str, Any]) -> Path:
    """``config.json``, ``model.safetensors``, ``ner.json`` and the tokenizer in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    backbone: Any = model.backbone
    backbone.config.save_pretrained(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    meta = {"labels": list(LABELS), "dropout": model.dropout.p, **settings}
    write_json_atomic(directory / META_FILE, meta)
    tokenizer.save_pretrained(directory)
    return directory


def load_ner_model(directory: str | Path, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float32) -> tuple[NerModel, Any, dict[str, Any]]:
    """``(model in eval mode on device, in dtype; tokenizer; ner.json)`` of a directory written by
    :func:`save_ner_model`."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    backbone = AutoModel.from_config(AutoConfig.from_pretrained(directory), add_pooling_layer=False)
    model = NerModel(backbone, len(meta["labels"]), meta.get("dropout", 0.1))
    load_state(model, directory / "model.safetensors")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return model.to(device=device, dtype=dtype).eval(), tokenizer, meta


def load_run_model(run_dir: str | Path) -> tuple[NerModel, str]:
    """The run's model as trained, and a label for ``dlhw model summary``."""
    model, _, meta = load_ner_model(Path(run_dir) / "model")
    return model, f"NER: {meta.get('backbone', 'XLM-R')} + dlhw head ({len(meta['labels'])} labels)"
