"""The federated ClientApp: what each simulated device runs, in Flower's engine's worker processes.

Flower's Ray backend ships the ClientApp to its actors (separate processes) with every message, so the app carries
only the path of the run's device data (an .npz written by the server side) and the training settings; each worker
loads the file once and keeps one Keras model per device it has served (built and traced once, as on a phone).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_DATA: dict[str, DeviceData] = {}
_MODELS: dict[tuple[str, int], tuple[Any, Any]] = {}


@dataclass
class DeviceData:
    """Training rows, each device's row positions and the settings of one federated run."""

    x: np.ndarray
    y: np.ndarray
    parts: list[np.ndarray]
    sample_weight: np.ndarray | None
    groups: np.ndarray | None
    settings: dict[str, Any]  # train (TrainConfig fields), local_epochs, penalty, constraint


def write(path: Path, x: np.ndarray, y: np.ndarray, parts: list[np.ndarray], settings: dict[str, Any], *,
          sample_weight: np.ndarray | None = None, groups: np.ndarray | None = None) -> Path:
    """Write the device data of a run (read by every worker of the engine)."""
    arrays: dict[str, np.ndarray] = {"x": x, "y": y, "rows": np.concatenate(parts).astype(np.int64),
                                     "sizes": np.asarray([len(p) for p in parts], dtype=np.int64),
                                     "settings": np.asarray(json.dumps(settings))}
    if sample_weight is not None:
        arrays["sample_weight"] = sample_weight
    if groups is not None:
        arrays["groups"] = groups
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub wants positional arrays
    return path


def load(path: str) -> DeviceData:
    """The device data at `path`, read once per process."""
    if path not in _DATA:
        with np.load(path, allow_pickle=False) as stored:
            cuts = np.cumsum(stored["sizes"])[:-1]
            _DATA[path] = DeviceData(x=stored["x"], y=stored["y"], parts=np.split(stored["rows"], cuts),
                                     sample_weight=stored.get("sample_weight"),
                                     groups=stored.get("groups"),
                                     settings=json.loads(str(stored["settings"])))
    return _DATA[path]


def _device(path: str, index: int):
    """The NumPyClient of device `index` of the run whose data is at `path`."""
    from flwr.client import NumPyClient

    from pipelines.core.config import TrainConfig
    from pipelines.training.train import _penalized, build_model, seed_everything

    data = load(path)
    config = TrainConfig(**data.settings["train"])
    penalty, constraint = float(data.settings["penalty"]), str(data.settings["constraint"])
    rows = data.parts[index]

    class Device(NumPyClient):
        def fit(self, parameters, run_config):
            key = (path, index)
            if key not in _MODELS:
                seed_everything(config.seed + index)
                network = build_model(data.x.shape[1], config)
                _MODELS[key] = (network, _penalized(network, penalty, constraint, config)
                                if penalty > 0 and data.groups is not None else network)
            network, fitted = _MODELS[key]
            network.set_weights(parameters)
            y_fit = data.y[rows]
            if fitted is not network:
                y_fit = np.column_stack([y_fit, data.groups[rows]]).astype(np.float32)
            weights = None if data.sample_weight is None else data.sample_weight[rows]
            out = fitted.fit(data.x[rows], y_fit, sample_weight=weights, epochs=int(data.settings["local_epochs"]),
                             batch_size=config.batch_size, shuffle=True, verbose=0)
            return network.get_weights(), len(rows), {"loss": float(out.history["loss"][-1])}

    return Device()


class DeviceFactory:
    """Flower's client_fn (picklable: a worker imports this module and gets the path): the device named by the
    virtual SuperNode's partition-id."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, context):
        return _device(self.path, int(context.node_config["partition-id"])).to_client()


def client_app(path: Path, *, secagg: bool, client_dp: bool):
    """A ClientApp with Flower's mods (SecAgg+, client-side clipping) over the device data at `path`."""
    from flwr.client.mod import fixedclipping_mod, secaggplus_mod
    from flwr.clientapp import ClientApp

    mods: list = ([secaggplus_mod] if secagg else []) + ([fixedclipping_mod] if client_dp else [])
    return ClientApp(client_fn=DeviceFactory(str(path)), mods=mods)

