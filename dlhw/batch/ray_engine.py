"""``--engine ray``: a batch job's predictor in a Ray Data actor pool, on one machine or a cluster.

The driver (the ``dlhw`` process) does what the local engine does around the model
(:func:`dlhw.batch.runner.run_batches`): it lists the inputs once, keeps its shard, drops what the
output already holds, and alone writes the output file, batch by batch, flushed -- so the records,
their order and the resume rules are the local engine's. Only the pending inputs go to Ray, cut
into the local engine's batches (``--batch-size``), one dataset row per batch holding its keys and
raw inputs (a path, a line of text; files are opened by the actors, not the driver). An actor opens
the family's predictor once (``open_predictor``, a picklable factory) and turns each row into that
batch's records with :func:`~dlhw.batch.runner.batch_records`, the local engine's own function.
Rows come back in order (``preserve_order``), so a batch's records are written as soon as every
batch before it is.

What a failure costs:

- An actor dies (its process killed, its node lost): Ray restarts it (``max_restarts``) and runs
  the batches it held again (``max_task_retries``); their records reach the driver once, so the
  output has no gap and no duplicate. ``DLHW_FAULT=kill-actor-at-batch:N`` (a testing aid,
  :mod:`dlhw.core.faults`) SIGKILLs the actor computing batch N, before it returns, once per job
  (not again after the restart).
- The driver dies: the batches in flight are lost, nothing written is; a rerun with the same
  ``--out`` skips what the output holds. ``DLHW_FAULT=kill-after-batch:N`` kills the driver right
  after it wrote batch N, as with the local engine.
- The model does not open (a wrong ``--model``): the actor keeps the error and the driver raises it
  as the local engine would (a usage error exits 2), leaving no output file behind.

Where it runs (``--ray-address``): by default a Ray instance started on this machine for the job
(as many CPUs as the machine or the pool has, no dashboard, Ray's logs in its session folder under
/tmp/ray), stopped at the end -- or the cluster ``RAY_ADDRESS`` names (inside a Ray job); ``auto``
joins the cluster this machine joined with ``ray start``, an address any other. A cluster's nodes
need dlhw installed (the Docker image, or ``pip install 'dlhw[ray]'``) and must see the model and
the input files at the same paths (a shared filesystem): an actor works in the driver's current
directory where its node has one, so relative paths mean there what they mean to the driver, and
tts's actors write the WAVs, so ``--wav-dir`` must be shared too. In a process that already called
``ray.init`` (a notebook, the tests) the job runs on that instance and leaves it running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dlhw.batch.options import INSTALL_RAY, Engine
from dlhw.batch.runner import (
    JobSummary,
    LoadedItems,
    Records,
    ResultWriter,
    batch_records,
    input_loader,
    run_batches,
)
from dlhw.core.family import Predictor
from dlhw.core.faults import fault_point
from dlhw.core.inputs import InputItem, printable_key
from dlhw.core.threads import usable_cpus
from dlhw.errors import ConfigError, DataError, DlhwError

ACTOR_RESTARTS = 3
"""How often Ray restarts a dead actor (and retries each batch it held) before the job fails; a
rerun then continues from the output."""


def import_ray() -> Any:
    """The ``ray`` module, or the usage error naming the install line."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ConfigError(f"--engine ray needs Ray, an optional extra: {INSTALL_RAY} ({err})") from None
    return ray


class PredictorActor:
    """One actor of the pool: the family's predictor, opened once, applied to whole batches.

    Takes rows ``{"batch": N, "payload": JSON [[key, raw], ...]}`` (:func:`_encode_inputs`) and returns per
    row the batch's records as JSON (``"records"``) and the predictor's ``result_key``; when the predictor
    would not open, ``"error"`` holds the error as JSON (:func:`_encode_error`), for the driver to raise.
    """

    def __init__(self, open_predictor: Callable[[], Predictor], kill_at: int | None = None, cwd: str | None = None):
        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)  # the driver's directory: relative paths (inputs, --model, --wav-dir) mean what they mean there
        self.kill_at = kill_at
        self.predictor: Predictor | None = None
        self.error = ""
        try:
            self.predictor = open_predictor()
        except Exception as err:  # noqa: BLE001 - raised by the driver, where the local engine would raise it
            self.error = _encode_error(err)

    def __call__(self, rows: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"batch": [], "records": [], "result_key": [], "error": []}
        for number, payload in zip(rows["batch"], rows["payload"], strict=True):
            records: Records = []
            if self.predictor is not None:
                pairs = _decode_inputs(payload)
                keys = [key for key, _ in pairs]
                loaded = LoadedItems(keys, input_loader(self.predictor, dict(pairs)))
                records = batch_records(keys, [loaded[i] for i in range(len(keys))], self.predictor.predict)
                self._maybe_die(int(number))
            out["batch"].append(int(number))
            out["records"].append(json.dumps(records))  # ASCII: Arrow strings take no lone surrogate
            out["result_key"].append(self.predictor.result_key if self.predictor is not None else "")
            out["error"].append(self.error)
        return out

    def _maybe_die(self, number: int) -> None:
        """``DLHW_FAULT=kill-actor-at-batch:N``: die computing batch N, unless this actor is the restart."""
        import ray

        if number == self.kill_at and not ray.get_runtime_context().was_current_actor_reconstructed:
            os.kill(os.getpid(), signal.SIGKILL)


