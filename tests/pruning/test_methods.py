"""Pruning any model with Linear layers: exact sparsities, Wanda's scores, 2:4 groups, kept masks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlhw.pruning.methods import (
    activation_norms,
    bake_masks,
    keep_zeros,
    prunable_modules,
    prune_model,
    sparsity_of,
    summarize_sparsity,
    two_four_mask,
)


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, 16)
        self.up = nn.Linear(16, 40)
        self.down = nn.Linear(40, 16)
        self.lm_head = nn.Linear(16, 50, bias=False)
        with torch.no_grad():
            self.down.weight.mul_(5.0)  # larger weights: a global threshold prunes this layer less

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.down(torch.relu(self.up(self.embed(input_ids)))))  # (B, T, V)


def test_the_head_and_embeddings_are_pruned_only_when_included() -> None:
    model = TinyLM()
    assert list(prunable_modules(model)) == ["up", "down"]
    assert list(prunable_modules(model, ("lm_head", "embeddings"))) == ["embed", "up", "down", "lm_head"]
    with pytest.raises(ValueError, match="unknown part.*choose from lm_head, embeddings"):
        prunable_modules(model, ("head",))


def test_layer_scope_prunes_each_layer_by_the_amount_and_global_prunes_the_total() -> None:
    model = TinyLM()
    modules = prunable_modules(model)
    prune_model(model, modules, 0.3, scope="layer")
    for row in sparsity_of(modules):
        assert row.zeros == round(0.3 * row.total)
    model = TinyLM()
    modules = prunable_modules(model)
    prune_model(model, modules, 0.3, scope="global")
    rows = sparsity_of(modules)
    total = sum(r.total for r in rows)
    assert sum(r.zeros for r in rows) == round(0.3 * total)
    by_name = {r.name: r.sparsity for r in rows}
    assert by_name["up"] > 0.4 and by_name["down"] < 0.2  # the scaled-up layer keeps more of its weights


def test_two_four_keeps_exactly_two_of_every_four_inputs() -> None:
    model = TinyLM()
    modules = prunable_modules(model)
    prune_model(model, modules, 0.0, pattern="2:4")
    for module in modules.values():
        groups = (module.weight != 0).reshape(module.weight.shape[0], -1, 4).sum(-1)
        assert torch.equal(groups, torch.full_like(groups, 2))
    with pytest.raises(ValueError, match="divisible by 4"):
        two_four_mask(torch.rand(3, 6))


def test_wanda_keeps_small_weights_on_inputs_with_large_activations() -> None:
    model = TinyLM()
    with torch.no_grad():
        model.down.weight[:, 0] = 0.01  # the smallest weights of `down` ...
    modules = prunable_modules(model)
    batches = [{"input_ids": torch.randint(0, 50, (4, 8))} for _ in range(3)]
    norms = activation_norms(model, modules, batches)
    norms["down"] = torch.ones(40)
    norms["down"][0] = 1e4  # ... read an input that is 10^4 times larger than the others
    l1 = TinyLM()
    with torch.no_grad():
        l1.down.weight[:, 0] = 0.01
    prune_model(l1, prunable_modules(l1), 0.5, method="l1")
    prune_model(model, modules, 0.5, method="wanda", norms=norms)
    assert int((l1.down.weight[:, 0] == 0).sum()) == 16  # magnitude drops all of them
    assert int((model.down.weight[:, 0] == 0).sum()) == 0  # Wanda keeps all of them
    for row in sparsity_of(modules):  # per output row: half of each row
        assert row.zeros == row.total // 2


@pytest.mark.slow
def test_kept_zeros_survive_training_and_baking_leaves_plain_weights() -> None:
    model = TinyLM()
    modules = prunable_modules(model)
    prune_model(model, modules, 0.4)
    bake_masks(model)
    zeros_before = {n: (m.weight == 0).clone() for n, m in modules.items()}
    assert keep_zeros(modules) == sum(int(z.sum()) for z in zeros_before.values())
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(5):
        loss = model(torch.randint(0, 50, (4, 8))).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert bake_masks(model) == 2
    keys = set(model.state_dict())
    assert not any(k.endswith(("weight_orig", "weight_mask")) for k in keys)
    for name, module in modules.items():
        assert torch.equal(module.weight == 0, zeros_before[name])
    summary = summarize_sparsity(sparsity_of(modules), model)
    assert summary["pruned_modules"]["sparsity"] == pytest.approx(0.4, abs=1e-3)
    assert 0 < summary["model"]["sparsity"] < summary["pruned_modules"]["sparsity"]


@pytest.mark.gpu
def test_two_four_weights_run_on_sparse_kernels_with_the_dense_answer() -> None:
    from torch.sparse import to_sparse_semi_structured

    layer = nn.Linear(128, 256, bias=False)
    prune_model(layer, {"": layer}, 0.5, pattern="2:4")
    bake_masks(layer)
    weight = layer.weight.detach().to("cuda", torch.float16)
    x = torch.randn(64, 128, device="cuda", dtype=torch.float16)
    sparse = to_sparse_semi_structured(weight)
    assert torch.allclose(torch.mm(sparse, x.t()).t(), x @ weight.t(), atol=1e-2, rtol=1e-2)


def test_baking_keeps_a_frozen_weight_frozen() -> None:
    model = TinyLM()
    model.up.weight.requires_grad_(False)
    modules = prunable_modules(model)
    prune_model(model, modules, 0.3)
    assert bake_masks(model) == 2
    assert model.up.weight.requires_grad is False and model.down.weight.requires_grad is True
