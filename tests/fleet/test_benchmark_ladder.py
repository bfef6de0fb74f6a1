"""The detection-power benchmark's ladder walk finds the smallest detected size from wherever it starts."""
from __future__ import annotations

import pytest

from benchmarks.fleet import smallest

LADDER = (1.0, 2.0, 3.0, 4.0, 5.0)


@pytest.mark.parametrize("start", range(len(LADDER)))
@pytest.mark.parametrize("threshold", [0.5, 2.5, 4.5, 9.0])
def test_the_walk_finds_the_smallest_detected_size(start, threshold):
    asked = []

    def check(size):
        asked.append(size)
        return int(size * 10) if size >= threshold else None

    index, day = smallest(check, LADDER, start)
    detected = [i for i, size in enumerate(LADDER) if size >= threshold]
    assert index == (detected[0] if detected else None)
    assert day == (int(LADDER[index] * 10) if index is not None else None)
    assert len(asked) == len(set(asked))  # no size is played twice
