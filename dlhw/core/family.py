"""What a model family declares: the :class:`Family` type, its recipes, its export, and typed hooks.

Each family package (``dlhw/families/<name>/__init__.py``) builds one :class:`Family` named
``FAMILY``; :mod:`dlhw.core.registry` lists the packages. The shared commands (``train``,
``evaluate``, ``export``, the batch verbs, ``report``, ``prune``, ``data inspect``, ``prompt``) ask
a family what it offers and never branch on its name.

Hooks are typed: each field's Protocol says how the shared code calls it, and mypy checks every
family's functions against it. They are still imported lazily -- a family package binds its hooks
with :func:`lazy`, which imports the implementing module on the first call -- so listing recipes
or ``dlhw --help`` imports no torch. Under ``TYPE_CHECKING`` the family imports the real functions
instead, which is what mypy sees::

    if TYPE_CHECKING:
        from dlhw.families.caption.train import train_caption
    else:
        train_caption = lazy("dlhw.families.caption.train:train_caption")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from dlhw.core.imports import import_string
from dlhw.errors import ConfigError

TRAINING_SECTION = "training"
"""In ``Family.report_sections``: where the shared training section (steps, time, loss curve) goes."""


class TrainHook(Protocol):
    def __call__(self, config: Any, run_dir: Path, resume_from: Path | None = None) -> dict[str, Any]: ...


class ExportLoad(Protocol):
    """The run's model, loaded once for the whole export (and the torch reference computed)."""

    def __call__(self, run_dir: Path) -> Any: ...


class Exporter(Protocol):
    """Writes the ONNX files into ``out_dir``; returns ``export.json``'s content so far."""

    def __call__(self, job: Any, out_dir: Path, opset: int) -> dict[str, Any]: ...


class ExportChecker(Protocol):
    """Runs the same inputs through torch and ONNX Runtime; raises beyond ``atol``. The parity
    report holds ``max_abs_diff``, ``atol`` and a one-line ``summary``."""

    def __call__(self, job: Any, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]: ...


class EngineBuilder(Protocol):
    """Builds TensorRT engines for the export's graphs; returns the settings ``export.json`` keeps."""

    def __call__(self, out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]: ...


class Int8Exporter(Protocol):
    """Writes an int8 model next to the fp32 one and reports the quality change (``summary``);
    ``force`` keeps it even where the family's quality gate refuses it."""

    def __call__(self, job: Any, out_dir: Path, force: bool = False) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HfExport:
    """What ``dlhw export RUN --hf`` wrote, as the model card tells it."""

    form: str
    """``merged model`` (adapters merged into the base), ``model`` (the weights as trained), or ``PEFT adapter``
    (soft prompts, which cannot be merged: the adapter folder plus the base id)."""
    library: str
    """The library that loads the folder: ``transformers`` or ``peft``."""
    pipeline_tag: str
    """The Hub task: ``text-generation``, ``token-classification``, ``text-to-speech``, ..."""
    base_model: str | None
    """Hub id of the model it was fine-tuned from (None for dlhw's tiny bases, which are not on the Hub)."""
    method: str
    """How it was trained (``lora``, ``dora``, ``prompt-tuning``, ``full``, ``none (prompted as is)``, ...)."""
    load: str
    """Python lines that load it (the card's usage block)."""
    check: str
    """One line: what was compared between the run and the reloaded folder, and the result."""
    limits: tuple[str, ...] = ()
    """What the folder does not carry or differs in (dlhw-only pre- or post-processing)."""


class HfExporter(Protocol):
    """``dlhw export RUN --hf``: writes a folder Hugging Face libraries load offline into ``out_dir`` and
    checks it against the run (raising where it differs)."""

    def __call__(self, run_dir: Path, out_dir: Path) -> HfExport: ...


@dataclass(frozen=True)
class HubAsset:
    """One model or dataset a config names, as ``dlhw download`` fetches it."""

    kind: str
    """``model`` or ``dataset`` (the Hugging Face Hub), or ``url`` (a file torch keeps in ``TORCH_HOME``)."""
    repo_id: str
    """Hub id, or the URL of a ``url`` asset."""
    purpose: str
    """Which config key names it (``model.name``, ``eval.bertscore_model``, ...)."""
    revision: str | None = None
    """Branch, tag or commit; None = the default branch."""
    config_name: str | None = None
    """A dataset's configuration (``3.0.0``, ``fa``): what ``load_dataset`` prepares."""


