"""Privacy-preserving training: the accountant against a closed form, clipping, bad configurations, Flower on
this machine (SecAgg+ and client DP), and the private model through the pipeline's own steps."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.core.config import DpConfig, FederatedConfig, TrainConfig, load_settings
from pipelines.core.errors import PipelineError
from pipelines.training import accountant


def analytic_gaussian_epsilon(sigma: float, delta: float) -> float:
    """Balle & Wang (2018), Theorem 8: the exact epsilon of one Gaussian mechanism (sensitivity 1, std sigma)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def delta_at(eps: float) -> float:
        return norm.cdf(-eps * sigma + 1 / (2 * sigma)) - math.exp(eps) * norm.cdf(-eps * sigma - 1 / (2 * sigma))

    return brentq(lambda eps: delta_at(eps) - delta, 1e-6, 100)


@pytest.mark.parametrize(("sigma", "steps"), [(1.0, 1), (2.0, 4), (4.0, 50)])
def test_accountant_matches_the_exact_gaussian_mechanism_without_subsampling(sigma, steps):
    """With sampling rate 1, T Gaussian steps of noise sigma are one Gaussian of noise sigma / sqrt(T)."""
    exact = analytic_gaussian_epsilon(sigma / math.sqrt(steps), 1e-5)
    measured = accountant.epsilon(sigma, 1.0, steps, 1e-5)
    assert exact <= measured <= exact + 2 * accountant.EPS_ERROR + 1e-3  # an upper bound within the set error


def test_subsampling_and_noise_lower_epsilon_and_auto_noise_meets_the_target():
    base = accountant.epsilon(1.0, 0.05, 100, 1e-5)
    assert accountant.epsilon(1.0, 0.02, 100, 1e-5) < base < accountant.epsilon(0.8, 0.05, 100, 1e-5)
    noise = accountant.noise_for(3.0, 0.05, 100, 1e-5)
    assert accountant.epsilon(noise, 0.05, 100, 1e-5) <= 3.0 < accountant.epsilon(noise / 1.02, 0.05, 100, 1e-5)


def test_a_gate_below_what_the_noise_allows_stops_before_training():
    from pipelines.training.dp_sgd import budget

    with pytest.raises(PipelineError, match=r"privacy.dp: noise_multiplier 0.5 .* above the gate max_epsilon 3"):
        budget(20_000, DpConfig(noise_multiplier=0.5, epochs=10, batch_size=512))
    with pytest.raises(PipelineError, match="privacy.dp: target_epsilon 5 is above the gate max_epsilon 3"):
        budget(20_000, DpConfig(target_epsilon=5.0, max_epsilon=3.0))
    planned = budget(20_000, DpConfig(noise_multiplier=2.0, epochs=2))
    assert planned.epsilon <= 3.0 and planned.steps == math.ceil(2 / (512 / 20_000))


def test_per_example_gradients_are_each_rows_own_and_clipping_bounds_them():
    import keras
    import tensorflow as tf

    from pipelines.training.dp_sgd import clipped_noisy_sum, per_example_gradients
    from pipelines.training.train import build_model

    keras.utils.set_random_seed(0)
    model = build_model(5, TrainConfig(hidden_units=[8], dropout=0.0))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(scale=3.0, size=(6, 5)), tf.float32)
    y = tf.constant([1, 0, 1, 0, 1, 1], tf.float32)
    grads = per_example_gradients(model, x, y)
    for row in (0, 4):  # the vectorized row equals that row's gradient taken alone
        alone = per_example_gradients(model, x[row:row + 1], y[row:row + 1])
        for batched, single in zip(grads, alone):
            np.testing.assert_allclose(batched[row].numpy(), single[0].numpy(), rtol=1e-4, atol=1e-6)
    clip = 0.05
    sums, norms = clipped_noisy_sum(grads, clip, 0.0)
    assert float(tf.reduce_max(norms)) > clip  # the test data needs clipping to mean anything
    for row in range(6):  # each row's clipped contribution has norm <= clip
        one, _ = clipped_noisy_sum([g[row:row + 1] for g in grads], clip, 0.0)
        assert math.sqrt(sum(float(tf.reduce_sum(s ** 2)) for s in one)) <= clip * (1 + 1e-5)
    total = math.sqrt(sum(float(tf.reduce_sum(s ** 2)) for s in sums))
    assert total <= 6 * clip * (1 + 1e-5)
    noisy, _ = clipped_noisy_sum(grads, clip, 1.0)
    assert not np.allclose(noisy[0].numpy(), sums[0].numpy())  # noise is added


def frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"kind": rng.choice(["a", "b", "c"], size=rows, p=[0.6, 0.3, 0.1]),
                         "x": rng.normal(size=rows)})


def test_partition_is_non_iid_and_covers_every_row_once():
    from pipelines.training.federated import partition

    data = frame(600)
    parts = partition(data, FederatedConfig(devices=5, partition_column="kind", alpha=0.3))
    joined = np.concatenate(parts)
    assert len(parts) == 5 and all(len(p) for p in parts)
    assert sorted(joined.tolist()) == list(range(600))
    shares = [data["kind"].iloc[p].value_counts(normalize=True).reindex(["a", "b", "c"], fill_value=0) for p in parts]
    assert max(abs(s["a"] - 0.6) for s in shares) > 0.2  # skewed devices, not a shuffle


@pytest.mark.parametrize(("config", "message"), [
    (FederatedConfig(devices=5, partition_column="nope"), "partition_column: column 'nope' is not in the training"),
    (FederatedConfig(devices=100, partition_column="kind"), "devices: 100 devices but only 60 training rows"),
    (FederatedConfig(devices=2, partition_column="kind", secagg=True), "SecAgg\\+ needs at least 3 devices"),
])
def test_bad_federated_configs_stop_with_one_line(config, message):
    from pipelines.training.federated import partition

    with pytest.raises(PipelineError, match=message):
        partition(frame(), config)


def test_bad_privacy_params_are_one_line(small_project: Path):
    with pytest.raises(PipelineError, match="key 'train.privacy'"):
        load_settings(small_project / "params.yaml", {"train.privacy": "homomorphic"})
    with pytest.raises(PipelineError, match="secagg_threshold must be below secagg_shares"):
        load_settings(small_project / "params.yaml", {"privacy.federated.secagg_threshold": 5})
    with pytest.raises(PipelineError, match="secagg_shares must be odd"):
        load_settings(small_project / "params.yaml", {"privacy.federated.secagg_shares": 6})
    assert load_settings(small_project / "params.yaml").params.train.privacy == "none"  # today's behaviour


