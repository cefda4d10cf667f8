"""``--engine local|ray`` and its options, shared by every batch verb (caption, chat --prompts, ner,
summarize, tts): where the family's predictor runs, never what it answers.

``local`` (the default) runs the predictor in this process (:mod:`dlhw.batch.runner`). ``ray`` runs
it in a Ray Data actor pool (:mod:`dlhw.batch.ray_engine`): ``--workers N`` actors, each with its
own copy of the model and ``--gpus-per-worker`` GPUs, on a Ray instance started for the job or on
the cluster ``--ray-address`` names. Ray is an optional extra (``pip install 'dlhw[ray]'``); this
module only asks whether it is installed, so ``dlhw --help`` and the local engine never import it.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from dlhw.errors import ConfigError

ENGINES = ("local", "ray")
INSTALL_RAY = "pip install 'dlhw[ray]'"
"""The install line a user without Ray is told."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Engine:
    """Where a batch job's predictor runs (the parsed ``--engine`` options)."""

    kind: str = "local"
    """``local`` or ``ray``."""
    address: str | None = None
    """Ray: ``auto`` (the cluster this machine joined with ``ray start``), a cluster address
    (``HOST:6379``, ``ray://HOST:10001``), or None: ``$RAY_ADDRESS`` if set, else a Ray instance
    started on this machine for the job."""
    workers: int = 1
    """Ray: actors in the pool, each holding one copy of the model."""
    gpus_per_worker: float | None = None
    """Ray: GPUs each actor reserves; None = 1 where the cluster has GPUs and ``cpu_only`` is off, else 0."""
    cpu_only: bool = False
    """``--device cpu``: the actors take no GPU unless ``--gpus-per-worker`` says so."""

    @property
    def ray(self) -> bool:
        return self.kind == "ray"

    def local_only(self, what: str) -> None:
        """A usage error when ``what`` (a single-input mode, e.g. ``--text``) is asked of the Ray engine."""
        if self.ray:
            raise ConfigError(f"--engine ray runs batch jobs; {what} runs here: leave --engine ray out")


def require_ray() -> None:
    """A usage error with the install line when Ray is not installed (asked without importing it)."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        found = False
    if not found:
        raise ConfigError(f"--engine ray needs Ray, an optional extra: {INSTALL_RAY}")


def parse_engine(kind: str, address: str | None, workers: int | None, gpus_per_worker: float | None,
                 device: str | None = None) -> Engine:
    """The :class:`Engine` of the options as given; Ray options without ``--engine ray``, or
    ``--engine ray`` without Ray installed, are usage errors (exit 2) before anything loads."""
    if kind != "ray":
        given = [flag for flag, value in (("--ray-address", address), ("--workers", workers),
                                          ("--gpus-per-worker", gpus_per_worker)) if value is not None]
        if given:
            raise ConfigError(f"{given[0]} is an option of the Ray engine: add --engine ray")
        return Engine()
    require_ray()
    return Engine("ray", address, 1 if workers is None else workers, gpus_per_worker, cpu_only=device == "cpu")


_OPTIONS = (
    click.option("--engine", "engine_kind", type=click.Choice(list(ENGINES)), default="local", show_default=True,
                 help="Where the predictor runs: local (this process) or ray (a Ray Data actor pool, one model per "
                      f"actor, on this machine or a cluster; needs {INSTALL_RAY}). Same records either way."),
    click.option("--ray-address", default=None, metavar="ADDRESS",
                 help="--engine ray: the cluster to run on: auto (the cluster this machine joined with `ray "
                      "start`), HOST:6379 or ray://HOST:10001 [default: $RAY_ADDRESS if set, else a Ray instance "
                      "started here for this job]."),
    click.option("--workers", type=click.IntRange(min=1), default=None,
                 help="--engine ray: actors in the pool, each loading the model once [default: 1]."),
    click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=None,
                 help="--engine ray: GPUs each actor reserves (0.5: two actors share a GPU) [default: 1 where the "
                      "cluster has GPUs and --device is not cpu, else 0]."),
)


def engine_options(fn: F) -> F:
    """``--engine``, ``--ray-address``, ``--workers``, ``--gpus-per-worker``: the command receives them
    parsed, as one ``engine: Engine`` argument (usage errors raised before the command body runs)."""

    @functools.wraps(fn)
    def command(*args: Any, engine_kind: str, ray_address: str | None, workers: int | None,
                gpus_per_worker: float | None, **kwargs: Any) -> Any:
        engine = parse_engine(engine_kind, ray_address, workers, gpus_per_worker, kwargs.get("device"))
        return fn(*args, engine=engine, **kwargs)

    for option in reversed(_OPTIONS):
        command = option(command)
    return command  # type: ignore[return-value]