def _encode_inputs(pairs: list[tuple[str, Any]]) -> str:
    """A batch's ``(key, raw)`` pairs as JSON (ASCII, so lone surrogates of non-UTF-8 names survive):
    a raw input is a path (a file the actor opens) or an :class:`~dlhw.core.inputs.InputItem`."""
    def raw(value: Any) -> dict[str, Any]:
        if isinstance(value, InputItem):
            return {"item": dataclasses.asdict(value)}
        return {"path": os.fspath(value)}

    return json.dumps([[key, raw(value)] for key, value in pairs])


def _decode_inputs(payload: str) -> list[tuple[str, Any]]:
    return [(key, InputItem(**raw["item"]) if "item" in raw else raw["path"]) for key, raw in json.loads(payload)]


_ERRORS: dict[str, type[Exception]] = {e.__name__: e for e in (ConfigError, DataError, DlhwError)}


def _encode_error(err: Exception) -> str:
    """dlhw's own errors keep their kind (so a usage error still exits 2); any other arrives as its text."""
    kind = type(err).__name__
    return json.dumps({"kind": kind if kind in _ERRORS else "DlhwError",
                       "message": str(err) if kind in _ERRORS else f"{kind}: {err}"})


def _decode_error(text: str) -> Exception:
    error = json.loads(text)
    return _ERRORS[error["kind"]](error["message"])


def run_on_ray(open_predictor: Callable[[], Predictor], items: Mapping[Any, Any], writer: ResultWriter,
               batch_size: int, engine: Engine, desc: str = "processing", unit: str = "item") -> JobSummary:
    """:func:`~dlhw.batch.runner.run_predictor` with the predictor in ``engine``'s actor pool: every
    input of ``items`` not yet in ``writer`` gets one record, written here."""
    ray = import_ray()

    def batches(todo: list[Any]) -> Iterator[Records]:
        chunks = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        with ray_instance(ray, engine):
            # batches come back in input order, as with the local engine (a batch waits for those before it)
            ray.data.DataContext.get_current().execution_options.preserve_order = True
            rows = [{"batch": n, "payload": _encode_inputs([(printable_key(key), items[key]) for key in chunk])}
                    for n, chunk in enumerate(chunks, start=1)]
            with warnings.catch_warnings():
                # Ray 2.60 takes actor restarts only as extra ``ray.remote`` arguments, which it marks
                # deprecated (removal planned for 2.64, hence the extra's upper bound)
                warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
                dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                    PredictorActor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=engine.workers),
                    fn_constructor_args=(open_predictor, fault_point("kill-actor-at-batch"), os.getcwd()),
                    max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS, **_gpus(ray, engine))
            for row in dataset.iter_rows():
                if row["error"]:
                    raise _decode_error(row["error"])
                writer.result_key = row["result_key"]
                yield json.loads(row["records"])

    return run_batches(list(items), writer, batches, desc, unit)


def _gpus(ray: Any, engine: Engine) -> dict[str, float]:
    """``num_gpus`` for the actors: ``--gpus-per-worker``, or one each where the cluster has GPUs."""
    available = ray.cluster_resources().get("GPU", 0)
    gpus = engine.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if available and not engine.cpu_only else 0.0
    if gpus > available:
        raise ConfigError(f"--gpus-per-worker {gpus:g}: the Ray cluster has {available:g} GPUs; ask for fewer, or "
                          "0 to run the actors on CPUs")
    return {"num_gpus": gpus} if gpus else {}


@contextlib.contextmanager
def ray_instance(ray: Any, engine: Engine) -> Iterator[None]:
    """Connected to Ray for the job: the instance this process already has, the cluster at
    ``engine.address``, or a local instance started here and stopped at the end."""
    started = not ray.is_initialized()
    if started:
        # "local" starts an instance even where `ray start` ran on this machine (that one is --ray-address auto)
        address = engine.address or os.environ.get("RAY_ADDRESS") or "local"
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR}
        if address == "local":
            options["num_cpus"] = max(usable_cpus().count, engine.workers)
        ray.init(address=address, **options)
    _quiet(ray)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _quiet(ray: Any) -> None:
    """Ray Data's progress and execution lines stay in its log file; our progress bar is the job's.
    Its warnings still reach the terminal."""
    from ray.util.debug import log_once

    ray.data.DataContext.get_current().enable_progress_bars = False
    log_once("ray_data_progress_manager_disabled")  # its notice that the bars are off: marked as given
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)
