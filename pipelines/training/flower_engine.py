"""Flower's Simulation Runtime on its own Ray backend, and a Grid that counts what crosses the network.

`flwr.simulation.run_simulation` (flwr 1.42, extra `simulation`, which pins ray) runs the Flower stack as shipped:
an in-memory SuperLink, the ServerApp on a thread of this process, one virtual SuperNode per device, and the
ClientApps (with their mods) on a pool of Ray actors, separate worker processes on this machine. Nothing of Flower
or Ray is replaced. The same ServerApp and ClientApp run unchanged under Flower's deployment engine (SuperLink and
SuperNodes as processes; docs/guides/privacy.md).
"""
from __future__ import annotations

import importlib.util
import logging
import os
from collections import defaultdict
from collections.abc import Iterable

from pipelines.core.errors import PipelineError

MISSING_RAY = ("privacy.federated: Flower's simulation engine needs ray, which is not installed "
               "(pip install 'flwr[simulation]==1.42.0', as requirements.lock pins it)")


def record_bytes(record) -> int:
    """Payload bytes of one Flower record: Flower's own count for arrays (the serialized tensors); keys and values
    for config and metric records (Flower 1.42's ConfigRecord.count_bytes fails on an empty list, which SecAgg+
    sends)."""
    from flwr.common import ArrayRecord

    if isinstance(record, ArrayRecord):
        return int(record.count_bytes())
    return sum(len(key) + _value_bytes(value) for key, value in record.items())


def _value_bytes(value) -> int:
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, list):
        return sum(_value_bytes(v) for v in value)
    return 1 if isinstance(value, bool) else 8


def content_bytes(message) -> int:
    """Bytes of a message's records (0 for an error reply)."""
    return sum(record_bytes(r) for r in message.content.values()) if message.has_content() else 0


def counting_grid(grid, down: dict[tuple[int, int], int], up: dict[tuple[int, int], int], round_of):
    """`grid` with every message it sends added to down[(node, round)] and every reply to up[(node, round)]: what
    each device receives and sends, after SecAgg+ masking and clipping (the server sees exactly those records)."""
    from flwr.serverapp import Grid

    class CountingGrid(Grid):
        def set_run(self, run) -> None:
            grid.set_run(run)

        @property
        def run(self):
            return grid.run

        def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
            return grid.create_message(content, message_type, dst_node_id, group_id, ttl)

        def get_node_ids(self) -> Iterable[int]:
            return grid.get_node_ids()

        def _sent(self, messages):
            messages = list(messages)
            for m in messages:
                down[(m.metadata.dst_node_id, round_of())] += content_bytes(m)
            return messages

        def _received(self, replies):
            replies = list(replies)
            for m in replies:
                up[(m.metadata.src_node_id, round_of())] += content_bytes(m)
            return replies

        def push_messages(self, messages):
            return grid.push_messages(self._sent(messages))

        def pull_messages(self, message_ids):
            return self._received(grid.pull_messages(message_ids))

        def send_and_receive(self, messages, *, timeout=None):
            return self._received(grid.send_and_receive(self._sent(messages), timeout=timeout))

    return CountingGrid()


def backend_config(cpus: int | None = None) -> dict:
    """Ray on this machine: one actor (worker process) holding every core, as Keras spreads one device's fit over
    them (two actors on 2 cores each build every device's model and contend: measured slower); no dashboard;
    workers at the step's own priority (Ray starts them at nice 15, which starves them on a shared machine)."""
    cpus = cpus or os.cpu_count() or 1
    return {"client_resources": {"num_cpus": cpus, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False, "log_to_driver": False,
                          "logging_level": logging.WARNING, "configure_logging": False,
                          "_system_config": {"worker_niceness": 0}}}


def run(server_app, client_app, devices: int) -> None:
    """Run the apps on Flower's Ray backend with one virtual SuperNode per device; returns when the ServerApp's
    main returns (Flower shuts Ray down)."""
    if importlib.util.find_spec("ray") is None:
        raise PipelineError(MISSING_RAY)
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.WARNING)
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=devices, backend_name="ray",
                   backend_config=backend_config())


def new_counts() -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """Empty (down, up) byte counters keyed by (node, round)."""
    return defaultdict(int), defaultdict(int)
