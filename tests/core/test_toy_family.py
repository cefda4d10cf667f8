"""Adding a family touches only its own folder plus one registration line.

The test writes a toy family package ``toyfam`` (a linear classifier on 2-D blobs) into a temporary
folder, in the layout every family has, registers it with one line, and runs the shared commands on
it: ``recipes``, ``config show``, ``train`` (the engine's trainer and its shared ending),
``evaluate``, ``export`` (refused: the toy declares none), ``report run`` and ``report compare``.
Nothing under ``dlhw/`` is edited.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dlhw.core import registry
from tests.conftest import run_cli

TOY: dict[str, str] = {
    "__init__.py": '''
        """A toy family: a linear classifier on 2-D blobs."""
        from pathlib import Path

        from dlhw.core.family import TRAINING_SECTION, Family, Recipe, lazy
        from toyfam.config import ToyConfig

        FAMILY = Family(
            name="toy",
            summary="a linear classifier on 2-D blobs",
            config_class=ToyConfig,
            recipes=(Recipe("toy-blobs", "toy", "linear classifier on blobs", yaml=Path(__file__).with_name("toy-blobs.yaml")),),
            train=lazy("toyfam.train:train_toy"),
            evaluate=lazy("toyfam.evaluate:evaluate_toy_run"),
            evaluate_options=("split",),
            report_sections=(lazy("toyfam.report:model_section"), TRAINING_SECTION),
            metrics=(("accuracy", "accuracy"),),
        )
    ''',
    "config.py": '''
        from dataclasses import dataclass, field

        from dlhw.config import RunConfig


        @dataclass
        class ToyDataConfig:
            examples: int = 240
            """Blob points generated (train + val + test)."""


        @dataclass
        class ToyConfig(RunConfig):
            data: ToyDataConfig = field(default_factory=ToyDataConfig)
            """The blobs."""
    ''',
    "data.py": '''
        import torch


        def blobs(n: int, seed: int) -> list[dict]:
            gen = torch.Generator().manual_seed(seed)
            labels = torch.randint(2, (n,), generator=gen)
            x = torch.stack([labels * 3.0, -labels * 3.0], 1) + torch.randn(n, 2, generator=gen)  # (n, 2)
            return [{"x": x[i], "labels": labels[i]} for i in range(n)]


        def collate(items: list[dict]) -> dict:
            return {k: torch.stack([it[k] for it in items]) for k in items[0]}
    ''',
    "model.py": '''
        import torch
        from torch import nn


        class Toy(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.linear = nn.Linear(2, 2)

            def forward(self, x, labels=None):
                logits = self.linear(x)  # (B, 2)
                out = {"logits": logits}
                if labels is not None:
                    out["loss"] = nn.functional.cross_entropy(logits, labels)
                return out


        def save(model, model_dir) -> None:
            model_dir.mkdir(parents=True, exist_ok=True)
            from safetensors.torch import save_file
            save_file(model.state_dict(), str(model_dir / "model.safetensors"))
            (model_dir / "config.json").write_text("{}")


        def load(model_dir) -> Toy:
            from safetensors.torch import load_file
            model = Toy()
            model.load_state_dict(load_file(str(model_dir / "model.safetensors")))
            return model.eval()
    ''',
    "train.py": '''
        from dlhw.engine.finish import finish_run
        from dlhw.engine.trainer import run_training
        from toyfam.data import blobs, collate
        from toyfam.model import Toy, save


        def train_toy(config, run_dir, resume_from=None):
            n = config.data.examples
            trainer, result = run_training(Toy(), blobs(n, config.seed), blobs(n // 4, config.seed + 1), collate,
                                           config.train, run_dir, config.seed, resume_from=resume_from)
            return finish_run(trainer, result, config, run_dir, save=lambda model, folder: save(model, folder),
                              summary=lambda model: {"label": "toy", "data": {"examples": n},
                                                     "model": {"parameters": 6, "trainable_parameters": 6}})
    ''',
    "evaluate.py": '''
        import torch

        from dlhw.config import from_dict
        from dlhw.core.atomic import write_json_atomic
        from dlhw.core.runs import RunFiles, run_config_dict
        from dlhw.reports.run_report import write_run_report
        from toyfam.config import ToyConfig
        from toyfam.data import blobs, collate
        from toyfam.model import load


        def evaluate_toy_run(run_dir, split="test"):
            config = from_dict(ToyConfig, run_config_dict(run_dir))
            files = RunFiles(run_dir)
            batch = collate(blobs(100, config.seed + 2))
            with torch.no_grad():
                accuracy = float((load(files.model)(batch["x"])["logits"].argmax(-1) == batch["labels"]).float().mean())
            result = {"split": split, "metrics": {"accuracy": accuracy}}
            write_json_atomic(files.eval, result)
            write_run_report(run_dir)
            return result
    ''',
    "report.py": '''
        def model_section(run_dir, config, summary, evaluation):
            return ["## Toy model", "", f"parameters: {summary['model']['parameters']}", ""]
    ''',
    "toy-blobs.yaml": '''
        # dlhw train toy-blobs --preset tiny
        recipe: toy-blobs
        data:
          examples: 240
        train:
          epochs: 3
          batch_size: 16
          learning_rate: 0.1
          num_workers: 0
          device: cpu
          early_stopping_patience: 0
        presets:
          tiny:
            train:
              epochs: 3
    ''',
}


@pytest.fixture
def toy_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    package = tmp_path / "plugins" / "toyfam"
    package.mkdir(parents=True)
    for name, text in TOY.items():
        (package / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(package.parent))
    registry.load_families((*registry.FAMILY_PACKAGES, "toyfam"))  # the one registration line
    yield package
    registry.load_families()


def test_the_registry_lists_a_new_family_and_its_recipe(toy_family):
    assert registry.family_of("toy-blobs").name == "toy"
    code, out = run_cli("recipes")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("toy-blobs"))
    assert row.split()[1:4] == ["toy", "full,tiny", "train,evaluate"]
    code, out = run_cli("config", "show", "toy-blobs", "--preset", "tiny", "--explain")
    assert code == 0 and "data.examples" in out and "Blob points generated" in out


@pytest.mark.slow
def test_shared_commands_train_evaluate_and_report_a_new_family(toy_family, tmp_path):
    run = tmp_path / "runs" / "toy"
    code, out = run_cli("train", "toy-blobs", "--preset", "tiny", "--output-dir", str(run))
    assert code == 0, out
    summary = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
    assert list(summary) == ["recipe", "preset", "label", "data", "model", "train"]  # the engine's ending
    assert summary["recipe"] == "toy-blobs" and summary["train"]["global_step"] == 3 * 15
    assert (run / "model" / "model.safetensors").is_file() and "## Toy model" in (run / "report.md").read_text()

    code, out = run_cli("evaluate", str(run), "--split", "val")
    assert code == 0, out
    evaluation = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    assert evaluation["split"] == "val" and evaluation["metrics"]["accuracy"] > 0.9  # it learned the blobs

    code, out = run_cli("evaluate", str(run), "--beam-size", "2")
    assert code == 2 and "--beam-size: not an option of `dlhw evaluate` for the toy family; it takes --split" in out
    code, out = run_cli("export", str(run), "--onnx")
    assert code == 2 and "the toy family has no ONNX export" in out
    assert not (run / "export").exists()

    code, out = run_cli("report", "compare", str(run), "--out", str(tmp_path / "cmp"))
    assert code == 0, out
    table = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert "toy" in table and "accuracy" in table
