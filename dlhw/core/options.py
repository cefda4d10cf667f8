"""Options several commands share, so they read and behave the same everywhere, and the check
that a family-specific verb got only the options its family declares.

The batch verbs (``dlhw caption``, ``chat``, ``ner``, ``summarize``, ``tts``) declare their common
options with the decorators below, so every verb spells them, defaults them and documents them
alike: ``--model RUN``, ``--backend``, ``--device`` (``auto`` everywhere), ``--dtype``, ``--batch-size``,
``--shard i/n`` and ``--out`` (the results file; ``--output-dir`` names run directories).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from dlhw.errors import ConfigError

preset_option = click.option(
    "--preset", default="full", show_default=True,
    help="Preset of the recipe: full (real models and data) or tiny (offline, CPU, minutes).",
)
config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    help="A YAML file replacing the recipe's shipped config (same format; a run's config.yaml works).",
)
set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override one config value by dotted key, e.g. --set train.epochs=3 (repeatable).",
)


F = TypeVar("F", bound=Callable[..., Any])

BACKENDS = ("torch", "onnxruntime", "tensorrt")
"""Where a batch verb's model can run (a family may take fewer)."""

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def model_option(help: str, *, required: bool = True, must_exist: bool = True,
                 metavar: str = "RUN") -> Callable[[F], F]:
    """``--model RUN`` (parameter ``model_path``): what the verb runs, described per verb by ``help``.

    ``must_exist=False`` takes names that are not folders here too (a Hub id); ``required=False``
    is for a verb that also takes the run another way (``dlhw chat RUN``).
    """
    kind = click.Path(exists=True, file_okay=False) if must_exist else click.STRING
    return click.option("--model", "model_path", required=required, type=kind, metavar=metavar, help=help)


def backend_option(choices: Sequence[str] = BACKENDS, help: str = "Where the model runs: torch needs a run "
                   "directory; onnxruntime and tensorrt take an export directory or a run with export/onnx "
                   "(`dlhw export RUN --onnx`).") -> Callable[[F], F]:
    """``--backend``, default ``torch``; ``choices`` narrows it for a family that runs on fewer."""
    return click.option("--backend", type=click.Choice(list(choices)), default="torch", show_default=True, help=help)


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # checked by its spelling here, without importing torch (help and usage errors stay instant);
    # whether CUDA is present is asked when the model loads (dlhw.core.devices.resolve_device)
    if not _DEVICE.fullmatch(value):
        raise click.BadParameter(f"{value!r}: use auto (a CUDA GPU when there is one, else the CPU), cpu, cuda "
                                 "or cuda:N", ctx=ctx, param=param)
    return value


def device_option(fn: F) -> F:
    """``--device auto|cpu|cuda|cuda:N``, default ``auto``: the CUDA GPU when there is one, else the CPU."""
    return click.option("--device", default="auto", show_default=True, callback=_check_device, metavar="DEVICE",
                        help="auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N.")(fn)


DTYPES = ("auto", "fp32", "bf16", "fp16")
"""``--dtype`` choices (:func:`dlhw.core.devices.inference_dtype` reads them)."""


def dtype_option(fn: F) -> F:
    """``--dtype auto|fp32|bf16|fp16``, default ``auto``: the torch backend's weights and activations.

    A choice checks the spelling without importing torch; whether the device takes it (fp16 on
    the CPU does not) is asked where the model loads (:func:`dlhw.core.devices.inference_dtype`).
    """
    return click.option("--dtype", type=click.Choice(list(DTYPES)), default="auto", show_default=True,
                        help="--backend torch: the model's precision; auto = bf16 on a CUDA GPU that supports it, "
                             "fp32 on the CPU (bf16 runs there too; fp16 is for CUDA). An ONNX export carries "
                             "its own.")(fn)


