"""The benchmark's data sets, and a throw-away project folder per run: the data set's params and data files."""
from __future__ import annotations

import runpy
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.projects import REPO
from pipelines.core.errors import PipelineError


@dataclass(frozen=True)
class Dataset:
    """One benchmark data set: a params file written the documented way and the files its data block names."""

    name: str
    params: Path  # the params file as a user runs it
    files: tuple[str, ...]  # data files and folders beside the params file that the run reads
    extract: Path | None = None  # script that writes the data files from an installed package
    notes: str = "SOURCE.md"  # beside the params file: origin, licence, rows, label, sensitive attribute

    @property
    def source(self) -> Path:
        return self.params.parent / self.notes

    def write_files(self, folder: Path) -> None:
        """The data files in `folder` (which holds the params file): copied when the example has them, else written
        from their package by the example's extract script (nothing is downloaded)."""
        missing = []
        for name in self.files:
            source = self.params.parent / name
            if source.is_dir():
                shutil.copytree(source, folder / name)
            elif source.is_file():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, folder / name)
            else:
                missing.append(name)
        if missing and self.extract is None:
            raise PipelineError(f"{self.params.parent / missing[0]}: data file not found")
        if missing:
            extract = runpy.run_path(str(self.extract))["extract"]
            if self.extract == WOOLDRIDGE:  # reads data.source from the folder's params file
                extract(folder)
            else:
                extract(folder / missing[0])


EXAMPLES = REPO / "examples"
WOOLDRIDGE = EXAMPLES / "extract_wooldridge.py"
DATASETS = {d.name: d for d in (
    Dataset("german-credit", EXAMPLES / "german-credit" / "params.yaml", ("german_credit.csv",)),
    Dataset("boston-mortgage", EXAMPLES / "boston-mortgage" / "params.yaml", ("loanapp.csv",),
            EXAMPLES / "boston-mortgage" / "extract.py"),
    Dataset("recidivism", EXAMPLES / "recidivism" / "params.yaml", ("recid.csv",), WOOLDRIDGE),
    Dataset("cps-labor-force", EXAMPLES / "cps-labor-force" / "params.yaml", ("cps91.csv",), WOOLDRIDGE),
    Dataset("401k-eligibility", EXAMPLES / "401k-eligibility" / "params.yaml", ("401ksubs.csv",), WOOLDRIDGE),
    Dataset("adult", REPO / "params.yaml", ("data/adult",), notes="data/adult/SOURCE.md"),
)}  # smallest first: a long run that is stopped has finished the most data sets


def project_copy(dataset: Dataset, target: Path, overrides: dict[str, object] | None = None) -> Path:
    """A fresh project folder holding the data set's params and data files, with `overrides` (dotted keys) written
    into its params; returns the params file. Each run gets its own folder: no drift reference, MLflow store or
    expectations suite carries over from another split."""
    target.mkdir(parents=True)
    shutil.copy2(dataset.params, target / "params.yaml")
    dataset.write_files(target)
    params = yaml.safe_load(dataset.params.read_text())
    for dotted, value in (overrides or {}).items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return target / "params.yaml"
