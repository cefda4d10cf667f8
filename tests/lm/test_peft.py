import pytest
import torch

from dlhw.config.peft import MethodConfig
from dlhw.errors import ConfigError
from dlhw.families.chat.config import TinyModelConfig
from dlhw.families.chat.persian_tasks import plain_text
from dlhw.lm.peft import (
    apply_method,
    decoder_layers,
    freeze_all_but_layers,
    parameter_counts,
    tensor_digests,
)
from dlhw.lm.tiny import tiny_model_config, train_tiny_tokenizer
from dlhw.reports.model_summary import module_tree


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer(plain_text(200, seed=4), vocab_size=300)


def _model(tokenizer, layers=6):
    from transformers import AutoModelForCausalLM

    cfg = TinyModelConfig(hidden_size=32, intermediate_size=64, num_layers=layers, num_heads=2, num_kv_heads=1)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_model_config(cfg, tokenizer))


def test_tokenizer_splits_digits_and_knows_the_chat_tokens(tokenizer):
    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    assert ids("۱۲۳") == ids("۱") + ids("۲") + ids("۳")  # no token spans two digits
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "سلام"}], add_generation_prompt=True)
    assert tokenizer.decode(ids) == "<s><|user|>\nسلام<|end|>\n<|assistant|>\n"


def test_partial_trains_exactly_layers_0_1_and_the_last_two(tokenizer):
    model = _model(tokenizer)
    assert freeze_all_but_layers(model, [0, 1, -2, -1]) == [0, 1, 4, 5]
    blocks = decoder_layers(model)
    for i, block in enumerate(blocks):
        assert all(p.requires_grad == (i in (0, 1, 4, 5)) for p in block.parameters())
    assert not model.get_input_embeddings().weight.requires_grad
    counts = parameter_counts(model)
    assert counts["trainable"] == 4 * sum(p.numel() for p in blocks[0].parameters())


def test_partial_refuses_a_selection_that_freezes_nothing(tokenizer):
    with pytest.raises(ConfigError, match="nothing would stay frozen"):
        freeze_all_but_layers(_model(tokenizer, layers=4), [0, 1, -2, -1])


@pytest.mark.parametrize("kind, variant, marker", [
    ("prompt-tuning", "lora", "prompt_encoder"), ("prefix-tuning", "lora", "prompt_encoder"),
    ("p-tuning", "lora", "mlp_head"), ("lora", "lora", "lora_A"), ("lora", "dora", "lora_magnitude_vector"),
    ("lora", "rslora", "lora_A"), ("lora", "loha", "hada_w1"),
])
def test_every_peft_method_wraps_the_base_and_trains_only_its_own_tensors(tokenizer, tmp_path, kind, variant, marker):
    tokenizer.save_pretrained(tmp_path)
    method = MethodConfig(kind=kind, variant=variant, r=4, alpha=8, num_virtual_tokens=4, encoder_hidden_size=16,
                          prompt_init_text="سلام دنیا")
    model = apply_method(_model(tokenizer), method, str(tmp_path))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and any(marker in n for n in trainable)
    assert not any(".base_layer." in n or "embed_tokens" in n for n in trainable)
    if variant == "rslora":
        q = model.base_model.model.model.layers[0].self_attn.q_proj
        assert q.scaling["default"] == pytest.approx(8 / 4**0.5)


def test_lora_names_missing_target_modules(tokenizer, tmp_path):
    with pytest.raises(ConfigError, match=r"\['c_attn'\] not in LlamaForCausalLM"):
        apply_method(_model(tokenizer), MethodConfig(kind="lora", target_modules=["q_proj", "c_attn"]), str(tmp_path))


def test_digests_see_a_single_bit():
    t = torch.randn(16)
    before = tensor_digests([("w", t)])
    t.view(torch.int32)[3] ^= 1  # flip the lowest mantissa bit of one element
    assert tensor_digests([("w", t)]) != before
    assert tensor_digests([("w", t.clone())]) == tensor_digests([("w", t)])


def test_module_tree_shows_trainable_layers(tokenizer):
    model = _model(tokenizer)
    freeze_all_but_layers(model, [0, 1, -2, -1])
    lines = module_tree(model, depth=4)
    per_layer = {ln.split()[0]: ln.split()[-1] for ln in lines if ln.strip().split(" ")[0].isdigit()}
    assert per_layer["2"] == "0" and per_layer["3"] == "0" and per_layer["0"] != "0" and per_layer["5"] != "0"
    assert lines[-1].startswith("total ") and "trainable" in lines[-1]
