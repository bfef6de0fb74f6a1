"""Federated averaging of the project's Keras model with Flower, over training rows split into simulated devices.

Devices are non-IID: the rows of each value of `privacy.federated.partition_column` are spread over the devices
with Dirichlet(alpha) proportions (the scheme of Flower Datasets' DirichletPartitioner), so each device sees a
skewed mix. Rounds are Flower's: a legacy FedAvg strategy driven by DefaultWorkflow (or SecAggPlusWorkflow for
secure aggregation) in a ServerApp, a NumPyClient per device in a ClientApp with Flower's mods
(`secaggplus_mod`; `fixedclipping_mod` with DifferentialPrivacyClientSideFixedClipping for client-level DP).
Traffic is measured by the server's grid from the records each device receives and sends (Flower's `count_bytes`).
ClientApps run in Flower's engine's worker processes (pipelines.training.flower_client); the ServerApp runs here.
"""
from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import FederatedConfig, TrainConfig
from pipelines.core.errors import PipelineError
from pipelines.core.progress import Progress


def check(frame: pd.DataFrame, config: FederatedConfig) -> None:
    """Stop before training when the devices cannot be formed (one line naming the key)."""
    if config.partition_column not in frame.columns:
        raise PipelineError(f"privacy.federated.partition_column: column '{config.partition_column}' is not in "
                            f"the training split (columns: {', '.join(map(str, frame.columns))})")
    if config.devices > len(frame):
        raise PipelineError(f"privacy.federated.devices: {config.devices} devices but only {len(frame)} "
                            "training rows; every device needs at least one row")
    if config.fraction_fit * config.devices < 1:
        raise PipelineError(f"privacy.federated.fraction_fit: {config.fraction_fit:g} x {config.devices} devices "
                            "samples no device in a round")
    if config.secagg and config.fraction_fit * config.devices < 3:
        raise PipelineError(f"privacy.federated.secagg: SecAgg+ needs at least 3 devices a round (got "
                            f"{config.fraction_fit:g} x {config.devices})")


def partition(frame: pd.DataFrame, config: FederatedConfig) -> list[np.ndarray]:
    """Row positions of each device: every value's rows split over the devices by Dirichlet(alpha) shares; then
    every device that ended up empty takes a row from the largest device."""
    check(frame, config)
    rng = np.random.default_rng(config.seed)
    values = frame[config.partition_column].astype("string").fillna("(missing)").to_numpy()
    devices: list[list[int]] = [[] for _ in range(config.devices)]
    for value in sorted(set(values)):
        rows = rng.permutation(np.flatnonzero(values == value))
        shares = rng.dirichlet(np.full(config.devices, config.alpha))
        cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
        for device, part in enumerate(np.split(rows, cuts)):
            devices[device].extend(part.tolist())
    for members in devices:
        if not members:
            members.append(max(devices, key=len).pop())
    return [np.sort(np.asarray(d, dtype=int)) for d in devices]


class Traffic:
    """Bytes each device receives and sends, per round (counted by the server's grid; rounds set by the server)."""

    def __init__(self) -> None:
        from pipelines.training.flower_engine import new_counts

        self.round = 0
        self.down, self.up = new_counts()

    def grid(self, grid):
        """`grid` counting every message to and from a device: what crosses the network, after SecAgg+ masking
        and clipping."""
        from pipelines.training.flower_engine import counting_grid

        return counting_grid(grid, self.down, self.up, lambda: self.round)

    def summary(self, devices: int, rounds: int) -> dict[str, Any]:
        pairs = set(self.down) | set(self.up)
        per = [self.down[p] + self.up[p] for p in pairs]
        up = [self.up[p] for p in pairs]
        down = [self.down[p] for p in pairs]
        return {"device_rounds": len(pairs), "devices": devices, "rounds": rounds,
                "mean_bytes_up_per_device_round": float(np.mean(up)) if up else 0.0,
                "mean_bytes_down_per_device_round": float(np.mean(down)) if down else 0.0,
                "max_bytes_per_device_round": int(max(per)) if per else 0,
                "mb_per_device_round": float(np.mean(per)) / 1e6 if per else 0.0,
                "per_round": {r: {"up": sum(v for (d, rr), v in self.up.items() if rr == r),
                                  "down": sum(v for (d, rr), v in self.down.items() if rr == r)}
                              for r in sorted({r for _, r in pairs})}}


def client_epsilon(config: FederatedConfig, delta: float = 1e-5) -> dict[str, Any] | None:
    """Device-level (user-level) DP of the aggregate: each round is a Gaussian mechanism on the sum of clipped
    updates (std noise_multiplier x clipping_norm), devices sampled with probability fraction_fit."""
    if not config.client_dp:
        return None
    from pipelines.training.accountant import epsilon

    if config.noise_multiplier == 0:
        return {"epsilon": float("inf"), "delta": delta, "unit": "device", "noise_multiplier": 0.0,
                "sampling_rate": config.fraction_fit, "steps": config.rounds, "clipping_norm": config.clipping_norm}
    return {"epsilon": epsilon(config.noise_multiplier, config.fraction_fit, config.rounds, delta),
            "delta": delta, "unit": "device", "noise_multiplier": config.noise_multiplier,
            "sampling_rate": config.fraction_fit, "steps": config.rounds, "clipping_norm": config.clipping_norm,
            "accountant": "prv-accountant PRVAccountant(PoissonSubsampledGaussianMechanism), upper bound"}