def check_dtype(dtype: str, backend: str) -> None:
    """``--dtype`` other than auto goes with ``--backend torch`` only (checked before the model loads)."""
    if dtype != "auto" and backend != "torch":
        raise ConfigError(f"--dtype {dtype} is for --backend torch; an ONNX export carries its own precision (fp32; "
                          "int8 with --int8 from `dlhw export RUN --onnx --int8`, fp16 TensorRT engines from `dlhw "
                          "export RUN --onnx --tensorrt --fp16`, where the family has them)")


def batch_size_option(default: int, help: str) -> Callable[[F], F]:
    """``--batch-size N`` (N >= 1) with the verb's own default and description of what is batched."""
    return click.option("--batch-size", type=click.IntRange(min=1), default=default, show_default=True, help=help)


def shard_option(fn: F) -> F:
    """``--shard i/n``: this job's deterministic share of the inputs (parsed by ``batch.runner.parse_shard``)."""
    return click.option("--shard", default=None, metavar="i/n",
                        help="Process only shard i of n of the inputs (chosen by input key, the same in every "
                             "run), so n jobs with 0/n .. n-1/n cover everything exactly once.")(fn)


int8_option = click.option(
    "--int8", is_flag=True, help="onnxruntime: run the int8 model (`dlhw export RUN --onnx --int8`).",
)
"""For the batch verbs of families with an int8 export (chat, ner, summarize)."""


def _cuda_only(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        import torch

        if not torch.cuda.is_available():
            raise click.BadParameter("static cache + torch.compile (CUDA graphs) runs on a CUDA GPU, and torch "
                                     "sees none here; leave --compile out", ctx, param)
    return value


compile_option = click.option(
    "--compile", "compile_", is_flag=True, callback=_cuda_only,
    help="torch on CUDA: decode with a static KV cache and torch.compile (CUDA graphs); the first batch compiles.",
)
"""For the generation verbs (chat, summarize); refused before anything loads where there is no CUDA GPU."""


def check_compile(compile_: bool, backend: str) -> None:
    """``--compile`` goes with ``--backend torch`` only (checked before the model loads)."""
    if compile_ and backend != "torch":
        from dlhw.errors import ConfigError

        raise ConfigError(f"--compile is for --backend torch; --backend {backend} on CUDA already keeps the KV cache "
                          "on the device (IO binding)")


def out_option(help: str = "Results file: .jsonl or .csv, one record per input. An existing file is continued, "
               "not overwritten.", *, required: bool = True) -> Callable[[F], F]:
    """``--out FILE``: where the verb writes its result records (``--output-dir`` is for run directories)."""
    return click.option("--out", required=required, default=None, type=click.Path(dir_okay=False), metavar="FILE",
                        help=help)


def _flag(ctx: click.Context, name: str) -> str:
    param = next(p for p in ctx.command.params if p.name == name)
    return max(param.opts, key=len)


def family_options(ctx: click.Context, family: Any, verb: str, shared: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options of ``ctx`` that ``family`` takes on ``verb`` (by parameter name, with values).

    An option given on the command line that the family does not declare is a usage error (exit
    2) naming the options it does take; ``shared`` options (arguments, flags every family has)
    are neither checked nor returned.
    """
    accepted = family.options.get(verb, ())
    given = [name for name in ctx.params if name not in shared
             and ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]
    refused = [name for name in given if name not in accepted]
    if refused:
        takes = ", ".join(_flag(ctx, n) for n in accepted) or "no options"
        raise ConfigError(
            f"{_flag(ctx, refused[0])}: not an option of `dlhw {ctx.command_path.split(' ', 1)[-1]}` for the "
            f"{family.name} family; it takes {takes}"
        )
    return {name: ctx.params[name] for name in accepted if name in ctx.params}


def options_epilog(command: click.Command, verb: str) -> str:
    """A help epilog listing, per family, the options it takes on ``verb`` (from the registry)."""
    from dlhw.core.registry import FAMILIES

    flags = {p.name: max(p.opts, key=len) for p in command.params}
    rows = [f"  {name:<10} {', '.join(flags[o] for o in family.options.get(verb, ())) or '(none)'}"
            for name, family in FAMILIES.items() if verb in family.options]
    return "\b\nOptions each family takes:\n" + "\n".join(rows)