def _toy(rows: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    return x, (x[:, 0] + 0.3 * rng.normal(size=rows) > 0).astype(np.float32)


def test_flower_fedavg_rounds_on_this_machine():
    """2 devices, 2 FedAvg rounds through Flower's runtime on its own Ray backend (no module put in Flower's place);
    traffic is the float32 model each way."""
    import sys

    import flwr

    from pipelines.training.federated import train_federated

    x, y = _toy()
    fed = FederatedConfig(devices=2, rounds=2, local_epochs=2)
    model, history, facts = train_federated(x, y, [np.arange(0, 150), np.arange(150, 260)], x[260:], y[260:],
                                            TrainConfig(hidden_units=[4], dropout=0.0, batch_size=32), fed)
    weights = 4 * sum(w.size for w in model.get_weights())
    assert len(history["loss"]) == 2 and facts["traffic"]["device_rounds"] == 4
    assert weights <= facts["traffic"]["mean_bytes_down_per_device_round"] <= weights + 2048
    assert weights <= facts["traffic"]["mean_bytes_up_per_device_round"] <= weights + 2048
    assert facts["client_dp"] is None and facts["secure_aggregation"] is None
    assert facts["engine"] == "flwr (Simulation Runtime, Ray backend)"
    backend = sys.modules["flwr.server.superlink.fleet.vce.backend.raybackend"]
    assert Path(backend.__file__).is_relative_to(Path(flwr.__file__).parent) and "ray" in sys.modules


def test_a_missing_ray_stops_federated_training_with_one_line(monkeypatch):
    from pipelines.training import flower_engine

    real = flower_engine.importlib.util.find_spec
    monkeypatch.setattr(flower_engine.importlib.util, "find_spec", lambda name: None if name == "ray" else real(name))
    with pytest.raises(PipelineError, match=r"^privacy.federated: Flower's simulation engine needs ray, which is "
                                            r"not installed \(pip install 'flwr\[simulation\]==1.42.0', as "
                                            r"requirements.lock pins it\)$"):
        flower_engine.run(None, None, 2)


def test_device_data_reaches_the_engine_workers_whole(tmp_path: Path):
    """What the server side writes for the ClientApps is what a worker reads: rows, each device's rows, settings,
    and the optional weights and groups."""
    from pipelines.training import flower_client

    x, y = _toy(20)
    parts = [np.array([0, 3, 5]), np.array([1]), np.arange(6, 20)]
    settings = {"train": TrainConfig().model_dump(mode="json"), "local_epochs": 2, "penalty": 1.5,
                "constraint": "demographic_parity"}
    path = flower_client.write(tmp_path / "a.npz", x, y, parts, settings, sample_weight=np.linspace(0, 1, 20),
                               groups=np.eye(2)[np.arange(20) % 2])
    data = flower_client.load(str(path))
    assert [p.tolist() for p in data.parts] == [p.tolist() for p in parts]
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.groups, np.eye(2)[np.arange(20) % 2])
    assert data.settings == settings and TrainConfig(**data.settings["train"]) == TrainConfig()
    bare = flower_client.load(str(flower_client.write(tmp_path / "b.npz", x, y, parts, settings)))
    assert bare.sample_weight is None and bare.groups is None


@pytest.mark.slow
def test_secagg_sums_what_fedavg_sums_and_client_dp_adds_noise():
    """3 devices, 1 round through Flower's runtime: SecAgg+'s masked, quantized sum gives FedAvg's model; client-side
    clipping + noise changes it; traffic and device-level epsilon are reported."""
    from pipelines.training.federated import train_federated

    # SecAgg+ scales an update by rows / max_weight (default 1000) before quantizing it into [-8, 8]: a 22,000-row
    # device's weights above 8 / 22 would be clipped in the sum unless max_weight covers it
    x, y = _toy(24_300)
    parts = [np.arange(0, 22_000), np.arange(22_000, 23_000), np.arange(23_000, 24_000)]
    config = TrainConfig(hidden_units=[4], dropout=0.0, batch_size=32_768, learning_rate=0.05)  # one batch an epoch

    def run(**switches):
        fed = FederatedConfig(devices=3, rounds=1, local_epochs=3, secagg_shares=3, secagg_threshold=2, **switches)
        return train_federated(x, y, parts, x[24_000:], y[24_000:], config, fed)

    plain, _, _ = run()
    masked, _, facts = run(secagg=True)
    for a, b in zip(plain.get_weights(), masked.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)  # quantization error only
    noisy, _, noisy_facts = run(secagg=True, client_dp=True, noise_multiplier=0.5, clipping_norm=0.5)
    assert not all(np.allclose(a, b, atol=1e-3) for a, b in zip(masked.get_weights(), noisy.get_weights()))
    weights = 4 * sum(w.size for w in plain.get_weights())
    assert facts["traffic"]["mean_bytes_up_per_device_round"] > weights  # masked vectors and key shares
    assert facts["secure_aggregation"] == "SecAgg+" and facts["client_dp"] is None
    assert noisy_facts["client_dp"]["epsilon"] > 0 and noisy_facts["client_dp"]["unit"] == "device"