class HubAssets(Protocol):
    """The Hub models and datasets a resolved config reads (none for local and embedded sources)."""

    def __call__(self, config: Any) -> list[HubAsset]: ...


class ReportSection(Protocol):
    """Markdown lines of one run-report section."""

    def __call__(self, run_dir: Path, config: dict[str, Any], summary: dict[str, Any],
                 evaluation: dict[str, Any]) -> list[str]: ...


class DataInspector(Protocol):
    """``dlhw data inspect``: figures into ``out_dir``; returns the numbers it prints."""

    def __call__(self, config: Any, out_dir: str | Path) -> dict[str, Any]: ...


class ModelLoader(Protocol):
    """The run's model as trained (frozen parts frozen) and a label (``dlhw model summary``, pruning)."""

    def __call__(self, run_dir: Path) -> tuple[Any, str]: ...


class Calibration(Protocol):
    """A few training batches of the run's data as forward kwargs (activation-aware pruning)."""

    def __call__(self, run_dir: Path, n_batches: int) -> list[dict[str, Any]]: ...


class Predictor(Protocol):
    """The one batch interface: a model opened once, applied to batches of loaded inputs.

    Every batch verb and the batch engines call it the same way (:func:`dlhw.batch.runner.run_predictor`):
    ``load(key, raw)`` turns one read input (an image path, a prompt, a line of text, a document) into
    what ``predict`` takes -- it runs in loader workers and may raise, and the input then gets an error
    record; ``predict(batch)`` returns one record (a JSON-able mapping with ``result_key`` among its
    keys) per loaded input, in order. ``throughput()`` is the verb's closing line (tokens/s, ...).
    """

    result_key: str
    """The record key holding the main result (``caption``, ``answer``, ``summary``, ...)."""

    def load(self, key: str, raw: Any) -> Any: ...

    def predict(self, batch: list[Any]) -> list[dict[str, Any]]: ...

    def throughput(self, seconds: float) -> str | None: ...


PredictorFactory = Callable[..., Predictor]
"""``open_predictor(run_or_export, backend="torch", device="auto", **family_options) -> Predictor``: the
options differ per family (beam size, shots, speaker, ...), the result is always a :class:`Predictor`."""


class LazyHook:
    """A callable that imports ``module:name`` on its first call (so the registry stays light)."""

    def __init__(self, target: str):
        module, sep, name = target.partition(":")
        if not sep or not module or not name:
            raise ValueError(f"{target!r}: expected 'package.module:name'")
        self.target = target
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._resolved is None:
            self._resolved = import_string(self.target)
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"


def lazy(target: str) -> Any:
    """A hook bound by import string, imported on first call (see the module docstring)."""
    return LazyHook(target)


def resolve_hook(hook: Any) -> Any:
    """The function behind a hook (the target of a lazy one), for signature checks."""
    return hook.resolve() if isinstance(hook, LazyHook) else hook


