"""A split's figures gathered chunk by chunk in bounded memory: what the scoring steps keep instead of every
model's probability for every row. Per model: the confusion cells of each group, the paired (reference right,
model right) cells, agreement, largest probability error, non-finite outputs, and the exact AUC
(pipelines.training.auc). The figures are then pipelines.training.metrics' own, computed from these counts: the
same numbers as on all the rows at once."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.features import FeatureSpec, encode_features, encode_labels
from pipelines.data.split_file import SplitFile
from pipelines.training.auc import AucTally
from pipelines.training.metrics import GroupCodes, cell_counts, classification_figures, group_codes, group_figures
from pipelines.training.scoring import chunks


class Cells:
    """One grouping's (k, 4) cell counts, added a chunk at a time under each chunk's own group names."""

    def __init__(self) -> None:
        self.counts: dict[str, np.ndarray] = {}

    def add(self, names: np.ndarray, codes: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
        """The chunk's rows counted per group as [00, 01, 10, 11] of (first, second)."""
        for name, row in zip(names, cell_counts(codes, len(names), first, second)):
            self.counts[str(name)] = self.counts.get(str(name), 0) + row

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Group names sorted (as group_codes sorts them) and their counts."""
        names = np.unique(np.array(list(self.counts), dtype=str))
        return names, np.array([self.counts[n] for n in names], np.int64).reshape(len(names), 4)


@dataclass
class ModelTally:
    """One model's counts on a split. Non-finite outputs (a broken conversion) are scored as the wrong answer and
    a disagreement with the reference, and counted."""

    threshold: float
    confusion: dict[str, Cells] = field(default_factory=dict)  # (label, decision) per grouping
    paired: dict[str, Cells] = field(default_factory=dict)  # (reference right, model right) per grouping
    auc: AucTally | None = field(default_factory=AucTally)  # None: no AUC wanted
    rows: int = 0
    agree: int = 0
    max_error: float = 0.0
    non_finite: int = 0

    def add(self, truth: np.ndarray, proba: np.ndarray, codes: GroupCodes, reference: np.ndarray | None) -> None:
        """One chunk: labels as bool, the model's probabilities, group codes, and the reference's probabilities."""
        finite = np.isfinite(proba)
        wrong = np.where(finite, proba, 1.0 - truth) if not finite.all() else proba  # furthest from the truth
        decided = wrong >= self.threshold
        self.rows += len(proba)
        self.non_finite += int(np.count_nonzero(~finite))
        if self.auc is not None:
            self.auc.add(truth, wrong)
        if reference is not None:
            reference_decided = reference >= self.threshold
            self.agree += int(np.count_nonzero(np.where(finite, decided, ~reference_decided) == reference_decided))
            if len(proba):
                self.max_error = max(self.max_error, float(np.abs(np.where(finite, proba, 1.0) - reference).max()))
            right, reference_right = decided == truth, reference_decided == truth
        for name, (names, code) in codes.items():
            self.confusion.setdefault(name, Cells()).add(names, code, truth, decided)
            if reference is not None:
                self.paired.setdefault(name, Cells()).add(names, code, reference_right, right)

    def cells(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per grouping: group names and confusion cells [TN, FP, FN, TP]."""
        return {name: cells.result() for name, cells in self.confusion.items()}

    def paired_cells(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per grouping: group names and cells [both wrong, only model right, only reference right, both right]."""
        return {name: cells.result() for name, cells in self.paired.items()}

    def confusion_total(self) -> np.ndarray:
        """[TN, FP, FN, TP] over every row."""
        first = next(iter(self.confusion.values()), None)
        return np.zeros(4, np.int64) if first is None else first.result()[1].sum(axis=0)

    def overall(self) -> dict[str, float]:
        """classification_metrics on every row."""
        return classification_figures(self.confusion_total(), self.auc_value())

    def groups(self, **options: Any) -> dict[str, dict[str, Any]]:
        """group_metrics per grouping (`options`: group_figures' min_group_size, n_boot, confidence, seed)."""
        return {g: group_figures(names, counts, **options) for g, (names, counts) in self.cells().items()}

    def auc_value(self) -> float:
        """The exact ROC AUC (NaN when not gathered)."""
        return self.auc.value() if self.auc is not None else float("nan")

    def agreement(self) -> float:
        """Share of rows where the model decides as the reference."""
        return self.agree / self.rows if self.rows else float("nan")

    def close(self) -> None:
        if self.auc is not None:
            self.auc.close()


@dataclass
class Chunk:
    """One chunk of a split: labels (0/1 float), group codes, each model's probabilities, the encoded rows."""

    y: np.ndarray
    codes: GroupCodes
    probas: dict[str, np.ndarray]
    x: np.ndarray | None

    @property
    def truth(self) -> np.ndarray:
        return self.y > 0.5

    @property
    def encoded(self) -> np.ndarray:
        """The encoded rows (a pass that encodes them: `scored_chunks(..., encoded=True)` or with models)."""
        if self.x is None:
            raise ValueError("this pass did not encode the rows")
        return self.x


class Aligned:
    """Consecutive frames re-cut to any row counts asked for, in order (saved predictions beside a split's
    chunks, whose sizes differ)."""

    def __init__(self, frames: Iterator[pd.DataFrame]) -> None:
        self.frames = frames
        self.buffer: list[pd.DataFrame] = []
        self.buffered = 0

    def take(self, n: int) -> pd.DataFrame:
        while self.buffered < n:
            frame = next(self.frames, None)
            if frame is None:
                break
            self.buffer.append(frame)
            self.buffered += len(frame)
        joined = pd.concat(self.buffer, ignore_index=True) if len(self.buffer) != 1 else self.buffer[0]
        if len(joined) < n:
            from pipelines.core.errors import PipelineError

            raise PipelineError(f"the saved predictions end after {len(joined)} rows of a chunk of {n}: "
                                "re-run trained_model")
        out, rest = joined.iloc[:n].reset_index(drop=True), joined.iloc[n:]
        self.buffer, self.buffered = ([rest] if len(rest) else []), len(rest)
        return out

    def done(self) -> bool:
        """Whether every frame was taken."""
        return not self.buffered and next(self.frames, None) is None


def scored_chunks(rows: pd.DataFrame | SplitFile, spec: FeatureSpec, sensitive: list[str],
                  models: dict[str, Callable[[np.ndarray], np.ndarray]], *, saved: Aligned | None = None,
                  intersection: bool = True, encoded: bool | None = None) -> Iterator[Chunk]:
    """The split a chunk at a time: each chunk encoded once (when a model needs it) and given to every model, the
    saved predictions' columns of the same rows beside them."""
    encoded = bool(models) if encoded is None else encoded
    for frame in chunks(rows, None if encoded else list(dict.fromkeys([spec.label, *sensitive]))):
        x = encode_features(frame, spec) if encoded else None
        probas = {name: np.asarray(predict(x)) for name, predict in models.items()} if x is not None else {}
        if saved is not None:
            probas = {c: s.to_numpy() for c, s in saved.take(len(frame)).items()} | probas
        yield Chunk(encode_labels(frame, spec), group_codes(frame[sensitive], intersection), probas, x)
    if saved is not None and not saved.done():
        from pipelines.core.errors import PipelineError

        raise PipelineError("the saved predictions hold more rows than the split: re-run trained_model")


class Tallies:
    """Every model's ModelTally over a split's chunks; `reference` names the model the others are paired with."""

    def __init__(self, threshold: float, reference: str | None = None, auc: bool = True) -> None:
        self.threshold, self.reference, self.auc = threshold, reference, auc
        self.models: dict[str, ModelTally] = {}
        self.rows = 0
        self.head: list[np.ndarray] = []

    def add(self, chunk: Chunk, head_rows: int = 0) -> None:
        reference = chunk.probas.get(self.reference) if self.reference else None
        truth = chunk.truth
        for name, proba in chunk.probas.items():
            if name not in self.models:
                self.models[name] = ModelTally(self.threshold, auc=AucTally() if self.auc else None)
            tally = self.models[name]
            tally.add(truth, proba, chunk.codes, None if name == self.reference else reference)
        if chunk.x is not None and self.rows < head_rows:
            self.head.append(chunk.x[:head_rows - self.rows])
        self.rows += len(truth)

    def head_rows(self, width: int) -> np.ndarray:
        """The first rows, encoded (latency is timed on them)."""
        return np.concatenate(self.head) if self.head else np.zeros((0, width), np.float32)

    def close(self) -> None:
        for tally in self.models.values():
            tally.close()

    def __enter__(self) -> Tallies:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
