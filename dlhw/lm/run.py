"""A chat run's model on disk, and loading it back.

```
model/             adapter_config.json + adapter_model.safetensors (peft methods), or the whole
                   model (partial); the tokenizer; dlhw_chat.json (method, base, layers)
base_model/        the tiny base (tiny preset only; the full preset names its hub id instead)
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_json_atomic
from dlhw.errors import ConfigError

BASE_DIR = "base_model"
INFO_FILE = "dlhw_chat.json"


def save_chat_model(model: Any, tokenizer: Any, model_dir: Path, config: Any, base: str) -> None:
    from dlhw.lm.peft import decoder_layers, partial_layer_indices

    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    layers = None
    if config.method.kind == "partial":
        layers = partial_layer_indices(config.method.layers, len(decoder_layers(model)))
    info = {"recipe": config.recipe, "method": config.method.kind, "base": base, "partial_layers": layers}
    write_json_atomic(model_dir / INFO_FILE, info)


@dataclass
class LoadedChat:
    model: Any
    tokenizer: Any
    config: Any
    info: dict[str, Any]


def is_chat_run(path: Path) -> bool:
    return (path / "model" / INFO_FILE).is_file()


def load_chat_run(run_dir: str | Path, device: str = "auto", trainable: bool = False,
                  dtype: str | None = None) -> LoadedChat:
    """The fine-tuned model of ``run_dir`` on ``device``, ready to generate (eval mode).

    ``dtype``: ``--dtype`` of a batch verb (auto, fp32, bf16, fp16; see
    :func:`~dlhw.core.devices.inference_dtype`); None = the run's ``model.dtype``. With
    ``trainable``, the parameters the method trains have ``requires_grad`` set, as in training
    (for ``dlhw model summary``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dlhw.config import from_dict
    from dlhw.core.devices import inference_dtype, model_dtype, resolve_device
    from dlhw.core.registry import family_of_run
    from dlhw.core.runs import run_config_dict
    from dlhw.core.weights import check_weights
    from dlhw.lm.peft import freeze_all_but_layers

    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if not (model_dir / INFO_FILE).is_file():
        raise ConfigError(f"{run_dir}: not a finished chat run (no model/{INFO_FILE})")
    # the run's own family's config: summarization runs are saved and loaded this way too
    config = from_dict(family_of_run(run_dir).config_class, run_config_dict(run_dir))
    info = json.loads((model_dir / INFO_FILE).read_text(encoding="utf-8"))
    dev = resolve_device(device, "--device")
    weights = model_dtype(config.model.dtype, dev) if dtype is None else inference_dtype(dtype, dev)
    check_weights([model_dir])  # a damaged file: one line naming it, not the reader's traceback
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any
    if info["method"] in ("partial", "full"):  # the whole model was saved
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=weights)
        if trainable and info["method"] == "partial":
            freeze_all_but_layers(model, info["partial_layers"])
        elif trainable:
            model.requires_grad_(True)
        else:
            model.requires_grad_(False)
    else:
        from peft import PeftModel

        base_path = run_dir / info["base"] if (run_dir / info["base"]).is_dir() else info["base"]
        if isinstance(base_path, Path):  # the tiny base kept in the run (a Hub base is the Hub cache's)
            check_weights([base_path])
        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=weights)
        model = PeftModel.from_pretrained(base, model_dir, is_trainable=trainable)
    # inference: adapters and soft prompts too in the weights' dtype (peft keeps them in float32 for training)
    model = model.to(dev) if trainable else model.to(device=dev, dtype=weights)
    return LoadedChat(model.eval(), tokenizer, config, info)


def chat_run_generator(run_dir: str | Path, device: str = "auto", dtype: str | None = None,
                        max_new_tokens: int = 128, batch_size: int | None = None) -> Any:
    """A :class:`~dlhw.lm.generate.ChatGenerator` over a chat run's model (torch), in ``dtype``
    (see :func:`load_chat_run`), limited to the run's ``data.max_length``."""
    from dlhw.lm.generate import ChatGenerator

    loaded = load_chat_run(run_dir, device, dtype=dtype)
    return ChatGenerator(loaded.model, loaded.tokenizer, max_new_tokens, loaded.config.data.max_length,
                         batch_size=batch_size)
