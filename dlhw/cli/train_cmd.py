"""``dlhw train RECIPE``."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from dlhw.core.options import config_option, preset_option, set_option
from dlhw.errors import ConfigError, DlhwError


@click.command()
@click.argument("recipe")
@preset_option
@config_option
@set_option
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/RECIPE/TIMESTAMP].")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The family's local data in DIR (its native files; the README's Data section "
                   "lists each family's layout).")
@click.option("--resume", is_flag=False, flag_value="latest", default=None, metavar="[CHECKPOINT]",
              help="Continue a run from its last checkpoint (or the CHECKPOINT folder given). Without "
                   "--output-dir, the newest run of RECIPE is continued.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False), default=None, metavar="RUN",
              help="Start from another run's weights (matched by name); from a pruned run its zeros stay "
                   "zero through training (same as --set train.init_from=RUN).")
@click.option("--overwrite", is_flag=True, help="Empty a non-empty --output-dir first.")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes on this machine (torchrun + DDP: gloo on CPU, nccl on GPU).")
def train_cmd(
    recipe: str, preset: str, config_file: str | None, overrides: tuple[str, ...], output_dir: str | None,
    data_dir: str | None, resume: str | None, init_from: str | None, overwrite: bool, seed: int | None, nproc: int,
) -> None:
    """Train RECIPE into a run directory (config.yaml, checkpoints/, metrics.jsonl, plots/,
    model/, report.md). `dlhw recipes` lists the recipes.

    \b
    Examples:
      dlhw train RECIPE --preset tiny                  offline, embedded data, minutes on a CPU
      dlhw train RECIPE --data-dir DIR --set train.epochs=20
      dlhw train RECIPE --preset tiny --output-dir runs/mine --resume
      dlhw train RECIPE --preset tiny --nproc 2        two processes (torchrun + DDP)
    """
    from dlhw.config import dump_yaml, to_dict
    from dlhw.core.atomic import write_text_atomic
    from dlhw.core.registry import data_dir_overrides, family_of, resolve_config
    from dlhw.core.runs import (
        RunFiles,
        default_run_dir,
        latest_checkpoint,
        latest_run,
        prepare_run_dir,
    )
    from dlhw.engine.launch import in_distributed_worker, launch, world

    family = family_of(recipe)
    if family.train is None:
        raise ConfigError(f"recipe {recipe}: the {family.name} family trains nothing; "
                          f"it works with: {', '.join(family.verbs())}")
    if in_distributed_worker():
        # started by `--nproc` (or accelerate launch): the launcher prepared the run directory
        if not output_dir:
            raise ConfigError("every process of a multi-process run needs the same --output-dir")
        run_dir = Path(output_dir)
        config = resolve_config(recipe, preset, config_file, overrides, seed)
        checkpoint = Path(resume) if resume and resume != "latest" else (
            latest_checkpoint(run_dir) if resume else None)
        if world()[0] == 0 and not RunFiles(run_dir).config.is_file():  # accelerate launch: no launcher
            write_text_atomic(RunFiles(run_dir).config, dump_yaml(to_dict(config)))
        family.require("train")(config, run_dir, checkpoint)
        return
    if data_dir:
        overrides = (*data_dir_overrides(family, data_dir), *overrides)
    if init_from:
        overrides = (f"train.init_from={Path(init_from).resolve()}", *overrides)
    checkpoint = None
    if resume:
        if overwrite:
            raise ConfigError("--resume and --overwrite contradict each other; pick one")
        if resume != "latest":
            checkpoint = Path(resume)
            if not (checkpoint / "trainer_state.json").is_file():
                raise ConfigError(f"--resume {checkpoint}: not a complete checkpoint folder")
            run_dir = Path(output_dir) if output_dir else checkpoint.parent.parent
        else:
            run_dir = Path(output_dir) if output_dir else latest_run(recipe)  # type: ignore[assignment]
            if run_dir is None:
                raise ConfigError(f"--resume: no run of {recipe} under runs/; pass --output-dir")
            checkpoint = latest_checkpoint(run_dir)
            if checkpoint is None:
                raise ConfigError(f"--resume: {run_dir} has no complete checkpoint to continue from")
        saved = RunFiles(run_dir).config
        if not saved.is_file():
            raise ConfigError(f"--resume: {run_dir} has no {saved.name}")
        config = resolve_config(recipe, preset=_saved_preset(saved), config_file=saved,
                                overrides=overrides, seed=seed)
    else:
        config = resolve_config(recipe, preset, config_file, overrides, seed)
        run_dir = Path(output_dir) if output_dir else default_run_dir(recipe)
    prepare_run_dir(run_dir, overwrite=overwrite, resume=bool(resume))
    files = RunFiles(run_dir)
    write_text_atomic(files.config, dump_yaml(to_dict(config)))
    click.echo(f"run directory: {run_dir}" + (f" (resuming from {checkpoint})" if checkpoint else ""))
    if nproc > 1:
        code = launch(nproc, recipe, run_dir, config.preset, checkpoint)
        if code != 0:
            raise DlhwError(f"torchrun exited with code {code}; see the worker logs above")
        click.echo(f"done: model in {files.model}, report in {files.report}")
        return
    train = family.require("train")
    try:
        train(config, run_dir, checkpoint)
    except Exception:
        if not resume and [p.name for p in run_dir.iterdir()] == [files.config.name]:
            shutil.rmtree(run_dir)  # failed before anything but its config: leave no empty run
        raise
    click.echo(f"done: model in {files.model}, report in {files.report}")


def _saved_preset(path: Path) -> str:
    from dlhw.config import load_yaml

    return str(load_yaml(path).get("preset", "full"))
