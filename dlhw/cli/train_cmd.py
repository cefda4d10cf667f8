"""``dlhw train RECIPE``, or ``dlhw train RECIPE RECIPE ...`` and their ``report compare``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dlhw.core import threads as thread_policy
from dlhw.core.options import config_option, preset_option, set_option
from dlhw.errors import ConfigError, DlhwError

if TYPE_CHECKING:
    from dlhw.engine.launch import Nodes


@click.command()
@click.argument("recipes", nargs=-1, required=True, metavar="RECIPE...")
@preset_option
@config_option
@set_option
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/RECIPE/TIMESTAMP]. With several recipes: DIR/RECIPE for each "
                   "run and DIR/compare.md for their comparison.")
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
@click.option("--nnodes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Machines training together (torchrun, c10d rendezvous): run the same command on each, with its "
                   "--node-rank; --output-dir on a filesystem they all share.")
@click.option("--node-rank", type=click.IntRange(min=0), default=0, show_default=True,
              help="This machine's number, 0 to N-1: node 0 prepares the run directory and hosts the rendezvous.")
@click.option("--rdzv-endpoint", default=None, metavar="HOST:PORT",
              help="With --nnodes: node 0's address and a free port there, the same on every node.")
def train_cmd(
    recipes: tuple[str, ...], preset: str, config_file: str | None, overrides: tuple[str, ...], output_dir: str | None,
    data_dir: str | None, resume: str | None, init_from: str | None, overwrite: bool, seed: int | None, nproc: int,
    nnodes: int, node_rank: int, rdzv_endpoint: str | None,
) -> None:
    """Train RECIPE into a run directory (config.yaml, checkpoints/, metrics.jsonl, plots/,
    model/, report.md). `dlhw recipes` lists the recipes. Several recipes train one after another,
    with the same options, and end with their `dlhw report compare`.

    \b
    Examples:
      dlhw train RECIPE --preset tiny                  offline, embedded data, minutes on a CPU
      dlhw train RECIPE --data-dir DIR --set train.epochs=20
      dlhw train RECIPE --preset tiny --output-dir runs/mine --resume
      dlhw train RECIPE --preset tiny --nproc 2        two processes (torchrun + DDP)
      dlhw train RECIPE --nnodes 2 --node-rank R --rdzv-endpoint 10.0.0.1:29400 --nproc 4 --output-dir /shared/run
                                                       on each of two machines (R = 0, 1)
      dlhw train chat-prompt-tuning chat-lora --preset tiny --output-dir runs/methods
                                                       both runs, then runs/methods/compare.md
    """
    thread_policy.prefer_for_preset(preset)  # one thread for a tiny preset, unless threads were asked for
    if len(recipes) > 1:
        _train_several(recipes, preset, config_file, overrides, output_dir, data_dir, resume, init_from, overwrite,
                       seed, nproc, nnodes)
        return
    _train_one(recipes[0], preset, config_file, overrides, output_dir, data_dir, resume, init_from, overwrite, seed,
               nproc, nnodes, node_rank, rdzv_endpoint)


def _train_several(recipes: tuple[str, ...], preset: str, config_file: str | None, overrides: tuple[str, ...],
                   output_dir: str | None, data_dir: str | None, resume: str | None, init_from: str | None,
                   overwrite: bool, seed: int | None, nproc: int, nnodes: int) -> None:
    """Train each recipe into ``output_dir/RECIPE`` (or its default run directory), then compare the runs
    into ``output_dir`` (or ``runs/compare/TIMESTAMP``)."""
    from dlhw.cli.report_cmd import compare_cmd
    from dlhw.core.registry import family_of
    from dlhw.core.runs import default_run_dir

    if resume is not None or nnodes > 1:
        raise ConfigError(f"{'--resume' if resume is not None else '--nnodes'} takes one recipe; train several "
                          "recipes on one machine, from the start")
    if len(set(recipes)) < len(recipes):
        raise ConfigError(f"a recipe is named twice: {' '.join(recipes)}")
    for recipe in recipes:  # every name checked before the first run starts
        family = family_of(recipe)
        if family.train is None:
            raise ConfigError(f"recipe {recipe}: the {family.name} family trains nothing")
    run_dirs = [Path(output_dir) / r if output_dir else default_run_dir(r) for r in recipes]
    for run_dir in run_dirs:
        if not overwrite and run_dir.is_dir() and any(run_dir.iterdir()):
            raise ConfigError(f"{run_dir}: not empty; pass --overwrite to replace it")
    for i, (recipe, run_dir) in enumerate(zip(recipes, run_dirs, strict=True), 1):
        click.echo(f"[{i}/{len(recipes)}] {recipe}")
        _train_one(recipe, preset, config_file, overrides, str(run_dir), data_dir, None, init_from, overwrite, seed,
                   nproc, 1, 0, None)
    click.get_current_context().invoke(compare_cmd, runs=tuple(str(r) for r in run_dirs), out_dir=output_dir)


def _train_one(
    recipe: str, preset: str, config_file: str | None, overrides: tuple[str, ...], output_dir: str | None,
    data_dir: str | None, resume: str | None, init_from: str | None, overwrite: bool, seed: int | None, nproc: int,
    nnodes: int, node_rank: int, rdzv_endpoint: str | None,
) -> None:
    """One recipe: a torchrun worker's share, a multi-node join, or the whole run on this machine.

    The whole run on this machine, or node 0's launcher, holds the run directory's lock
    (:mod:`dlhw.core.locks`) from preparing it to the end; workers and other nodes' launchers do not.
    """
    from dlhw.config import dump_yaml, to_dict
    from dlhw.core.atomic import write_text_atomic
    from dlhw.core.locks import holding
    from dlhw.core.registry import data_dir_overrides, family_of, resolve_config
    from dlhw.core.runs import (
        RunFiles,
        default_run_dir,
        latest_checkpoint,
        latest_run,
        prepare_run_dir,
    )
    from dlhw.engine.launch import Nodes, in_distributed_worker, launch, world

    family = family_of(recipe)
    if family.train is None:
        raise ConfigError(f"recipe {recipe}: the {family.name} family trains nothing; "
                          f"it works with: {', '.join(family.verbs())}")
    if in_distributed_worker():
        # started by `--nproc` (or accelerate launch): the launcher prepared the run directory
        if not output_dir:
            raise ConfigError("every process of a multi-process run needs the same --output-dir")
        run_dir = Path(output_dir)
        if config_file and Path(config_file) == RunFiles(run_dir).config and Path(config_file).is_file():
            preset = _saved_preset(Path(config_file))  # the run's own config names its preset (another node's --preset)
        config = resolve_config(recipe, preset, config_file, overrides, seed)
        checkpoint = Path(resume) if resume and resume != "latest" else (
            latest_checkpoint(run_dir) if resume else None)
        if world()[0] == 0 and not RunFiles(run_dir).config.is_file():  # accelerate launch: no launcher
            write_text_atomic(RunFiles(run_dir).config, dump_yaml(to_dict(config)))
        family.require("train")(config, run_dir, checkpoint)
        return
    nodes = Nodes(nnodes, node_rank, rdzv_endpoint)
    if nnodes > 1 and not output_dir:
        raise ConfigError(f"--nnodes {nnodes} needs --output-dir: the same run directory on every node, on a "
                          "filesystem they all share")
    if not nodes.first:
        _join(nproc, recipe, Path(output_dir), preset, resume, nodes)  # type: ignore[arg-type]
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
    # the launching process alone holds the run's lock, for the whole run (its evaluation included):
    # torchrun's workers do not inherit it and never take it (see in_distributed_worker above)
    with holding(run_dir):
        prepare_run_dir(run_dir, overwrite=overwrite, resume=bool(resume))
        files = RunFiles(run_dir)
        write_text_atomic(files.config, dump_yaml(to_dict(config)))
        click.echo(f"run directory: {run_dir}" + (f" (resuming from {checkpoint})" if checkpoint else ""))
        if nproc > 1 or nnodes > 1:
            code = launch(nproc, recipe, run_dir, config.preset, checkpoint, nodes)
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


def _join(nproc: int, recipe: str, run_dir: Path, preset: str, resume: str | None, nodes: Nodes) -> None:
    """Node R > 0 of a multi-node run: start this node's workers on node 0's run directory, untouched
    here; they read its config.yaml once every node has joined (see :mod:`dlhw.engine.launch`)."""
    from dlhw.engine.launch import launch

    if resume is not None and resume != "latest" and not (Path(resume) / "trainer_state.json").is_file():
        raise ConfigError(f"--resume {resume}: not a complete checkpoint folder")
    click.echo(f"node {nodes.rank} of {nodes.count}: training into {run_dir} (node 0 prepares it)"
               + (f", resuming from {resume}" if resume else ""))
    code = launch(nproc, recipe, run_dir, preset, resume, nodes)
    if code != 0:
        raise DlhwError(f"torchrun exited with code {code}; see the worker logs above")
    click.echo(f"done: node {nodes.rank} of {nodes.count}")


def _saved_preset(path: Path) -> str:
    from dlhw.config import load_yaml

    return str(load_yaml(path).get("preset", "full"))
