"""Causal-LM runs (chat, summarization) as Hugging Face folders: ``dlhw export RUN --hf``.

| method | what the folder holds | loaded with |
|---|---|---|
| lora, dora, rslora, loha | the adapter merged into the base (``merge_and_unload``, as for ONNX) | ``AutoModelForCausalLM`` |
| partial, full | the fine-tuned model as it is | ``AutoModelForCausalLM`` |
| prompt tuning, prefix tuning, P-tuning | the PEFT adapter (soft prompts are inputs, not weights: nothing to merge them into) and the base id | ``PeftModel`` over the base |

Each folder has ``save_pretrained`` safetensors, the tokenizer (chat template included) and the
generation config. The export is checked: the run's model decodes the check prompts greedily with
dlhw's generation loop first, the written folder is loaded back the way its card says, and the same
loop must give the same tokens on every prompt, or the export fails.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlhw.core.family import HfExport
from dlhw.errors import DlhwError

SOFT_PROMPTS = ("prompt-tuning", "prefix-tuning", "p-tuning")
"""Methods whose training result is a soft prompt: exported as a PEFT adapter, not merged."""
BASE_COPY = "base_model"
"""Where a tiny base (not on the Hub) is copied inside an adapter export, so the folder is whole."""


def greedy_tokens(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int,
                  max_length: int) -> list[list[int]]:
    """Greedy new token ids per prompt, through the loop ``dlhw chat`` and ``dlhw summarize`` use."""
    from dlhw.lm.generate import ChatGenerator

    generator = ChatGenerator(model, tokenizer, max_new_tokens, max_length)
    return [g.token_ids for g in generator.generate_ids(prompts)]


def method_label(loaded: Any) -> str:
    """The method as a user names it: ``dora`` rather than ``lora`` with ``method.variant = dora``."""
    kind = str(loaded.info["method"])
    variant = getattr(getattr(loaded.config, "method", None), "variant", None)
    return str(variant) if kind == "lora" and variant else kind


def export_causal_hf(run_dir: Path, out_dir: Path, prompts: Callable[[Any], list[list[int]]], max_new_tokens: int,
                     what: str, limits: tuple[str, ...] = ()) -> HfExport:
    """Write the run's model into ``out_dir`` as the table above says and check its greedy tokens.

    ``prompts(loaded)`` gives the check prompts' token ids for the loaded run (``what`` names them in
    the check line); ``limits`` go to the model card.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dlhw.lm.run import load_chat_run

    loaded = load_chat_run(run_dir, "cpu", dtype="fp32")
    check_ids = prompts(loaded)
    max_length = loaded.config.data.max_length
    ours = greedy_tokens(loaded.model, loaded.tokenizer, check_ids, max_new_tokens, max_length)
    kind, method = loaded.info["method"], method_label(loaded)
    local_base = (run_dir / loaded.info["base"]).is_dir()
    base_id = None if local_base else str(loaded.info["base"])
    folder = 'folder = "path/to/this/folder"'
    with torch.no_grad():
        if kind in SOFT_PROMPTS:
            base_ref = BASE_COPY if local_base else str(base_id)
            if local_base:
                shutil.copytree(run_dir / loaded.info["base"], out_dir / BASE_COPY)
            loaded.model.save_pretrained(out_dir)  # adapter_config.json + adapter_model.safetensors
            adapter = json.loads((out_dir / "adapter_config.json").read_text(encoding="utf-8"))
            adapter["base_model_name_or_path"] = base_ref  # the Hub id, or the copy next to it (not the run's path)
            (out_dir / "adapter_config.json").write_text(json.dumps(adapter, indent=2), encoding="utf-8")
            loaded.model.get_base_model().generation_config.save_pretrained(out_dir)
            loaded.tokenizer.save_pretrained(out_dir)
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(out_dir / BASE_COPY if local_base else base_ref)
            reloaded: Any = PeftModel.from_pretrained(base, out_dir)
            form, library = "PEFT adapter", "peft"
            where = 'f"{folder}/base_model"' if local_base else repr(base_ref)
            load = (f'{folder}\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM, '
                    f'AutoTokenizer\n\ntokenizer = AutoTokenizer.from_pretrained(folder)\n'
                    f'base = AutoModelForCausalLM.from_pretrained({where})\n'
                    'model = PeftModel.from_pretrained(base, folder)')
            limits = (f"{method} learns a soft prompt (virtual-token inputs), which cannot be merged into the "
                      "weights: this is a PEFT adapter folder, loaded over its base model "
                      f"({'copied into base_model/' if local_base else base_ref}).",
                      "peft's own `generate()` puts the virtual tokens before the pads of a left-padded batch, "
                      "so batched answers there can differ from dlhw's (one prompt at a time agrees).", *limits)
        else:
            from dlhw.lm.export import fold_soft_prompts

            plain, _, _ = fold_soft_prompts(loaded)  # LoRA family merged (merge_and_unload); partial, full as they are
            plain.save_pretrained(out_dir)  # model.safetensors, config.json, generation_config.json
            loaded.tokenizer.save_pretrained(out_dir)
            reloaded = AutoModelForCausalLM.from_pretrained(out_dir)
            form = "merged model" if kind == "lora" else "model"
            library = "transformers"
            load = (f'{folder}\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n'
                    'tokenizer = AutoTokenizer.from_pretrained(folder)\n'
                    'model = AutoModelForCausalLM.from_pretrained(folder)')
            if kind == "lora":
                limits = (f"The {method} adapter is merged into the base weights: the folder is a plain "
                          "transformers model (float32).", *limits)
    theirs = greedy_tokens(reloaded.eval(), AutoTokenizer.from_pretrained(out_dir), check_ids, max_new_tokens,
                           max_length)
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    if differ:
        raise DlhwError(f"--hf: the exported folder's greedy tokens differ from the run's on {len(differ)} of "
                        f"{len(ours)} {what} (first: #{differ[0]}: {ours[differ[0]][:8]}... vs "
                        f"{theirs[differ[0]][:8]}...); nothing was written")
    tokens = sum(len(t) for t in ours)
    check = (f"greedy tokens of the reloaded folder equal the run's on {len(ours)} {what} ({tokens} tokens, "
             f"up to {max_new_tokens} each)")
    return HfExport(form=form, library=library, pipeline_tag="text-generation", base_model=base_id, method=method,
                    load=load, check=check, limits=limits)