@dataclass(frozen=True)
class ExportSpec:
    """How a family's runs become ONNX, and how the export is checked."""

    load: ExportLoad
    exporter: Exporter
    checker: ExportChecker
    atol: float
    """Largest allowed |torch - ONNX Runtime| difference (fp32) unless ``--atol`` says otherwise."""
    opset: int = 17
    """Default ONNX opset (``--opset`` overrides)."""
    tensorrt: EngineBuilder | None = None
    """None: the family's exports run on ONNX Runtime only (``--tensorrt`` is refused up front)."""
    int8: Int8Exporter | None = None
    int8_gate: bool = False
    """The int8 export refuses a quantization that costs too much quality (``--force`` overrides)."""
    hf: HfExporter | None = None
    """``--hf``: a Hugging Face folder (save_pretrained or PEFT adapter) with a model card; None refuses it."""
    no_hf_because: str = ""
    """Why there is no ``--hf`` export, for the one-line refusal."""

    def options(self) -> tuple[str, ...]:
        """The ``dlhw export`` options this export takes (by parameter name)."""
        names = ["opset", "out", "atol"]
        if self.tensorrt is not None:
            names += ["tensorrt", "fp16", "max_batch"]
        if self.int8 is not None:
            names.append("int8")
        if self.int8_gate:
            names.append("force")
        return tuple(names)


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str
    summary: str
    pins: tuple[tuple[str, Any], ...] = ()
    """Dotted config keys the recipe fixes (``("method.kind", "lora")``): the one place that says
    what a recipe trains; a ``--set`` that contradicts a pin is an error naming the right recipe."""
    yaml: Path | None = None
    """The recipe's YAML; None = ``dlhw/configs/<name>.yaml`` (shipped with the package)."""

    @property
    def config_file(self) -> Path:
        if self.yaml is not None:
            return self.yaml
        return Path(str(resources.files("dlhw.configs").joinpath(f"{self.name}.yaml")))


@dataclass(frozen=True)
class Family:
    """One model family: what the shared commands may do with its runs."""

    name: str
    summary: str
    config_class: type
    """The family's config (a :class:`dlhw.config.RunConfig` subclass)."""
    recipes: tuple[Recipe, ...]
    evaluate: Callable[..., dict[str, Any]]
    """``(run_dir, **options) -> {"metrics": ...}``; options as in ``options["evaluate"]``."""
    train: TrainHook | None = None
    """None for a family that trains nothing (prompting)."""
    export: ExportSpec | None = None
    """None when the family's runs cannot be exported."""
    predictor: PredictorFactory | None = None
    """Opens a run or export for the batch verb and the batch engines."""
    batch_verb: str | None = None
    """Name of the family's batch command (``caption``, ``chat``, ...), registered by the CLI."""
    batch_command: str | None = None
    """``module:command`` implementing ``batch_verb`` (imported when the CLI is built)."""
    prompt_tasks: dict[str, str] = field(default_factory=dict)
    """``dlhw prompt TASK`` subcommands: task name -> ``module:command`` (imported when run)."""
    report_sections: tuple[ReportSection | str, ...] = ()
    """Run-report sections in order, with :data:`TRAINING_SECTION` where the shared one goes."""
    metrics: tuple[tuple[str, str], ...] = ()
    """Headline metrics ``(key in eval.json "metrics", label)``: comparison columns and bar panels."""
    inspect: DataInspector | None = None
    """Behind ``dlhw data inspect FAMILY``."""
    load_model: ModelLoader | None = None
    data_dir: tuple[str, ...] = ()
    """``--set`` items that ``train --data-dir DIR`` (and ``data inspect --data-dir``) stand for;
    ``{dir}`` is replaced by DIR."""
    calibration: Calibration | None = None
    evaluate_options: tuple[str, ...] = ()
    """Options ``dlhw evaluate`` takes for this family (by parameter name)."""
    hub_assets: HubAssets | None = None
    """The Hub models and datasets a config of the family reads (``dlhw download``, the model card)."""

    @property
    def options(self) -> dict[str, tuple[str, ...]]:
        """Options accepted per shared verb (``evaluate``, ``export``, ``inspect``), by parameter name."""
        out = {"evaluate": self.evaluate_options}
        if self.export is not None:
            out["export"] = self.export.options()
        if self.inspect is not None:
            out["inspect"] = ("data_dir", "preset", "overrides", "out_dir")
        return out

    def verbs(self) -> list[str]:
        """The commands that work on this family's recipes and runs."""
        verbs = ["train"] if self.train else []
        verbs.append("evaluate")
        if self.export:
            verbs.append("export")
        if self.batch_verb:
            verbs.append(self.batch_verb)
        verbs += [f"prompt {task}" for task in self.prompt_tasks]
        if self.inspect:
            verbs.append("data inspect")
        return verbs

    def require(self, capability: str) -> Any:
        """The hook behind ``capability`` or a one-line error saying the family has none."""
        hook = getattr(self, capability)
        if hook is None:
            raise ConfigError(f"the {self.name} family has no {capability.replace('_', ' ')}")
        return hook

