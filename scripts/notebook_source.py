"""Helpers to write a notebook from a list of cells (used once to create each notebook; edit in Jupyter after)."""
from __future__ import annotations

import sys

import nbformat


def build(cells: list[tuple[str, str]], path: str) -> None:
    nb = nbformat.v4.new_notebook()
    for kind, source in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source.strip()))
        else:
            cell = nbformat.v4.new_code_cell(source.strip())
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)


if __name__ == "__main__":
    sys.exit("import build() from this module")
