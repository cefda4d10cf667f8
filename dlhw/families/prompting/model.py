"""Models of the prompting family: any seq2seq LM or causal LM by id, or the tiny T5.

- :func:`load_prompt_model` -- a Hub id or local folder; encoder-decoder configs (the FLAN-T5
  sizes) load as seq2seq LMs, others as causal LMs (prompted through their chat template).
- :func:`tiny_t5` -- offline stand-in for FLAN-T5: a word-level tokenizer over the embedded
  sports task's vocabulary and a small T5 built from :class:`TinyT5Config`, pretrained once on the
  task in all four prompt formats (answer-only, few-shot, CoT, few-shot CoT; see
  :func:`pretraining_example`) and cached under ``$DLHW_CACHE_DIR/prompt-base/``, keyed by a hash
  of the config and of this code. Held-out statements are never in its pretraining data.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from dlhw.core import pretrain as core_pretrain
from dlhw.core.atomic import write_json_atomic
from dlhw.core.cache import asset_key, cache_dir, cached_base
from dlhw.core.devices import inference_dtype
from dlhw.core.pretrain import one_cycle, pretrain_loop, seeded
from dlhw.core.weights import check_weights
from dlhw.errors import DataError
from dlhw.families.prompting import data as bbh
from dlhw.families.prompting import sports_tasks
from dlhw.families.prompting.config import PromptModelConfig, TinyT5Config
from dlhw.families.prompting.data import BbhExample, CotPrompt, build_prompt

SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]
"""T5's ids: pad 0 (also the decoder start), EOS 1, unknown 2."""
PRETRAIN_SEED = 977
FORMATS = (("answer-only", 0.35), ("few-shot", 0.1), ("cot", 0.45), ("cot-few-shot", 0.1))
"""Pretraining formats and their shares of the steps (the long few-shot prompts cost the most)."""


@dataclass
class PromptModel:
    """A loaded model with what generation needs to know about it."""

    model: Any
    tokenizer: Any
    kind: str
    """``seq2seq`` or ``causal``."""
    name: str
    """The id or folder it came from (``tiny-t5`` for the tiny preset's base)."""


SMALL_MODEL = 10_000_000
"""Below this many parameters a model runs on one CPU thread (:func:`cpu_threads_for`)."""


