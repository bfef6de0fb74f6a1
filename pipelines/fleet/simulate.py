"""`mobile-mlops fleet simulate`: realistic device-day telemetry from a release, with injectable faults.

Predictions come from the release's real TFLite model (LiteRT) on held-out rows; latency and energy from the
footprint's per-tier estimates with device and inference noise; connectivity and offload from the release's
offload policy and the FinOps fleet shares; downloads from the released file sizes. Every draw is vectorized
over the day's inferences, so a 100k-device day takes well under a second. The true sensitive group of each
device stays inside the simulator (`Fleet.truth`): telemetry carries only its randomized-response report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import read_json
from pipelines.core.paths import FEATURE_SPEC_FILE, RELEASE_PROFILE_FILE, ArtifactPaths, tflite_file
from pipelines.data.features import FeatureSpec, encode_features, encode_labels
from pipelines.fleet import ldp
from pipelines.fleet.schema import BUCKETS, HIST, LATENCY_EDGES_MS, typed
from pipelines.release_format.litert import predict_tflite

FAULTS = ("latency", "crash", "data", "fairness", "accuracy")
CRASH_PER_SESSION = 0.0002
FEEDBACK_RATE = 0.3  # share of inferences whose outcome the app learns
ACTIVE_PER_DAY = 0.9


@dataclass
class Model:
    """What the simulator needs from one release."""

    version: str
    proba: np.ndarray  # real TFLite scores of the held-out rows
    threshold: float
    delta: float  # offload band
    tier_ms: dict[str, tuple[float, float]]  # tier -> (median ms, lognormal sigma)
    tier_mj: dict[str, float]
    model_bytes: dict[str, int]


def load_model(settings: Settings, folder: Path, frame: pd.DataFrame) -> Model:
    """Score the held-out rows with the release's Android TFLite model and read its estimates."""
    footprint, offload, cost = (read_json(folder / n) for n in ("footprint.json", "offload.json", "cost.json"))
    android = footprint["platforms"]["android"]
    selected = android["selected"]
    model_file = folder / tflite_file(selected)
    if not model_file.is_file():
        raise PipelineError(f"{folder}: {model_file.name} (the selected Android variant) is missing")
    spec = FeatureSpec.model_validate(read_json(folder / FEATURE_SPEC_FILE)["spec"])
    proba = predict_tflite(model_file.read_bytes(), encode_features(frame, spec))
    tiers = {}
    for tier, estimate in android["variants"][selected]["estimates"].items():
        p50, p95 = float(estimate["p50_ms"]), float(estimate["p95_ms"])
        tiers[tier] = (p50, max(np.log(max(p95, p50) / p50) / 1.645, 0.1))
    energy = {t: float(e["energy_mj"]) for t, e in android["variants"][selected]["estimates"].items()}
    sizes = {p: int(v["model_bytes"]) for p, v in cost["release"]["platforms"].items()}
    app = offload["app_config"]
    return Model(str(folder.name), proba, float(app["threshold"]), float(app["delta"]), tiers, energy, sizes)


