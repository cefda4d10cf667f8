"""The README's tables that come from the family registry, generated from it.

The README holds each between marker comments, ``<!-- registry:NAME -->`` ... ``<!-- /registry:NAME -->``;
``tests/test_readme.py`` fails while they differ from what this script generates.

    python scripts/readme_tables.py            # print every table (to paste)
    python scripts/readme_tables.py --check    # exit 1, naming the tables, when README.md is out of date
    python scripts/readme_tables.py --write    # rewrite the tables in README.md in place
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

README = Path(__file__).resolve().parent.parent / "README.md"
MARKED = re.compile(r"<!-- registry:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /registry:(?P=name) -->", re.S)


def _flags(command: object) -> dict[str, str]:
    """Parameter name -> its longest flag (``beam_size`` -> ``--beam-size``), as the command spells it."""
    return {p.name: max(p.opts, key=len) for p in command.params if p.name}  # type: ignore[attr-defined]


def _codes(items: list[str]) -> str:
    return ", ".join(f"`{i}`" for i in items) or "—"


def registry_tables() -> dict[str, str]:
    """Every registry table of the README, by marker name, as it should read (ending in a newline)."""
    from dlhw.cli import cli
    from dlhw.cli.evaluate_cmd import evaluate_cmd
    from dlhw.cli.export_cmd import export_cmd
    from dlhw.core.registry import FAMILIES

    recipes = CliRunner().invoke(cli, ["recipes"], catch_exceptions=False).output
    evaluate, export = _flags(evaluate_cmd), _flags(export_cmd)
    rows_evaluate = [f"| {name} | {_codes([evaluate[o] for o in f.evaluate_options])} |" for name, f in FAMILIES.items()]
    rows_export = [
        f"| {name} | {_codes([export[o] for o in f.export.options()])} | {'yes' if f.export.hf else 'no'} |"
        for name, f in FAMILIES.items() if f.export is not None
    ]
    rows_verbs = [
        f"| {name} | {_codes([f'dlhw {f.batch_verb}'] if f.batch_verb else [])} | "
        f"{_codes([f'dlhw prompt {t}' for t in f.prompt_tasks])} |"
        for name, f in FAMILIES.items()
    ]
    inspect = [name for name, f in FAMILIES.items() if f.inspect is not None]
    return {
        "recipes": "```\n" + recipes + "```\n",
        "evaluate": "| family | options |\n|---|---|\n" + "\n".join(rows_evaluate) + "\n",
        "export": "| family | options (`--onnx`) | `--hf` |\n|---|---|---|\n" + "\n".join(rows_export) + "\n",
        "verbs": "| family | batch verb | prompt tasks |\n|---|---|---|\n" + "\n".join(rows_verbs) + "\n",
        "inspect": f"Families with a data report: {_codes(inspect)}.\n",
    }


def readme_tables(text: str) -> dict[str, str]:
    """The marked tables of a README text, by marker name."""
    return {m["name"]: m["body"] for m in MARKED.finditer(text)}


def stale(text: str) -> list[str]:
    """Names of the tables that differ between ``text`` and the registry (missing ones included)."""
    have = readme_tables(text)
    return [name for name, body in registry_tables().items() if have.get(name) != body]


def rewrite(text: str) -> str:
    """``text`` with every marked table replaced by the registry's."""
    want = registry_tables()
    return MARKED.sub(lambda m: f"<!-- registry:{m['name']} -->\n{want.get(m['name'], m['body'])}"
                                f"<!-- /registry:{m['name']} -->", text)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        names = stale(README.read_text(encoding="utf-8"))
        if names:
            print(f"README.md is out of date with the registry: {', '.join(names)} "
                  f"(python scripts/readme_tables.py --write)", file=sys.stderr)
        return 1 if names else 0
    if "--write" in argv:
        README.write_text(rewrite(README.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    for name, body in registry_tables().items():
        print(f"<!-- registry:{name} -->\n{body}<!-- /registry:{name} -->\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