@contextmanager
def cpu_threads_for(parameters: int) -> Iterator[None]:
    """One intra-op thread for a small model on the CPU, the default otherwise.

    A model of a few hundred thousand parameters gains nothing from splitting its small matrix
    products, and on a shared CPU the idle-spinning threads slowed the tiny T5's pretraining
    from ~0.1 to ~5 s per step.
    """
    before = torch.get_num_threads()
    if parameters < SMALL_MODEL:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_word_tokenizer(texts: list[str]) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` (words and punctuation) with T5's special ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   clean_up_tokenization_spaces=True,
                                   model_input_names=["input_ids", "attention_mask"])


def tiny_t5_config(cfg: TinyT5Config, vocab_size: int) -> Any:
    from transformers import T5Config

    shape: dict[str, Any] = {"vocab_size": vocab_size, "d_model": cfg.d_model, "d_kv": cfg.d_kv, "d_ff": cfg.d_ff,
                             "num_layers": cfg.num_layers, "num_decoder_layers": cfg.num_layers,
                             "num_heads": cfg.num_heads, "dropout_rate": 0.0, "feed_forward_proj": "relu",
                             "tie_word_embeddings": True, "pad_token_id": 0, "eos_token_id": 1,
                             "decoder_start_token_id": 0}
    return T5Config(**shape)


def pretraining_example(rng: random.Random, pairs: list[tuple[str, str, str, str, str]],
                        strategy: str) -> tuple[str, str]:
    """One ``(prompt, answer)`` of the embedded task in the format of ``strategy``."""
    items = sports_tasks.sample_items(pairs, 4, rng.randrange(1 << 30))
    rng.shuffle(items)
    items = items[:1 + rng.randint(1, 3)]  # 1-3 shots: shorter prompts, and any shot count works
    item, shots = items[0], items[1:]
    cot = CotPrompt(sports_tasks.TASK_PREFIX, tuple((s.input, s.rationale) for s in shots))
    prompt = build_prompt(strategy, item.input, [BbhExample(s.input, s.target) for s in shots], cot)
    return prompt, item.rationale if bbh.STRATEGY_COT[strategy] else item.target


def pretrain_tiny_t5(cfg: TinyT5Config, out_dir: Path, log: bool = True) -> None:
    """Build the tokenizer and the tiny T5, pretrain it on the embedded task, save both to ``out_dir``."""
    from transformers import T5ForConditionalGeneration

    _, pairs = sports_tasks.split_pairs()
    rng = random.Random(PRETRAIN_SEED)
    vocabulary = [pretraining_example(rng, pairs, f) for f, _ in FORMATS for _ in range(100)]
    tokenizer = train_word_tokenizer([t for pair in vocabulary for t in pair] + sports_tasks.gazetteer_text())
    model = seeded(PRETRAIN_SEED, lambda: T5ForConditionalGeneration(tiny_t5_config(cfg, len(tokenizer))))

    def batch(step: int) -> dict[str, torch.Tensor]:
        # one format per step: a batch of short prompts is not padded to a few-shot prompt's length
        strategy = rng.choices([f for f, _ in FORMATS], [w for _, w in FORMATS])[0]
        examples = [pretraining_example(rng, pairs, strategy) for _ in range(cfg.batch_size)]
        enc = tokenizer([p for p, _ in examples], return_tensors="pt", padding=True)  # (B, S)
        labels = tokenizer([a for _, a in examples], return_tensors="pt", padding=True).input_ids  # (B, L)
        labels[labels == tokenizer.pad_token_id] = -100
        return {**enc, "labels": labels}

    with cpu_threads_for(parameter_count(model)):
        loss = pretrain_loop(model, batch, cfg.pretrain_steps, lr=cfg.learning_rate, seed=PRETRAIN_SEED,
                             schedule=one_cycle(pct_start=0.1), desc="pretraining the tiny T5 on the sports task (once)",
                             log=log)
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "pretrain.json").write_text(json.dumps({"config": asdict(cfg), "final_loss": round(loss, 4),
                                                       "formats": dict(FORMATS)}, indent=2), encoding="utf-8")


def tiny_t5_dir(cfg: TinyT5Config) -> Path:
    key = asset_key(asdict(cfg), sys.modules[__name__], sports_tasks, bbh, core_pretrain)
    return cache_dir() / "prompt-base" / f"tiny-t5-{key}"


def tiny_t5(cfg: TinyT5Config, log: bool = True) -> Path:
    """The cached tiny T5 for ``cfg`` (model + tokenizer folder), pretraining it first if needed."""
    return cached_base(tiny_t5_dir(cfg), lambda folder: pretrain_tiny_t5(cfg, folder, log), "tiny T5", log)


def untrained_tiny_t5(cfg: TinyT5Config) -> PromptModel:
    """The tiny T5 with random weights and the cached base's tokenizer (the chance-level reference)."""
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5(cfg))
    with torch.random.fork_rng():
        torch.manual_seed(PRETRAIN_SEED + 1)
        model = T5ForConditionalGeneration(tiny_t5_config(cfg, len(tokenizer))).eval()
    return PromptModel(model, tokenizer, "seq2seq", "tiny-t5 (untrained)")


def is_seq2seq(name: str) -> bool:
    """Whether ``name`` is an encoder-decoder model (from its config alone; no weights are read)."""
    from transformers import AutoConfig

    try:
        return bool(getattr(AutoConfig.from_pretrained(name), "is_encoder_decoder", False))
    except OSError as err:
        raise DataError(f"could not load the model {name!r} ({str(err).splitlines()[0]})") from None


def load_folder(path: str | Path, device: torch.device, dtype: str = "auto", name: str | None = None) -> PromptModel:
    """A seq2seq or causal LM from a Hub id or folder, in eval mode on ``device``."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    path = str(path)
    if Path(path).is_dir():  # a folder of a run: a damaged weights file is named in one line
        check_weights([path])
    seq2seq = is_seq2seq(path)
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = auto.from_pretrained(path, dtype=inference_dtype(dtype, device))
    except OSError as err:
        raise DataError(f"could not load the model {path!r} ({str(err).splitlines()[0]})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not seq2seq:
        tokenizer.padding_side = "left"
    model = model.to(device)  # type: ignore[arg-type]  # transformers' stub types .to() oddly
    return PromptModel(model.eval(), tokenizer, "seq2seq" if seq2seq else "causal", name or path)


def load_prompt_model(cfg: PromptModelConfig, device: torch.device) -> PromptModel:
    """The configured model: ``cfg.name`` (Hub id or folder), or the cached tiny T5 when it is null."""
    if cfg.name is None:
        # its yes/no margins are ~1e-3, below bf16's rounding: auto keeps it in fp32 (--dtype bf16 asks for bf16)
        return load_folder(tiny_t5(cfg.tiny), device, "float32" if cfg.dtype == "auto" else cfg.dtype, name="tiny-t5")
    if (Path(cfg.name) / "config.yaml").is_file():  # another prompt run: the model it used
        return load_folder(run_model_path(Path(cfg.name)), device, cfg.dtype)
    return load_folder(cfg.name, device, cfg.dtype)


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


SOURCE_FILE = "source.json"
"""In a run's ``model/``: names the Hub id or folder whose weights the run used (full preset)."""


def save_run_model(loaded: PromptModel, model_dir: Path) -> None:
    """Record the model of a prompt run: the tiny T5 whole (a few MB), else config + tokenizer + its id."""
    model_dir.mkdir(parents=True, exist_ok=True)
    loaded.tokenizer.save_pretrained(model_dir)
    if loaded.name == "tiny-t5":
        loaded.model.save_pretrained(model_dir)
    else:
        loaded.model.config.save_pretrained(model_dir)
        write_json_atomic(model_dir / SOURCE_FILE, {"name": loaded.name, "kind": loaded.kind}, indent=None)


def save_export_reference(export_dir: Path, tokenizer: Any, model_dir: Path) -> None:
    """Record an ONNX Runtime prompt run's model: the export's config and tokenizer, and its folder."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(model_dir)
    shutil.copy(export_dir / "config.json", model_dir / "config.json")
    write_json_atomic(model_dir / SOURCE_FILE, {"name": str(export_dir), "kind": "seq2seq", "onnx": True}, indent=None)


def run_model_path(run_dir: Path) -> str:
    """Where a prompt run's model weights are: its ``model/`` folder, or the id that folder names."""
    source = run_dir / "model" / SOURCE_FILE
    if source.is_file():
        return str(json.loads(source.read_text(encoding="utf-8"))["name"])
    return str(run_dir / "model")


def load_run_model(run_dir: Path) -> tuple[Any, str]:
    """``(model, label)`` of a prompt run (``dlhw model summary``)."""
    path = run_model_path(Path(run_dir))
    loaded = load_folder(path, torch.device("cpu"), "float32")
    return loaded.model, f"{loaded.name} ({loaded.kind}, prompted as is)"