@dataclass
class Fleet:
    """The simulated devices: fixed attributes, their true group (never reported) and memoized RR report."""

    install: np.ndarray
    device_id: np.ndarray
    platform: np.ndarray
    tier: np.ndarray
    truth: np.ndarray  # true group index
    reported: np.ndarray  # randomized-response report (memoized per epoch)
    bucket: np.ndarray  # 0..99 rollout bucket from a hash of the install id
    device_effect: np.ndarray
    has_version: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Simulator:
    settings: Settings
    frame: pd.DataFrame  # held-out rows
    labels: np.ndarray
    group_rows: list[np.ndarray]  # row indices of each true group
    candidate: Model
    production: Model
    fleet: Fleet
    rng: np.random.Generator
    faults: dict[str, float] = field(default_factory=dict)
    salt: str = "epoch-0"
    cohorts: tuple[str, str] = ("canary", "production")  # (new model, current model); A/B: (arm B, arm A)

    def day(self, date: str, canary_percent: int, feature_devices: int = 0) -> tuple[pd.DataFrame, dict]:
        """One day of telemetry: (device-day records, the day's input-bucket counts per device sampled)."""
        params, fleet, rng = self.settings.params, self.fleet, self.rng
        finops = params.finops
        active = np.flatnonzero(rng.random(len(fleet.install)) < ACTIVE_PER_DAY)
        canary = fleet.bucket[active] < canary_percent
        n_dev = len(active)
        inferences = rng.poisson(finops.fleet.inferences_per_device_per_day, n_dev)
        sessions = 1 + rng.poisson(2.0, n_dev)
        owner = np.repeat(np.arange(n_dev), inferences)  # inference -> active-device position
        on_canary = canary[owner]
        truth = fleet.truth[active][owner]
        rows = np.empty(len(owner), dtype=np.int64)
        for g, pool in enumerate(self.group_rows):
            mask = truth == g
            rows[mask] = pool[rng.integers(0, len(pool), int(mask.sum()))]
        proba = np.where(on_canary, self.candidate.proba[rows], self.production.proba[rows])
        threshold = self.candidate.threshold
        predicted = proba >= threshold
        if "accuracy" in self.faults:
            flip = on_canary & (rng.random(len(rows)) < self.faults["accuracy"])
            predicted = np.where(flip, ~predicted, predicted)
        if "fairness" in self.faults:
            lift = on_canary & (truth == len(self.group_rows) - 1) & (rng.random(len(rows)) < self.faults["fairness"])
            predicted = predicted | lift
        correct = predicted == (self.labels[rows] > 0.5)
        feedback = rng.random(len(rows)) < FEEDBACK_RATE
        # connectivity per inference; offload when online and the score is inside the policy's band
        share = finops.fleet.connectivity_share
        conn = rng.choice(3, size=len(rows), p=[share["wifi"], share["cellular"], share["offline"]])
        delta = np.where(on_canary, self.candidate.delta, self.production.delta)
        offload = (conn < 2) & (np.abs(proba - threshold) < delta)
        payload = np.full(len(rows), float(finops.endpoint.payload_bytes))
        if "data" in self.faults:
            offload = offload | (on_canary & (conn < 2))
            payload = np.where(on_canary, payload * self.faults["data"], payload)
        rtt = np.where(conn == 0, finops.endpoint.network_rtt_ms["wifi"], finops.endpoint.network_rtt_ms["cellular"])
        cloud_ms = np.where(offload, rtt + finops.endpoint.duration_ms * rng.lognormal(0, 0.2, len(rows)), 0.0)
        # on-device latency and energy: the tier's estimate, a per-device factor and per-inference noise
        tiers = fleet.tier[active]
        tier_of = tiers[owner]
        median = np.empty(len(rows))
        sigma = np.empty(len(rows))
        energy = np.empty(len(rows))
        for tier, (p50, s) in self.candidate.tier_ms.items():
            mask = tier_of == tier
            median[mask], sigma[mask] = p50, s
            energy[mask] = self.candidate.tier_mj.get(tier, 0.0)
        slow = np.exp(fleet.device_effect[active][owner])
        if "latency" in self.faults:
            slow = np.where(on_canary, slow * self.faults["latency"], slow)
        latency = median * slow * rng.lognormal(0, sigma)
        energy = energy * slow * rng.lognormal(0, 0.1, len(rows))
        hist = np.bincount(owner * BUCKETS + np.searchsorted(LATENCY_EDGES_MS, latency, side="right"),
                           minlength=n_dev * BUCKETS).reshape(n_dev, BUCKETS)
        crash_p = np.where(canary, CRASH_PER_SESSION * self.faults.get("crash", 1.0), CRASH_PER_SESSION)
        crashes = rng.binomial(sessions, np.minimum(crash_p, 1.0))

        def per_device(values: np.ndarray) -> np.ndarray:
            return np.bincount(owner, weights=values, minlength=n_dev)

        version = np.where(canary, self.candidate.version, self.production.version)
        platform = fleet.platform[active]
        download_wifi = np.zeros(n_dev, dtype=np.int64)
        download_cell = np.zeros(n_dev, dtype=np.int64)
        for model in {self.candidate.version: self.candidate, self.production.version: self.production}.values():
            have = fleet.has_version.setdefault(model.version, np.zeros(len(fleet.install), dtype=bool))
            new = (version == model.version) & ~have[active]
            size = np.array([model.model_bytes.get(p, 0) for p in platform])
            cellular = rng.random(n_dev) < finops.fleet.cellular_share
            download_wifi += np.where(new & ~cellular, size, 0)
            download_cell += np.where(new & cellular, size, 0)
            have[active[new]] = True
        records = pd.DataFrame({
            "device_id": fleet.device_id[active], "salt_epoch": 0, "day": date, "app_version": "1.0.0",
            "model_version": version, "variant": np.where(canary, *self.cohorts), "platform": platform,
            "tier": tiers, "group_rr": fleet.reported[active], "sessions": sessions, "inferences": inferences,
            "crashes": crashes, "download_bytes_wifi": download_wifi, "download_bytes_cellular": download_cell,
            "offload_calls": per_device(offload.astype(float)).round(),
            "offload_bytes": per_device(np.where(offload, payload, 0.0)).round(),
            "predicted_positive": per_device(predicted.astype(float)).round(),
            "feedback_count": per_device(feedback.astype(float)).round(),
            "feedback_correct": per_device((feedback & correct).astype(float)).round(),
            "battery_mj": per_device(energy), "cloud_latency_ms_sum": per_device(cloud_ms),
            "latency_max_ms": np.maximum.reduceat(np.append(latency, 0.0), _starts(inferences)) * (inferences > 0),
        })
        records[list(HIST)] = hist
        features = {}
        if feature_devices:
            features = self._feature_counts(owner, rows, min(feature_devices, n_dev))
        return typed(records), features

    def _feature_counts(self, owner: np.ndarray, rows: np.ndarray, devices: int) -> dict[str, list[int]]:
        """Bucket counts of the inputs of `devices` devices (the first inference of each), on the reference bins."""
        first = np.unique(owner, return_index=True)[1][:devices]
        return bucket_counts(self.frame.iloc[rows[first]][self.inputs], self.profile)  # type: ignore[attr-defined]  # model inputs only

    @property
    def profile(self) -> dict:
        return self._profile  # type: ignore[attr-defined]  # set by simulator()