def train_federated(x_train: np.ndarray, y_train: np.ndarray, parts: list[np.ndarray], x_val: np.ndarray,
                    y_val: np.ndarray, config: TrainConfig, fed: FederatedConfig, *,
                    sample_weight: np.ndarray | None = None, groups: np.ndarray | None = None,
                    penalty: float = 0.0, constraint: str = "demographic_parity", delta: float = 1e-5,
                    ) -> tuple[Any, dict[str, list[float]], dict[str, Any]]:
    """FedAvg rounds with Flower; returns the global Keras model, per-round history and the facts of the run.

    Mitigation, when given, is applied on each device's own batches (penalty or weights), like central training."""
    import keras
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

    from pipelines.training import flower_client, flower_engine
    from pipelines.training.train import build_model, seed_everything

    seed_everything(config.seed, config.threads)
    server_model = build_model(x_train.shape[1], config)
    initial = server_model.get_weights()
    traffic, history = Traffic(), defaultdict(list)
    final: dict[str, Any] = {}
    settings = {"train": config.model_dump(mode="json"), "local_epochs": fed.local_epochs, "penalty": penalty,
                "constraint": constraint}
    sampled = max(1, int(round(fed.fraction_fit * fed.devices)))

    def evaluate(server_round: int, weights, _config):
        server_model.set_weights(weights)
        loss, accuracy, auc = server_model.evaluate(x_val, y_val, batch_size=4096, verbose=0)
        if server_round > 0:
            history["val_loss"].append(float(loss))
            history["val_accuracy"].append(float(accuracy))
            history["val_auc"].append(float(auc))
        final["weights"], final["round"] = [np.copy(w) for w in weights], server_round
        if server_round > 0:
            rounds.advance(note=f"val_loss {float(loss):.4f}")
        return float(loss), {"accuracy": float(accuracy)}

    def fit_config(server_round: int) -> dict:
        traffic.round = server_round
        history["wall_seconds"].append(time.perf_counter() - started)
        return {"server_round": server_round}

    def fit_metrics(results):
        total = sum(n for n, _ in results)
        loss = sum(n * m["loss"] for n, m in results) / max(total, 1)
        history["loss"].append(float(loss))
        return {"loss": float(loss)}

    server_app = ServerApp()

    @server_app.main()
    def main(grid, context: Context) -> None:
        strategy = FedAvg(fraction_fit=fed.fraction_fit, fraction_evaluate=0.0, min_fit_clients=sampled,
                          min_available_clients=fed.devices, initial_parameters=ndarrays_to_parameters(initial),
                          evaluate_fn=evaluate, on_fit_config_fn=fit_config, fit_metrics_aggregation_fn=fit_metrics)
        if fed.client_dp:
            strategy = DifferentialPrivacyClientSideFixedClipping(  # type: ignore[assignment]  # wraps FedAvg
                strategy, noise_multiplier=fed.noise_multiplier, clipping_norm=fed.clipping_norm,
                num_sampled_clients=sampled)
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=fed.rounds), strategy=strategy)
        shares = min(fed.secagg_shares, sampled)  # all devices when fewer are sampled than shares
        # max_weight bounds a device's example count: SecAgg+ scales each update by count / max_weight before
        # quantizing it into [-8, 8], so a device above the bound would have its weights clipped in the sum
        fit_workflow = SecAggPlusWorkflow(num_shares=shares,
                                          reconstruction_threshold=min(fed.secagg_threshold, shares - 1),
                                          max_weight=float(max(len(p) for p in parts))) \
            if fed.secagg else None
        DefaultWorkflow(fit_workflow=fit_workflow)(traffic.grid(grid), legacy)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="federated-") as folder, \
            Progress("federated rounds", fed.rounds) as rounds:
        data = flower_client.write(Path(folder) / "devices.npz", x_train, y_train, parts, settings,
                                   sample_weight=sample_weight, groups=groups if penalty > 0 else None)
        client_app = flower_client.client_app(data, secagg=fed.secagg, client_dp=fed.client_dp)
        flower_engine.run(server_app, client_app, fed.devices)
    seconds = time.perf_counter() - started
    if final.get("round") != fed.rounds or len(history["loss"]) != fed.rounds:
        raise PipelineError(f"privacy.federated: Flower aggregated {len(history['loss'])} of {fed.rounds} rounds "
                            "(a device failed; the log above has its error)")
    server_model.set_weights(final["weights"])
    server_model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="binary_crossentropy",
                         metrics=["accuracy", keras.metrics.AUC(name="auc")])
    rows = [len(p) for p in parts]
    facts = {"method": "federated", "engine": "flwr (Simulation Runtime, Ray backend)",
             "strategy": "FedAvg" + (" + DifferentialPrivacyClientSideFixedClipping" if fed.client_dp else ""),
             "secure_aggregation": "SecAgg+" if fed.secagg else None, "devices": fed.devices,
             "partition_column": fed.partition_column, "alpha": fed.alpha, "rounds": fed.rounds,
             "local_epochs": fed.local_epochs, "sampled_per_round": sampled, "rows_per_device": rows,
             "wall_seconds": seconds, "traffic": traffic.summary(fed.devices, fed.rounds),
             "client_dp": client_epsilon(fed, delta)}
    history.pop("wall_seconds", None)
    return server_model, {k: list(v) for k, v in history.items()}, facts
