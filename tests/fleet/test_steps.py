"""The fleet steps end to end on a real release: simulated apps post over HTTP, the canary analysis reads the
stored partitions, observed FinOps alerts a webhook on 127.0.0.1, production drift reads DP histograms."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from pipelines.core.config import load_settings
from pipelines.core.paths import PRODUCTION_FILE
from pipelines.fleet import rollout, simulate, steps, store
from pipelines.fleet.server import make_server, post, serve_in_thread
from pipelines.release.folder import verify_release
from pipelines.release.gitops.deploy import desired_state, render

KEY = "fleet-test-key-0123456789"


def _deploy(root: Path, release: Path) -> None:
    settings = load_settings(root / "params.yaml")
    state = desired_state(verify_release(release), release, str(release.relative_to(root)),
                          settings.params.release.rollout, "test-signer", None)
    target = root / PRODUCTION_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(state))


@pytest.fixture
def settings_for(fleet_release, tmp_path: Path):
    _deploy(fleet_release.root, fleet_release.release)

    def make(**overrides):
        return load_settings(fleet_release.root / "params.yaml",
                             {"fleet.directory": str(tmp_path / "telemetry"), **overrides})

    return make


def test_apps_post_over_http_and_the_canary_analysis_reads_the_partitions(fleet_release, fleet_models, settings_for,
                                                                          monkeypatch):
    settings = settings_for()
    monkeypatch.setenv(settings.params.fleet.hmac_key_env, KEY)
    server = make_server(steps.telemetry_dir(settings), settings.params.fleet, port=0)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    _, frame, models = fleet_models
    sim = simulate.build(settings, fleet_release.release, devices=3000, seed=11, frame=frame, models=models,
                         faults={"crash": 40.0})
    try:
        for day in ("2026-03-01", "2026-03-02"):
            records, features = sim.day(day, 50, feature_devices=200)
            rows = steps.to_records(records, {0: features})
            for start in range(0, len(rows), 1000):
                status, answer = post(url, steps.batch_body(rows[start:start + 1000]), KEY.encode())
                assert status == 202, answer
    finally:
        server.shutdown()
        server.server_close()
    assert store.days(steps.telemetry_dir(settings)) == ["2026-03-01", "2026-03-02"]
    facts = steps.telemetry_day(settings, "2026-03-02")
    assert facts["rows"] > 2000 and {c["variant"] for c in facts["cohorts"]} == {"canary", "production"}
    report = steps.canary_report(settings)
    assert report["decision"] == "rollback" and report["stage"] == "canary"
    assert any(r.startswith("crash_rate: breached") for r in report["reasons"])
    assert "| crash_rate |" in report["table"]
    assert json.loads((fleet_release.root / "reports/fleet/canary.json").read_text())["decision"] == "rollback"


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self) -> None:
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _month_of_telemetry(settings, fleet_release, fleet_models, faults=None):
    _, frame, models = fleet_models
    sim = simulate.build(settings, fleet_release.release, devices=2000, seed=5, frame=frame, models=models,
                         faults=faults)
    config = settings.params.release.rollout.model_copy(update={"stages": [
        s.model_copy(update={"min_hours": 24 * 60}) for s in settings.params.release.rollout.stages]})
    rollout.play(sim, config, settings.params, days=30, start="2026-04-01", directory=steps.telemetry_dir(settings),
                 feature_devices=300)


def test_observed_finops_beside_the_estimates_and_a_webhook_alert_on_overrun(fleet_release, fleet_models,
                                                                             settings_for):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    try:
        settings = settings_for(**{"fleet.webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook"})
        _month_of_telemetry(settings, fleet_release, fleet_models)
        report = steps.fleet_observed_finops(settings)
        assert report["over_budget"] == [] and _Hook.received == []
        by_metric = {r["metric"]: r for r in report["comparison"]}
        assert 0.5 < by_metric["download_mb_per_device"]["ratio"] < 1.5  # the simulator downloads the real files
        assert by_metric["battery_share_per_day"]["ratio"] is not None
        tight = settings_for(**{"fleet.webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                                "gates.budgets.max_device_mb_per_month": 1e-6})
        over = steps.fleet_observed_finops(tight)
    finally:
        server.shutdown()
        server.server_close()
    assert over["over_budget"] == ["observed max_device_mb_per_month[2026-04]"]
    assert over["alert_status"] == 204
    assert _Hook.received[0]["event"] == "fleet.budget_exceeded"
    assert _Hook.received[0]["over_budget"][0]["name"] == "observed max_device_mb_per_month[2026-04]"


def test_production_drift_from_dp_histograms(fleet_release, fleet_models, settings_for):
    settings = settings_for()
    _month_of_telemetry(settings, fleet_release, fleet_models)
    report = steps.fleet_production_drift(settings)
    assert report["features"]["age"]["psi"] is not None and report["epsilon"] == settings.params.fleet.epsilon
    assert "sex" not in report["features"] and "income" not in report["features"]  # never reported by the app
    # a production that moved to the young is flagged
    counts = store.feature_counts(steps.telemetry_dir(settings))
    shifted = {"age": [sum(counts["age"][:3])] * 3 + [0] * (len(counts["age"]) - 3)}  # only the young
    from pipelines.core.io import read_json
    from pipelines.fleet import production_drift

    profile = read_json(fleet_release.release / "reference_profile.json")
    assert production_drift.drift(shifted, profile, 1.0, 0.2)["drifted"] == ["age"]


def test_an_ab_experiment_declared_in_production_yaml_is_analysed(fleet_release, fleet_models, settings_for):
    import yaml

    settings = settings_for()
    path = fleet_release.root / PRODUCTION_FILE
    state = yaml.safe_load(path.read_text())
    state["experiment"] = {"name": "threshold-test", "variants": [{"name": "A", "version": "1", "percent": 50},
                                                                  {"name": "B", "version": "1", "percent": 50}]}
    path.write_text(yaml.safe_dump(state))
    _, frame, models = fleet_models
    sim = simulate.build(settings, fleet_release.release, devices=6000, seed=8, frame=frame, models=models,
                         faults={"latency": 3.0}, experiment=("threshold-test", "A", "B"))
    for day in ("2026-05-01", "2026-05-02"):
        records, _ = sim.day(day, 50)
        store.write_batch(steps.telemetry_dir(settings), f"ab-{day}", records)
    report = steps.canary_report(settings)
    assert report["ab"]["decision"] == "rollback"
    assert any(t["guardrail"] == "latency" and t["status"] == "breach" for t in report["ab"]["tests"])


def test_the_decision_is_written_before_the_action_is_tried_and_its_outcome_after(fleet_release, fleet_models,
                                                                                  settings_for):
    from pipelines.core.errors import PipelineError

    settings = settings_for()
    _, frame, models = fleet_models
    sim = simulate.build(settings, fleet_release.release, devices=3000, seed=11, frame=frame, models=models,
                         faults={"crash": 40.0})
    for day in ("2026-03-01", "2026-03-02"):
        store.write_batch(steps.telemetry_dir(settings), f"sim-{day}", sim.day(day, 50)[0])
    target = fleet_release.root / "reports/fleet/canary.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"decision": "promote"}))  # an earlier look
    with pytest.raises(PipelineError) as failed:
        steps.canary_report(settings, act=True)  # first release: nothing recorded to roll back to
    written = json.loads(target.read_text())
    assert written["decision"] == "rollback"
    assert written["action"] == {"kind": "rollback", "status": "failed", "to": None, "error": str(failed.value)}
