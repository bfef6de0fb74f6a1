"""Flower's Simulation Runtime on this machine, without Ray.

`flwr.simulation.run_simulation` (flwr 1.42) runs the real Flower stack in one process: an in-memory SuperLink
(LinkState), the ServerApp on an InMemoryGrid with its workflows (FedAvg rounds, SecAgg+ stages), and every
ClientApp with its mods, one virtual SuperNode per device. Its only executor is the Ray backend, imported by module
path inside `start_vce`, and Ray is not in this project's lock (it would add ~100 MB and its own process tree for
2-core machines). `in_process_backend()` puts a Backend that runs ClientApps on a thread of this process at that
module path for the duration of the run, and takes it away afterwards: the messages, the node contexts, the
workflows and the mods are Flower's own.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Iterator

RAY_BACKEND_MODULE = "flwr.server.superlink.fleet.vce.backend.raybackend"


def _backend_class():
    from flwr.server.superlink.fleet.vce.backend import Backend

    class InProcessBackend(Backend):
        """Runs each message through the ClientApp on the calling worker thread (one worker: Keras is not
        re-entrant per model, and 2 cores gain nothing from more)."""

        def __init__(self, backend_config) -> None:  # Flower's BackendConfig
            super().__init__(backend_config)
            self.app_fn: Callable | None = None
            self._lock = threading.Lock()

        def build(self, app_fn) -> None:
            self.app_fn = app_fn

        @property
        def num_workers(self) -> int:
            return 1

        def is_worker_idle(self) -> bool:
            return not self._lock.locked()

        def terminate(self) -> None:
            self.app_fn = None

        def process_message(self, message, context):
            from flwr.clientapp.client_app import ClientAppException

            with self._lock:
                try:  # a copy, as a wire (or Ray's pickling) would deliver: mods such as secaggplus_mod edit the
                    # message they get, and the in-memory SuperLink shares record objects between devices' messages
                    return self.app_fn()(message=copy.deepcopy(message), context=context), context
                except Exception as ex:  # Flower turns this into an error reply, as the Ray actor does
                    raise ClientAppException(str(ex)) from ex

    return InProcessBackend


@contextlib.contextmanager
def in_process_backend() -> Iterator[None]:
    """Within the block, Flower's simulation runtime runs ClientApps in this process instead of on Ray."""
    if importlib.util.find_spec("ray") is not None:  # Ray installed: Flower's own backend works as shipped
        yield
        return
    previous = sys.modules.get(RAY_BACKEND_MODULE)
    module = types.ModuleType(RAY_BACKEND_MODULE)
    module.RayBackend = _backend_class()  # type: ignore[attr-defined]  # a module built here
    sys.modules[RAY_BACKEND_MODULE] = module
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop(RAY_BACKEND_MODULE, None)
        else:
            sys.modules[RAY_BACKEND_MODULE] = previous


def run(server_app, client_app, devices: int) -> None:
    """Run the apps with one virtual SuperNode per device; returns when the ServerApp's main returns."""
    import logging

    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.WARNING)
    with in_process_backend():
        run_simulation(server_app=server_app, client_app=client_app, num_supernodes=devices,
                       backend_name="in-process", backend_config={"client_resources": {"num_cpus": 1}})