def _starts(inferences: np.ndarray) -> np.ndarray:
    """reduceat offsets: each device's first inference (devices without any point at a zero sentinel)."""
    starts = np.concatenate([[0], np.cumsum(inferences)[:-1]])
    total = int(inferences.sum())
    return np.where(inferences > 0, starts, total)


def bucket_counts(frame: pd.DataFrame, profile: dict) -> dict[str, list[int]]:
    """Counts of `frame`'s values in the reference profile's bins (numeric edges, categories + other)."""
    out = {}
    for name, ref in profile["features"].items():
        if name not in frame.columns:
            continue
        if ref["kind"] == "numeric":
            inner = np.asarray(ref["edges"], dtype=float)[1:-1]
            values = pd.to_numeric(frame[name], errors="coerce").dropna().to_numpy()
            out[name] = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1).tolist()
        else:
            categories = list(ref["counts"])
            codes = pd.Categorical(frame[name].astype(str), categories=categories).codes
            out[name] = np.bincount(np.where(codes < 0, len(categories), codes),
                                    minlength=len(categories) + 1).tolist()
    return out


def held_out(settings: Settings) -> pd.DataFrame:
    path = ArtifactPaths(settings.root).dataset_splits / "test.parquet"
    if not path.is_file():
        raise PipelineError(f"{path}: held-out rows not found; run the pipeline (`make run`) first")
    return pd.read_parquet(path)


