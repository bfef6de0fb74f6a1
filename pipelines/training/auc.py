"""The exact ROC AUC of a split scored chunk by chunk, in bounded memory: the number
pipelines.training.metrics.roc_auc gives on all the rows at once (the same integer pair counts).

Each score becomes an order-preserving 64-bit key (pipelines.data.order_stats.keys). Up to HELD rows stay in
memory; beyond, the keys and labels go to a temporary file. The AUC then counts (positive, negative) pairs by key
ranges: a pass counts the rows under the next 16 key bits, ranges of up to COLLECT rows are read back and counted
by sorting, and a range of one key needs no rows (all its pairs are ties). Pairs across ranges come from the
ranges' counts. A split of 6M rows takes three or four passes over its 54 MB file.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.data.order_stats import keys as order_keys

HELD = 1 << 18  # rows kept in memory before spilling (2.3 MiB a model)
COLLECT = 1 << 21  # rows read back and sorted at once (about 19 MiB)
DIGIT = 16  # key bits narrowed per pass
READ = 1 << 20  # rows read from the file at a time


def below_and_ties(negatives_sorted: np.ndarray, positives: np.ndarray, chunk: int = 1 << 20) -> tuple[int, int]:
    """Over all (positive, negative) pairs: how many negatives score below the positive, and how many the same."""
    below = ties = 0
    for start in range(0, len(positives), chunk):
        part = positives[start:start + chunk]
        left = np.searchsorted(negatives_sorted, part, "left")
        below += int(left.sum())
        ties += int((np.searchsorted(negatives_sorted, part, "right") - left).sum())
    return below, ties


def mann_whitney(below: int, ties: int, n_pos: int, n_neg: int) -> float:
    """ROC AUC from the pair counts (ties counted half: sklearn's roc_auc_score), NaN with one class."""
    return float("nan") if n_pos == 0 or n_neg == 0 else (below + 0.5 * ties) / (n_pos * n_neg)


class AucTally:
    """Labels and scores added chunk by chunk; `value()` is their exact ROC AUC. Use as a context manager (or call
    `close`) so a spilled file is removed."""

    def __init__(self, held: int = HELD, collect: int = COLLECT) -> None:
        self.held, self.collect = held, collect
        self.keys: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.rows = self.n_pos = 0
        self._folder: tempfile.TemporaryDirectory | None = None

    def add(self, y: np.ndarray, scores: np.ndarray) -> None:
        """One chunk's labels (0/1) and scores."""
        scores = np.asarray(scores)
        if np.isnan(scores).any():
            raise ValueError("Input contains NaN.")
        positive = np.asarray(y) > 0.5
        self.rows += len(scores)
        self.n_pos += int(np.count_nonzero(positive))
        self.keys.append(order_keys(scores))
        self.labels.append(positive)
        if self._folder is not None or self.rows > self.held:
            self._spill()

    def _spill(self) -> None:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="mobile-mlops-auc-")
        folder = Path(self._folder.name)
        with open(folder / "keys", "ab") as k, open(folder / "labels", "ab") as b:
            for key, label in zip(self.keys, self.labels):
                key.tofile(k)
                label.tofile(b)
        self.keys, self.labels = [], []

    def _read(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The (keys, positive) of every row, a part at a time."""
        if self._folder is None:
            yield from zip(self.keys, self.labels)
            return
        folder = Path(self._folder.name)
        with open(folder / "keys", "rb") as k, open(folder / "labels", "rb") as b:
            while len(key := np.fromfile(k, np.uint64, READ)):
                yield key, np.fromfile(b, np.bool_, len(key))

    def value(self) -> float:
        """The exact ROC AUC of every row added."""
        n_pos, n_neg = self.n_pos, self.rows - self.n_pos
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        below = ties = negatives_before = 0
        for low, high, pos, neg in self._ranges():
            if pos and neg:
                if low == high:  # one key: every pair ties
                    ties += pos * neg
                else:
                    key, positive = self._collect(low, high)
                    b, t = below_and_ties(np.sort(key[~positive]), key[positive])
                    below, ties = below + b, ties + t
            below += pos * negatives_before
            negatives_before += neg
        return mann_whitney(below, ties, n_pos, n_neg)

    def _collect(self, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows whose keys lie in [low, high]."""
        parts = [(k[m], p[m]) for k, p in self._read()
                 if (m := (k >= np.uint64(low)) & (k <= np.uint64(high))).any()]
        return np.concatenate([k for k, _ in parts]), np.concatenate([p for _, p in parts])

    def _ranges(self) -> list[tuple[int, int, int, int]]:
        """Consecutive key ranges [low, high] covering every row, in key order, with their positive and negative
        counts: each of at most `collect` rows, or one key. Neighbouring small ranges are merged up to `collect`."""
        open_blocks = [(0, 0)]  # (known bits, prefix): keys whose leading `bits` bits are `prefix`
        settled: list[tuple[int, int, int, int]] = []
        while open_blocks:
            counted = self._narrow(open_blocks)
            open_blocks = []
            for (bits, prefix), (pos, neg) in counted.items():
                low = prefix << (64 - bits)
                for digit in np.flatnonzero(pos + neg):
                    start = low + (int(digit) << (64 - bits - DIGIT))
                    p, n = int(pos[digit]), int(neg[digit])
                    if p + n > self.collect and bits + DIGIT < 64:
                        open_blocks.append((bits + DIGIT, (prefix << DIGIT) | int(digit)))
                    else:
                        settled.append((start, start + (1 << (64 - bits - DIGIT)) - 1, p, n))
        settled.sort()
        merged: list[list[int]] = []
        for first, final, positives, negatives in settled:
            last = merged[-1] if merged else None
            if (last is not None and last[0] != last[1] and first != final
                    and last[2] + last[3] + positives + negatives <= self.collect):
                last[1], last[2], last[3] = final, last[2] + positives, last[3] + negatives
            else:
                merged.append([first, final, positives, negatives])
        return [(r[0], r[1], r[2], r[3]) for r in merged]

    def _narrow(self, blocks: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """One pass: per block, its rows counted by the next DIGIT key bits (positives, negatives)."""
        out = {block: (np.zeros(1 << DIGIT, np.int64), np.zeros(1 << DIGIT, np.int64)) for block in blocks}
        for k, positive in self._read():
            for bits, prefix in blocks:
                if bits:
                    mine = (k >> np.uint64(64 - bits)) == np.uint64(prefix)
                    key, label = k[mine], positive[mine]
                else:
                    key, label = k, positive
                digit = ((key >> np.uint64(64 - bits - DIGIT)) & np.uint64((1 << DIGIT) - 1)).astype(np.int64)
                pos, neg = out[(bits, prefix)]
                pos += np.bincount(digit[label], minlength=1 << DIGIT)
                neg += np.bincount(digit[~label], minlength=1 << DIGIT)
        return out

    def close(self) -> None:
        """Remove the spilled file, if any."""
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self.keys, self.labels = [], []

    def __enter__(self) -> AucTally:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
