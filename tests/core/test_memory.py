"""Memory a step leaves behind is handed back before the next step (one process runs them all)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from pipelines.core import memory
from pipelines.core.memory import memory_kb, release_after

pytestmark = pytest.mark.skipif(not memory_kb(), reason="reads /proc/self/status (Linux)")


def _leave_a_cycle(mb: int) -> None:
    """What a traced TensorFlow function does to the tensors it captured: a reference cycle holding the data."""
    holder: list = [np.ones(mb * 2**20 // 8)]
    holder.append(holder)


def test_memory_held_by_a_garbage_cycle_is_freed_after_a_step_that_kept_too_much(monkeypatch):
    monkeypatch.setattr(memory, "RETAINED_MB", 100)  # the rule, at a size a test can allocate quickly
    gc.collect()
    before = memory_kb()["VmRSS"]
    enabled = gc.isenabled()
    gc.disable()  # the cycle must survive until release_after, as a gen-2 cycle of a long step does
    try:
        _leave_a_cycle(200)
        assert memory_kb()["VmRSS"] - before > 100 * 1024
        release_after(before)
        assert memory_kb()["VmRSS"] - before < 50 * 1024
    finally:
        if enabled:
            gc.enable()


def test_a_step_that_kept_little_is_not_collected():
    gc.collect()
    before = memory_kb()["VmRSS"]
    enabled = gc.isenabled()
    gc.disable()
    try:
        _leave_a_cycle(50)  # under the real RETAINED_MB (512)
        release_after(before)
        assert gc.collect() > 0  # the small cycle was still there: no full collection ran for it
    finally:
        if enabled:
            gc.enable()


def test_settle_heap_collects_the_garbage_before_it_freezes_the_rest():
    import weakref

    class Node:
        pass

    dead, alive = Node(), Node()
    dead.me, alive.me = dead, alive  # two cycles: one is garbage, one is still used
    gone = weakref.ref(dead)
    del dead
    try:
        memory.settle_heap()
        assert gone() is None  # collected, not frozen forever
        assert alive.me is alive
        # frozen: the living cycle is in no generation a later collection scans
        assert not any(o is alive for o in gc.get_objects())
    finally:
        gc.unfreeze()