def build(settings: Settings, candidate: Path, production: Path | None = None, devices: int = 10_000,
          seed: int = 0, faults: dict[str, float] | None = None, frame: pd.DataFrame | None = None,
          models: tuple[Model, Model] | None = None, experiment: tuple[str, str, str] | None = None) -> Simulator:
    """A simulator of `devices` devices; `models` reuses already scored releases (seed sweeps); `experiment`
    (name, arm A, arm B) labels the cohorts as A/B arms assigned by a hash salted with the experiment name."""
    config = settings.params.fleet
    unknown = sorted(set(faults or {}) - set(FAULTS))
    if unknown:
        raise PipelineError(f"--fault {unknown[0]}: unknown; choose from {', '.join(FAULTS)}")
    frame = held_out(settings) if frame is None else frame
    if config.sensitive_feature not in frame.columns:
        raise PipelineError(f"fleet.sensitive_feature: column {config.sensitive_feature!r} is not in the held-out rows")
    group_of = pd.Categorical(frame[config.sensitive_feature].astype(str), categories=config.groups).codes
    group_rows = [np.flatnonzero(group_of == g) for g in range(len(config.groups))]
    if any(len(rows) == 0 for rows in group_rows):
        raise PipelineError(f"fleet.groups: some of {config.groups} have no held-out rows")
    if models is None:
        cand = load_model(settings, candidate, frame)
        prod = load_model(settings, production, frame) if production and production != candidate else cand
        models = (cand, prod)
    spec = FeatureSpec.model_validate(read_json(candidate / FEATURE_SPEC_FILE)["spec"])
    rng = np.random.default_rng(seed)
    install = np.array([f"install-{seed}-{i}" for i in range(devices)])
    finops = settings.params.finops.fleet
    tiers = list(finops.tier_share or {t: 1.0 for t in settings.params.devices.tiers})
    tier_p = np.array([(finops.tier_share or {}).get(t, 1.0) for t in tiers], dtype=float)
    platforms = list(finops.platform_share)
    platform_p = np.array([finops.platform_share[p] for p in platforms], dtype=float)
    truth = group_of[rng.integers(0, len(frame), devices)].astype(np.int64)  # the held-out group mix
    fleet = Fleet(
        install=install, device_id=np.array([ldp.device_key(i, "epoch-0") for i in install]),
        platform=np.array(platforms)[rng.choice(len(platforms), devices, p=platform_p / platform_p.sum())],
        tier=np.array(tiers)[rng.choice(len(tiers), devices, p=tier_p / tier_p.sum())], truth=truth,
        reported=ldp.randomize(truth, config.epsilon, len(config.groups), rng),
        bucket=np.array([ldp.bucket(i, experiment[0] if experiment else f"rollout-{models[0].version}")
                         for i in install]),
        device_effect=rng.normal(0, 0.15, devices))
    sim = Simulator(settings, frame, encode_labels(frame, spec), group_rows, models[0], models[1], fleet, rng,
                    dict(faults or {}),
                    cohorts=(experiment[2], experiment[1]) if experiment else ("canary", "production"))
    profile_path = candidate / RELEASE_PROFILE_FILE
    sim._profile = read_json(profile_path) if profile_path.is_file() else {"features": {}}  # type: ignore[attr-defined]
    sim.inputs = [f.name for f in [*spec.numeric, *spec.categorical]]  # type: ignore[attr-defined]  # never the label or a sensitive column
    return sim


def true_gap(sim: Simulator, frame: pd.DataFrame) -> float:
    """The simulator's true selection-rate gap over `frame`'s devices (true groups, which telemetry never has)."""
    index = pd.Series(np.arange(len(sim.fleet.device_id)), index=sim.fleet.device_id)
    groups = sim.fleet.truth[index.loc[frame["device_id"]].to_numpy()]
    sums = pd.DataFrame({"g": groups, "p": frame["predicted_positive"].to_numpy(),
                         "n": frame["inferences"].to_numpy()}).groupby("g")[["p", "n"]].sum()
    rates = sums["p"] / sums["n"]
    return float(rates.max() - rates.min())
