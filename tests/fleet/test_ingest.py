"""The telemetry contract at the door: bad batches refused with a count and never written; impossible
values quarantined; a real HTTP round trip on 127.0.0.1; nothing half-written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.core.config import FleetTelemetryConfig
from pipelines.fleet import store
from pipelines.fleet.ingest import Ingestor, signature
from pipelines.fleet.ldp import device_key
from pipelines.fleet.schema import BUCKETS, SCHEMA, Refused
from pipelines.fleet.server import make_server, post, serve_in_thread

KEY = b"test-key-0123456789abcdef"
CONFIG = FleetTelemetryConfig()


def record(i: int, day: str = "2026-01-01", **changes) -> dict:
    hist = [0] * BUCKETS
    hist[4] = 10
    base = {"device_id": device_key(f"install-{i}", "salt"), "salt_epoch": 0, "day": day, "app_version": "1.0",
            "model_version": "1", "variant": "canary", "platform": "android", "tier": "mid", "group_rr": i % 2,
            "sessions": 3, "inferences": 10, "crashes": 0, "latency_hist": hist, "latency_max_ms": 0.02,
            "battery_mj": 0.1, "download_bytes_wifi": 0, "download_bytes_cellular": 0, "offload_calls": 1,
            "offload_bytes": 2048, "cloud_latency_ms_sum": 90.0, "predicted_positive": 3, "feedback_count": 2,
            "feedback_correct": 2, "features": {"age": [1, 0, 0]}}
    return base | changes


def body(records: list[dict], batch_id: str = "batch-0001") -> bytes:
    return json.dumps({"schema": SCHEMA, "batch_id": batch_id, "records": records}).encode()


@pytest.fixture
def ingestor(tmp_path: Path) -> Ingestor:
    return Ingestor(tmp_path / "telemetry", CONFIG, KEY)


def nothing_written(directory: Path) -> bool:
    return not directory.exists() or not any(p.is_file() for p in directory.rglob("*"))


def test_a_valid_batch_is_stored_in_its_day_partition(ingestor: Ingestor):
    data = body([record(i) for i in range(5)] + [record(9, day="2026-01-02")])
    done = ingestor.accept(data, signature(KEY, data))
    assert (done.accepted, done.quarantined) == (6, 0)
    assert store.days(ingestor.directory) == ["2026-01-01", "2026-01-02"]
    frame = store.read_days(ingestor.directory)
    assert len(frame) == 6 and frame["lat_04"].sum() == 60
    assert store.feature_counts(ingestor.directory) == {"age": [6, 0, 0]}
    assert not list(ingestor.directory.rglob(".*"))  # no temp files left


@pytest.mark.parametrize(("make", "status", "rejected", "message"), [
    (lambda: (body([record(0), {**record(1), "inferences": "many"}]), True), 400, 2, "records.1.inferences"),
    (lambda: (body([{k: v for k, v in record(0).items() if k != "platform"}]), True), 400, 1, "platform"),
    (lambda: (body([record(0) | {"extra": 1}]), True), 400, 1, "extra"),
    (lambda: (b"{not json", True), 400, 0, "not JSON"),
    (lambda: (body([record(0)] * 2, batch_id="x"), True), 400, 2, "batch of 2 records refused"),
    (lambda: (body([record(0)] * 3), False), 401, 3, "X-Signature"),
    (lambda: (body([record(0)] * 2) + b" " * CONFIG.max_body_bytes, True), 413, 2, "max_body_bytes"),
])
def test_bad_batches_are_refused_with_a_count_and_never_written(ingestor: Ingestor, make, status, rejected, message):
    data, signed = make()
    with pytest.raises(Refused) as refused:
        ingestor.accept(data, signature(KEY, data) if signed else signature(b"wrong-key-0123456789", data))
    assert (refused.value.status, refused.value.rejected) == (status, rejected)
    assert message in refused.value.message
    assert nothing_written(ingestor.directory)


def test_a_batch_over_max_records_is_refused(tmp_path: Path):
    small = Ingestor(tmp_path / "telemetry", FleetTelemetryConfig(max_records=3), KEY)
    data = body([record(i) for i in range(4)])
    with pytest.raises(Refused) as refused:
        small.accept(data, signature(KEY, data))
    assert (refused.value.status, refused.value.rejected) == (413, 4) and "max_records is 3" in refused.value.message
    assert nothing_written(small.directory)


def test_a_replayed_batch_is_refused_and_not_duplicated(ingestor: Ingestor):
    data = body([record(0), record(1)])
    ingestor.accept(data, signature(KEY, data))
    with pytest.raises(Refused) as refused:
        ingestor.accept(data, signature(KEY, data))
    assert (refused.value.status, refused.value.rejected) == (409, 2)
    assert len(store.read_days(ingestor.directory)) == 2


@pytest.mark.parametrize(("change", "reason"), [
    ({"inferences": -5}, "negative count"),
    ({"latency_max_ms": 3_600_001.0}, "latency over"),
    ({"crashes": 9}, "more crashes than sessions"),
    ({"predicted_positive": 11}, "more positive predictions"),
    ({"group_rr": 7}, "group_rr outside"),
])
def test_impossible_values_quarantine_the_device_and_stay_out_of_the_analysis(ingestor: Ingestor, change, reason):
    from pipelines.fleet import canary

    bad = record(2) | change
    data = body([record(0), record(1), bad])
    done = ingestor.accept(data, signature(KEY, data))
    assert (done.accepted, done.quarantined) == (2, 1)
    assert any(reason in r for r in done.reasons)
    assert store.quarantined_devices(ingestor.directory) == {bad["device_id"]}
    assert bad["device_id"] not in set(store.read_days(ingestor.directory)["device_id"])
    units = canary.units(store.read_days(ingestor.directory))
    assert len(units) == 2


def test_round_trip_over_http_on_loopback(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(CONFIG.hmac_key_env, KEY.decode())
    server = make_server(tmp_path / "telemetry", CONFIG, port=0)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        data = body([record(i) for i in range(20)], "http-batch-1")
        assert post(url, data, KEY) == (202, {"batch_id": "http-batch-1", "accepted": 20, "quarantined": 0,
                                              "quarantine_reasons": {}, "rejected": 0})
        status, answer = post(url, data, KEY)
        assert (status, answer["rejected"]) == (409, 20)
        status, answer = post(url, body([record(0)], "http-batch-2"), None)
        assert (status, answer["rejected"]) == (401, 1)
        status, answer = post(url, b"x" * (CONFIG.max_body_bytes * 5), KEY)
        assert (status, answer["rejected"]) == (413, 0)
    finally:
        server.shutdown()
        server.server_close()
    assert len(store.read_days(tmp_path / "telemetry")) == 20


def test_a_missing_key_is_one_line(monkeypatch, tmp_path: Path):
    from pipelines.core.errors import PipelineError

    monkeypatch.delenv(CONFIG.hmac_key_env, raising=False)
    with pytest.raises(PipelineError, match="MOBILE_MLOPS_TELEMETRY_KEY must hold a key"):
        make_server(tmp_path, CONFIG, port=0)


def test_a_crash_mid_write_leaves_no_partial_batch_and_a_retry_is_accepted(ingestor: Ingestor, monkeypatch):
    import pandas as pd

    data = body([record(0, day="2026-01-01"), record(1, day="2026-01-02")])
    calls = {"n": 0}
    original = pd.DataFrame.to_parquet

    def dies_on_second_file(self, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            Path(path).write_bytes(b"PAR1 half")  # the temp file is half written when the process dies
            raise KeyboardInterrupt
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", dies_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        ingestor.accept(data, signature(KEY, data))
    monkeypatch.setattr(pd.DataFrame, "to_parquet", original)
    assert not list(ingestor.directory.rglob(".*.parquet*"))  # no temp file left behind
    assert not store.seen(ingestor.directory, "batch-0001")  # not in the ledger: the app retries
    done = ingestor.accept(data, signature(KEY, data))
    assert done.accepted == 2 and len(store.read_days(ingestor.directory)) == 2  # no duplicate of the first day


def test_a_quarantined_device_is_left_out_of_the_analysis_on_every_day(ingestor: Ingestor):
    from pipelines.core.config import load_settings
    from pipelines.fleet import rollout

    params = load_settings(Path(__file__).resolve().parents[2] / "params.yaml").params
    good = body([record(i, day="2026-01-01") for i in range(4)], "batch-day-one")
    ingestor.accept(good, signature(KEY, good))
    bad = body([record(0, day="2026-01-02", crashes=99)], "batch-day-two")  # device 0 reports the impossible later
    ingestor.accept(bad, signature(KEY, bad))
    _, _, tests, quarantined = rollout.analyse_day(ingestor.directory, "2026-01-02", params.release.rollout, params,
                                                   0, 2)
    assert quarantined == 1
    assert {t.units for t in tests} == {3}  # its clean first day is dropped too
