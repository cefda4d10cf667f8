"""What a pruned run reports: sparsity per module and overall, a bar chart, and the disk sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_text_atomic
from dlhw.core.runs import RunFiles, model_file_sizes, read_json, run_config_dict
from dlhw.reports.plots import plt, save_figure


def plot_sparsity(layers: list[dict[str, Any]], overall: float, path: Path, title: str) -> Path:
    """One bar per pruned module (zeros / total) with the overall sparsity as a line."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(layers) + 2), 4.2))
    ax.bar(range(len(layers)), [100 * layer["sparsity"] for layer in layers], color="tab:blue")
    ax.axhline(100 * overall, color="black", ls="--", lw=1, label=f"all pruned modules: {100 * overall:.1f}%")
    ax.set_xticks(range(len(layers)), [layer["name"] for layer in layers], rotation=90, fontsize=7)
    ax.set_ylabel("zeros (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def sparsity_table(summary: dict[str, Any]) -> list[str]:
    lines = ["| module | zeros | total | sparsity |", "|---|---:|---:|---:|"]
    lines += [f"| {row['name']} | {row['zeros']:,} | {row['total']:,} | {100 * row['sparsity']:.2f}% |"
              for row in summary["layers"]]
    pruned, whole = summary["pruned_modules"], summary["model"]
    lines.append(f"| **all pruned modules** | {pruned['zeros']:,} | {pruned['total']:,} | "
                 f"{100 * pruned['sparsity']:.2f}% |")
    lines.append(f"| **whole model** | {whole['zeros']:,} | {whole['total']:,} | {100 * whole['sparsity']:.2f}% |")
    return lines


def pruning_section(run_dir: Path, shown_as: Path | None = None) -> list[str]:
    """The run report's section on sparsity (pruned runs and runs re-fine-tuned from one), else nothing;
    its ``--init-from`` names ``shown_as`` (default ``run_dir``: see :func:`write_run_report`)."""
    summary = read_json(RunFiles(run_dir).sparsity)
    if not summary:
        return []
    how = (f"{summary['method']} {summary['pattern']}, scope {summary['scope']}"
           + ("" if summary["pattern"] == "2:4" else f", amount {summary['amount']:.0%}"))
    if summary.get("init_from"):
        lines = ["## Sparsity", "",
                 f"Trained from the pruned run `{summary['init_from']}` ({how}) with its zeros held at zero: "
                 f"{summary['pruned_modules']['zeros']:,} zeros in the pruned modules after training "
                 f"({100 * summary['pruned_modules']['sparsity']:.2f}%).", ""]
    else:
        lines = ["## Pruning", "",
                 f"Pruned from `{summary['parent']}` ({how}). Re-fine-tune with "
                 f"`dlhw train {run_config_dict(run_dir).get('recipe', 'RECIPE')} --init-from {shown_as or run_dir}` "
                 "(the zeros stay zero).", "",
                 "![sparsity per module](plots/sparsity.png)", "", *sparsity_table(summary), ""]
    pruned = model_file_sizes(run_dir)
    dense = summary.get("size", {}).get("dense")
    lines += ["| model files | raw | gzip |", "|---|---:|---:|"]
    if dense:
        lines.append(f"| dense (parent) | {dense['raw_bytes'] / 2**20:.3f} MiB | {dense['gzip_bytes'] / 2**20:.3f} MiB |")
    lines += [f"| this run | {pruned['raw_bytes'] / 2**20:.3f} MiB | {pruned['gzip_bytes'] / 2**20:.3f} MiB |", "",
              "Zeros stored densely take the same raw space; they compress. Unstructured zeros give no speed-up "
              "with dense kernels; a 2:4 pattern can run on a GPU's sparse tensor cores "
              "(`torch.sparse.to_sparse_semi_structured`).", ""]
    return lines


def write_pruning_files(run_dir: Path, summary: dict[str, Any]) -> None:
    """``sparsity.md`` and ``plots/sparsity.png`` of a pruned run."""
    how = (f"{summary['method']} {summary['pattern']}, scope {summary['scope']}"
           + ("" if summary["pattern"] == "2:4" else f", amount {summary['amount']:.0%}"))
    write_text_atomic(run_dir / "sparsity.md", "\n".join(sparsity_table(summary)) + "\n")
    plot_sparsity(summary["layers"], summary["pruned_modules"]["sparsity"], RunFiles(run_dir).plot("sparsity.png"),
                  f"Sparsity per module ({how})")
