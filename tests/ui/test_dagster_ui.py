"""The Dagster UI in a real browser: launch the whole graph by clicking, then read an asset page.

Starts `dagster-webserver` on a free localhost port with a temp DAGSTER_HOME and the small project's
params, drives Debian's Chromium headless through Playwright, and keeps screenshots in
test-artifacts/ui/ (CI uploads them). `.ci/run` installs Chromium; without it the test skips.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.services import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "ui"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Runs start at once (the default coordinator queues them for a daemon that `dagster-webserver` lacks);
# no telemetry, no community pop-up over the page.
DAGSTER_YAML = """run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
nux:
  enabled: false
"""
RUN_TIMEOUT = 300
pytestmark = pytest.mark.slow


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


RUNS = "{ runsOrError(limit: 5) { ... on Runs { results { runId status } } } }"
FAILURES = """query($id: ID!) { logsForRun(runId: $id, limit: 2000) { ... on EventConnection { events {
  __typename ... on ExecutionStepFailureEvent { stepKey error { message } } ... on RunFailureEvent { message } } } } }"""


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it and its code server), SIGKILL what is left after 15 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture
def webserver(small_project: Path, tmp_path: Path) -> Iterator[str]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "MOBILE_MLOPS_PARAMS": str(small_project / "params.yaml")}
    env.pop("MLFLOW_TRACKING_URI", None)  # the small project's own SQLite store
    log = (tmp_path / "webserver.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("dagster-webserver did not start:\n" + (tmp_path / "webserver.log").read_text()[-3000:])
                time.sleep(1)
        yield base
    finally:
        _stop(process)
        log.close()
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / "webserver.log").write_text((tmp_path / "webserver.log").read_text()[-200_000:])


def _wait_for_run(base: str, known: set[str]) -> tuple[str, str]:
    """The run the click launched (not in `known`) and its final status."""
    deadline = time.monotonic() + RUN_TIMEOUT
    run_id, status = "", "none"
    while time.monotonic() < deadline:
        runs = [r for r in _graphql(base, RUNS)["runsOrError"]["results"] if r["runId"] not in known]
        if runs:
            run_id, status = runs[0]["runId"], runs[0]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return run_id, status
        time.sleep(3)
    return run_id, f"still {status} after {RUN_TIMEOUT} s"


def _failures(base: str, run_id: str) -> str:
    events = _graphql(base, FAILURES, {"id": run_id})["logsForRun"].get("events", [])
    return "\n".join(f"{e.get('stepKey', 'run')}: {(e.get('error') or {}).get('message') or e.get('message')}"[:1500]
                     for e in events if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent"))


def _open_markdown(page, key: str):
    """Click a metadata row's "[Show Markdown]" (Markdown over 1,000 characters opens in a dialog)."""
    page.locator("tr", has=page.get_by_text(key, exact=True)).get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    page.wait_for_timeout(500)  # let the dialog's fade-in finish before a screenshot
    return dialog


def _image_size(image) -> tuple[int, int]:
    image.wait_for()
    image.evaluate("img => img.complete || new Promise(done => img.addEventListener('load', done))")
    return tuple(image.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def test_materialize_all_from_the_ui_then_asset_pages_show_plots_and_checks(webserver: str):
    from playwright.sync_api import expect, sync_playwright

    base = webserver
    SHOTS.mkdir(parents=True, exist_ok=True)
    known = {r["runId"] for r in _graphql(base, RUNS)["runsOrError"]["results"]}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)

            # The asset graph, in its groups (the post-release fleet group beside the pipeline's).
            page.goto(f"{base}/asset-groups")
            page.get_by_role("button", name="Materialize all").wait_for(timeout=120_000)
            for group in ("data", "training", "mobile", "finops", "governance", "release", "fleet"):
                expect(page.get_by_text(group, exact=True).first).to_be_visible()
            page.screenshot(path=str(SHOTS / "01-asset-graph.png"))
            # The pipeline is the release job: launch it with the button a user clicks on its page.
            page.goto(f"{base}/locations/assets.definitions/jobs/release_job")
            materialize_all = page.get_by_role("button", name="Materialize all")
            materialize_all.wait_for(timeout=120_000)
            materialize_all.click()
            launched = page.get_by_text("Launched run")
            for _ in range(30):  # a dialog asks first when the launch needs confirming; confirm it
                if launched.count():
                    break
                confirm = page.get_by_role("dialog").get_by_role("button", name="Materialize")
                if confirm.count():
                    confirm.first.click()
                time.sleep(0.5)
            run_id, status = _wait_for_run(base, known)
            assert run_id, "clicking Materialize all launched no run"
            page.goto(f"{base}/runs/{run_id}")
            page.get_by_text("release_candidate").first.wait_for()
            page.screenshot(path=str(SHOTS / "02-run.png"))
            assert status == "SUCCESS", f"run {run_id}: {status}\n{_failures(base, run_id)}"

            # model_evaluation: metadata table, the confusion matrix image, the blocking gate's result.
            page.goto(f"{base}/assets/model_evaluation")
            page.get_by_text("confusion matrix", exact=True).wait_for()
            page.screenshot(path=str(SHOTS / "03-model-evaluation.png"), full_page=True)
            dialog = _open_markdown(page, "confusion matrix")
            image = dialog.locator("img").first
            width, height = _image_size(image)
            assert image.get_attribute("src").startswith("data:image/png;base64,") and width > 200 and height > 200
            page.screenshot(path=str(SHOTS / "04-confusion-matrix.png"))
            dialog.get_by_role("button", name="Close").click()
            page.goto(f"{base}/assets/model_evaluation?view=checks")
            page.get_by_text("accuracy_gate").first.wait_for()
            expect(page.get_by_text("Succeeded").first).to_be_visible()
            page.screenshot(path=str(SHOTS / "05-model-evaluation-checks.png"), full_page=True)

            # trained_model: the MLflow run link and the training curve.
            page.goto(f"{base}/assets/trained_model")
            link = page.locator("a[href*='/#/experiments/']").first
            link.wait_for()
            assert link.get_attribute("href").startswith("http://127.0.0.1:5000/#/experiments/")
            page.screenshot(path=str(SHOTS / "06-trained-model.png"), full_page=True)
            dialog = _open_markdown(page, "training curve")
            assert _image_size(dialog.locator("img").first)[0] > 200
            page.screenshot(path=str(SHOTS / "07-training-curve.png"))
            dialog.get_by_role("button", name="Close").click()

            # release_candidate: where the release is, its MLflow model version, the gates it passed.
            page.goto(f"{base}/assets/release_candidate")
            page.get_by_text("releases/adult-income/1").first.wait_for()
            assert page.locator("a[href*='/#/models/adult-income/versions/1']").count() >= 1
            page.screenshot(path=str(SHOTS / "08-release-candidate.png"), full_page=True)
            dialog = _open_markdown(page, "gates")
            expect(dialog.get_by_text("pass").first).to_be_visible()
            expect(dialog.get_by_text("FAIL")).to_have_count(0)
            page.screenshot(path=str(SHOTS / "09-release-gates.png"))

            page.goto(f"{base}/locations/assets.definitions/asset-groups/training")
            page.get_by_text("model_evaluation").first.wait_for()
            with contextlib.suppress(AssertionError):  # a picture for people, not a check: wait for node statuses
                expect(page.get_by_text("Loading...")).to_have_count(0, timeout=15_000)
            page.screenshot(path=str(SHOTS / "10-training-group.png"))
        finally:
            browser.close()