def _small_private_project(small_project: Path, overrides: dict) -> object:
    path = small_project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(params))
    return load_settings(path)


def test_an_unreachable_epsilon_gate_stops_trained_model_before_training(small_project: Path):
    from pipelines.catalog import step_function
    from pipelines.core.paths import ArtifactPaths

    settings = _small_private_project(small_project, {"train.privacy": "dp_sgd", "privacy.dp.noise_multiplier": 0.3})
    for name in ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits"):
        step_function(name)(settings)
    with pytest.raises(PipelineError, match="above the gate max_epsilon"):
        step_function("trained_model")(settings)
    assert not ArtifactPaths(small_project).trained_model.exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dp_sgd", "federated"])
def test_private_models_go_through_the_same_steps(small_project: Path, mode: str):
    """The private model is trained, recorded, evaluated, converted and carded like the central one."""
    from pipelines.catalog import step_function
    from pipelines.core.io import read_json
    from pipelines.core.paths import PRIVACY_FILE, ArtifactPaths

    settings = _small_private_project(small_project, {
        "train.privacy": mode, "privacy.dp.epochs": 3, "privacy.dp.batch_size": 128,
        "privacy.federated.devices": 3, "privacy.federated.rounds": 3, "privacy.federated.secagg": True,
        "privacy.federated.secagg_shares": 3, "privacy.federated.secagg_threshold": 2, "fairness.strength": 1.0})
    for name in ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits", "teacher_model",
                 "trained_model", "model_evaluation", "tflite_model"):
        result = step_function(name)(settings)
    paths = ArtifactPaths(small_project)
    facts = read_json(paths.trained_model / PRIVACY_FILE)
    assert facts["method"] == mode
    summary = read_json(paths.metrics("trained_model"))
    if mode == "dp_sgd":
        assert summary["privacy_epsilon"] == pytest.approx(facts["epsilon"]) and facts["epsilon"] <= 3.0
    else:
        assert summary["federated_mb_per_device_round"] > 0
    assert result.summary  # converted and scored by LiteRT like any model


def test_the_model_card_states_the_budget_and_the_federation(small_project: Path):
    from pipelines.core.io import write_json
    from pipelines.core.paths import PRIVACY_FILE, ArtifactPaths
    from pipelines.governance.model_card import _training_privacy

    settings = load_settings(small_project / "params.yaml")
    assert _training_privacy(settings)[1] == ["Training is central and not differentially private (train.privacy: none)."]
    target = ArtifactPaths(small_project).trained_model / PRIVACY_FILE
    target.parent.mkdir(parents=True)
    planned = accountant.Budget(epsilon=2.97, delta=1e-5, noise_multiplier=1.05, sampling_rate=0.019, steps=790)
    write_json(target, {"method": "dp_sgd", **planned.facts(), "l2_clip": 1.0, "max_epsilon": 3.0})
    facts, lines = _training_privacy(settings)
    assert facts["epsilon"] == 2.97 and "(2.970, 1e-05)-differential privacy per training row" in lines[0]
    write_json(target, {"method": "federated", "strategy": "FedAvg", "devices": 10, "partition_column": "workclass",
                        "alpha": 0.5, "rounds": 20, "secure_aggregation": "SecAgg+",
                        "traffic": {"mb_per_device_round": 0.068},
                        "client_dp": {"epsilon": 12.5, "delta": 1e-5, "steps": 20, "clipping_norm": 1.0,
                                      "noise_multiplier": 0.8}})
    _, lines = _training_privacy(settings)
    assert "0.068 MB per device per round" in lines[0] and lines[1].startswith("Secure aggregation (SecAgg+)")
    assert lines[2].startswith("Client-level DP: (12.5, 1e-05) per device over 20 rounds")
