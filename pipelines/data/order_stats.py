"""Exact quantiles and histogram counts of a numeric column read a batch at a time: the numbers np.quantile (method
linear) and np.histogram give on the whole column, in memory bounded by one batch and fixed-size tables, whatever
the row count (pipelines.data.stream profiles a large split this way).

Each value becomes a 64-bit key in the values' order. A wanted rank is narrowed down by the leading bits of its
key: one pass over the column counts the rows under each next few bits of the blocks still open. Small blocks (up
to COLLECT keys in all) are settled by sorting just their keys, and a block whose keys are all equal is settled at
once. A column takes three or four passes: one to count, one or two to narrow, one to sort the last blocks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

Batches = Callable[[], Iterable[np.ndarray]]  # each call reads the column again: float64 values, no NaN, in batches
Finder = Callable[[np.ndarray], np.ndarray]  # rows' key prefixes -> their block's index, -1 for none

DIGIT = 16  # key bits settled per pass over the column
COLLECT = 1 << 21  # keys gathered and sorted in one pass at most (16 MiB)
TABLE = 1 << 21  # row counts kept in one pass at most (16 MiB): blocks x 2^bits narrowed
_SIGN = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


def keys(values: np.ndarray) -> np.ndarray:
    """Unsigned 64-bit keys in the order of the float64 values (-0.0 keyed as 0.0, which it equals)."""
    bits = (np.asarray(values, np.float64) + 0.0).view(np.uint64)
    return np.where((bits & _SIGN) != 0, bits ^ _ALL, bits | _SIGN)


def values_of(found: np.ndarray) -> np.ndarray:
    """The float64 values of keys (`keys`' inverse)."""
    found = np.asarray(found, np.uint64)
    return np.where((found & _SIGN) != 0, found ^ _SIGN, found ^ _ALL).view(np.float64)


def _prefix(k: np.ndarray, bits: int) -> np.ndarray:
    return np.zeros(len(k), np.uint64) if bits == 0 else k >> np.uint64(64 - bits)


def order_statistics(batches: Batches, ranks_of: Callable[[int], np.ndarray]) -> tuple[int, np.ndarray]:
    """The count of values n and the values at the 0-based ranks `ranks_of(n)` of the sorted column (each below n)."""
    _, hist, low, high, total = _pass(batches, [], [(0, 0)], DIGIT)
    ranks = np.asarray(ranks_of(total), np.int64)
    out = np.full(len(ranks), np.nan)
    # open blocks: (key bits known, prefix) -> [its row count, [(target, offset within the block), ...]]
    blocks: dict[tuple[int, int], list] = {}
    _settle(out, blocks, (0, 0), [(i, int(r)) for i, r in enumerate(ranks)], hist[0], low[0], high[0], DIGIT)
    while blocks:
        # the smallest blocks are sorted whole, as many as COLLECT keys allow; the others are narrowed by as many
        # bits as TABLE counts allow for all of them at once (so a pass settles most ranks, whatever their number)
        small, large, budget = [], [], COLLECT
        for block, (count, _) in sorted(blocks.items(), key=lambda item: item[1][0]):
            if count <= budget:
                small.append(block)
                budget -= count
            else:
                large.append(block)
        width = max(1, min(DIGIT, int(np.log2(TABLE / max(len(large), 1)))))
        collected, hist, low, high, _ = _pass(batches, small, large, width)
        for index, block in enumerate(small):
            ordered = np.sort(collected[index])
            for target, offset in blocks.pop(block)[1]:
                out[target] = values_of(ordered[offset:offset + 1])[0]
        for index, block in enumerate(large):
            _settle(out, blocks, block, blocks.pop(block)[1], hist[index], low[index], high[index], width)
    return total, out


def _settle(out: np.ndarray, blocks: dict, block: tuple[int, int], targets: list[tuple[int, int]],
            hist: np.ndarray, low: np.uint64, high: np.uint64, width: int) -> None:
    """A counted block's targets: its value where every key in it is the same, else each target's child block (the
    next `width` bits, fewer where the key ends), left open or settled when the child's key is whole."""
    if low == high:
        for target, _ in targets:
            out[target] = values_of(np.array([low], np.uint64))[0]
        return
    bits, prefix = block
    width = min(width, 64 - bits)
    cumulative = np.cumsum(hist[:1 << width])
    for target, offset in targets:
        digit = int(np.searchsorted(cumulative, offset, side="right"))
        inner = offset - (int(cumulative[digit - 1]) if digit else 0)
        child = (bits + width, (prefix << width) | digit)
        if child[0] == 64:  # the whole key: every row in the block has this value
            out[target] = values_of(np.array([child[1]], np.uint64))[0]
        else:
            blocks.setdefault(child, [int(hist[digit]), []])[1].append((target, inner))


def _pass(batches: Batches, small: list[tuple[int, int]], large: list[tuple[int, int]], width: int):
    """One read of the column: the keys of each small block; of each large block, its row counts over the next
    `width` key bits (fewer where the key ends) and its lowest and highest key; and how many values were read."""
    owners: list[np.ndarray] = []
    found: list[np.ndarray] = []
    hist = np.zeros(len(large) << width, np.int64)
    low = np.full(len(large), _ALL, np.uint64)
    high = np.zeros(len(large), np.uint64)
    groups = _by_bits(small, large)
    seen = 0
    for chunk in batches():
        k = keys(chunk)
        seen += len(k)
        for bits, find in groups.items():
            owner = find(_prefix(k, bits))
            hit = owner >= 0
            if not hit.any():
                continue
            owner, mine = owner[hit], k[hit]
            mark = owner < len(small)
            if mark.any():
                owners.append(owner[mark])
                found.append(mine[mark])
            if mark.all():
                continue
            index, rows = owner[~mark] - len(small), mine[~mark]
            step = min(width, 64 - bits)
            digits = (rows >> np.uint64(64 - bits - step)) & np.uint64((1 << step) - 1)
            hist += np.bincount((index << width) + digits.astype(np.int64), minlength=hist.size)
            np.minimum.at(low, index, rows)
            np.maximum.at(high, index, rows)
    owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    mine = np.concatenate(found) if found else np.zeros(0, np.uint64)
    order = np.lexsort((mine, owner))
    owner, mine = owner[order], mine[order]
    bounds = np.searchsorted(owner, np.arange(len(small) + 1))
    gathered = [mine[bounds[i]:bounds[i + 1]] for i in range(len(small))]
    return gathered, hist.reshape(len(large), 1 << width), low, high, seen


def _by_bits(small: list[tuple[int, int]], large: list[tuple[int, int]]) -> dict[int, Finder]:
    """Per count of known key bits: a function from rows' key prefixes to their block's index (small blocks first,
    then large; -1 for a row in no block): a table for short prefixes, a binary search for longer ones."""
    found: dict[int, list[tuple[int, int]]] = {}
    for index, (bits, prefix) in enumerate([*small, *large]):
        found.setdefault(bits, []).append((prefix, index))
    out: dict[int, Finder] = {}
    for bits, pairs in found.items():
        prefixes = np.array([p for p, _ in pairs], np.uint64)
        where = np.array([i for _, i in pairs], np.int64)
        if bits <= 20:
            table = np.full(1 << bits, -1, np.int64)
            table[prefixes.astype(np.int64)] = where

            def look_up(pre: np.ndarray, table: np.ndarray = table) -> np.ndarray:
                return table[pre.astype(np.int64)]

            out[bits] = look_up
        else:
            order = np.argsort(prefixes)
            prefixes, where = prefixes[order], where[order]

            def search(pre: np.ndarray, prefixes: np.ndarray = prefixes, where: np.ndarray = where) -> np.ndarray:
                at = np.clip(np.searchsorted(prefixes, pre), 0, len(prefixes) - 1)
                return np.where(prefixes[at] == pre, where[at], -1)

            out[bits] = search
    return out


def quantiles(batches: Batches, probabilities: list[np.ndarray]) -> tuple[int, list[np.ndarray]]:
    """The count of values and, for each array of probabilities, np.quantile of the whole column at them (method
    linear: numpy's index arithmetic and interpolation, so the same floats). No values: ValueError."""
    reading = iter(batches())
    first, second = next(reading, None), next(reading, None)
    if second is None:  # one batch: numpy on it
        values = np.zeros(0) if first is None else np.asarray(first, np.float64)
        if not len(values):
            raise ValueError("no values to take quantiles of")
        return len(values), [np.quantile(values, q) for q in probabilities]
    plans: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per array: previous, next rank, weight

    def ranks_of(n: int) -> np.ndarray:
        if n == 0:
            raise ValueError("no values to take quantiles of")
        for q in probabilities:  # numpy.lib._function_base_impl: 'linear' virtual index, then _get_indexes
            virtual = (n - 1) * np.asarray(q, np.float64)
            previous = np.floor(virtual)
            following = previous + 1
            above, below = virtual >= n - 1, virtual < 0
            previous[above], following[above] = -1, -1
            previous[below], following[below] = 0, 0
            # -1 (the last value) stays -1 in the weight, as in numpy
            plans.append((previous.astype(np.intp) % n, following.astype(np.intp) % n,
                          virtual - previous.astype(np.intp)))
        return _ranks(plans)

    n, found = order_statistics(batches, ranks_of)
    ranks = _ranks(plans)
    return n, [_lerp(found[np.searchsorted(ranks, previous)], found[np.searchsorted(ranks, following)], gamma)
               for previous, following, gamma in plans]


def _ranks(plans: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    return np.unique(np.concatenate([np.r_[previous, following] for previous, following, _ in plans]))


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's quantile interpolation (numpy.lib._function_base_impl._lerp): from the nearer end."""
    diff = b - a
    result = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=result, where=t >= 0.5)
    return result


def histogram(batches: Batches, edges: np.ndarray) -> np.ndarray:
    """np.histogram(column, bins=edges)[0] over all batches (counts add up batch by batch)."""
    counts = np.zeros(len(edges) - 1, np.int64)
    for chunk in batches():
        counts += np.histogram(chunk, bins=edges)[0]
    return counts
