"""Post-release commands: `telemetry serve`, `fleet simulate`, `fleet analyse`, `fleet finops`, `fleet drift`."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from cli.options import settings

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def cmd_serve(args: argparse.Namespace) -> int:
    from pipelines.fleet.server import make_server
    from pipelines.fleet.steps import first_day, telemetry_dir

    loaded = settings(args)
    fleet, earliest = loaded.params.fleet, first_day(loaded)
    server = make_server(telemetry_dir(loaded), fleet, args.host, args.port, earliest)
    host, port = server.server_address[:2]
    since = f"from {earliest}" if earliest else "from any day (no release yet, no fleet.first_day)"
    from cli import logformat

    if logformat.is_json():
        logformat.line("info", "telemetry server listening", url=f"http://{host}:{port}/v1/telemetry",
                       metrics=f"http://{host}:{port}/metrics", folder=str(telemetry_dir(loaded)), days_from=earliest)
    else:
        print(f"telemetry: POST http://{host}:{port}/v1/telemetry -> {telemetry_dir(loaded)}; days {since} to "
              f"tomorrow (UTC); metrics at /metrics (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import os

    from pipelines.core.errors import PipelineError
    from pipelines.fleet import rollout, simulate
    from pipelines.fleet.server import post
    from pipelines.fleet.steps import batch_body, telemetry_dir, to_records
    from pipelines.release_format.deployment import production_or_latest

    loaded = settings(args)
    release = Path(args.release) if args.release else production_or_latest(loaded, "footprint.json")[0]
    if release is None:
        raise PipelineError("fleet simulate: no release found; pass --release FOLDER")
    faults = dict(f.split("=", 1) if "=" in f else (f, None) for f in args.fault)
    defaults = {"latency": 3.0, "crash": 25.0, "data": 8.0, "fairness": 0.35, "accuracy": 0.12}
    faults = {k: float(v) if v is not None else defaults.get(k, 1.0) for k, v in faults.items()}
    production = Path(args.production) if args.production else None
    arms = experiment_arms(loaded, args.experiment) if args.experiment else None
    percent = args.percent if args.percent is not None else (arms[3] if arms else 5)
    sim = simulate.build(loaded, release, production, devices=args.devices, seed=args.seed, faults=faults,
                         experiment=arms[:3] if arms else None)
    if arms:
        return _play_experiment(loaded, sim, arms, percent, args)
    expected = int(args.devices * percent / 100)
    if args.url and expected < loaded.params.fleet.min_devices:
        print(f"warning: about {expected} canary devices ({percent}% of {args.devices}) is below fleet.min_devices "
              f"{loaded.params.fleet.min_devices}: the analysis can only hold; raise --devices or --percent",
              file=sys.stderr)
    if args.url:
        key = os.environ.get(loaded.params.fleet.hmac_key_env, "").encode() or None
        sent = 0
        for offset in range(args.days):
            import datetime as dt

            day = (dt.date.fromisoformat(args.start) + dt.timedelta(days=offset)).isoformat()
            records, features = sim.day(day, percent, args.feature_devices)
            rows = to_records(records, {0: features} if features else None)
            for start in range(0, len(rows), args.batch):
                status, answer = post(args.url, batch_body(rows[start:start + args.batch]), key)
                if status != 202:
                    raise PipelineError(f"{args.url}: HTTP {status}: {answer.get('error')}")
                sent += answer["accepted"]
        print(f"posted {sent} device-day records of {args.devices} devices over {args.days} days to {args.url}")
        return 0
    outcome = rollout.play(sim, loaded.params.release.rollout, loaded.params, days=args.days, start=args.start,
                           directory=telemetry_dir(loaded), feature_devices=args.feature_devices)
    for look in outcome.looks:
        print(f"{look.day} {look.stage:<8} {look.decision:<8} canary devices {look.canary_devices}")
    print(f"{outcome.final} after {outcome.days} days ({outcome.devices_seen} canary devices); analysis "
          f"{outcome.seconds_analysis:.1f} s, simulation {outcome.seconds_simulation:.1f} s; telemetry in "
          f"{telemetry_dir(loaded)}")
    return 0


def experiment_arms(loaded, name: str) -> tuple[str, str, str, int]:
    """(experiment, arm A, arm B, B's percent): from deploy/production.yaml when it declares `name`, else A/B at
    50%."""
    from pipelines.release_format.deployment import read_production

    deployment = read_production(loaded)
    declared = deployment.experiment if deployment is not None else None
    if declared is not None and declared.name == name:
        a, b = declared.variants
        return name, a.name, b.name, b.percent
    return name, "A", "B", 50


def _play_experiment(loaded, sim, arms: tuple[str, str, str, int], percent: int, args: argparse.Namespace) -> int:
    """Days of A/B telemetry stored (or posted with --url), then the same sequential test of arm B against A."""
    import datetime as dt
    import os

    from pipelines.core.errors import PipelineError
    from pipelines.core.progress import track
    from pipelines.fleet import canary, store
    from pipelines.fleet.ingest import split
    from pipelines.fleet.server import post
    from pipelines.fleet.steps import batch_body, telemetry_dir, to_records

    name, a, b, _ = arms
    directory, total = telemetry_dir(loaded), None
    key = os.environ.get(loaded.params.fleet.hmac_key_env, "").encode() or None
    for offset in track(range(args.days), "simulated days"):
        day = (dt.date.fromisoformat(args.start) + dt.timedelta(days=offset)).isoformat()
        records, features = sim.day(day, percent, args.feature_devices)
        keep, quarantine = split(records, loaded.params.fleet)
        if args.url:
            rows = to_records(records, {0: features} if features else None)
            for start in range(0, len(rows), args.batch):
                status, answer = post(args.url, batch_body(rows[start:start + args.batch]), key)
                if status != 202:
                    raise PipelineError(f"{args.url}: HTTP {status}: {answer.get('error')}")
        else:
            store.write_batch(directory, f"sim-{name}-{day}", keep, quarantine, {day: features} if features else None)
        total = canary.add_units(total, keep)
    tests = canary.evaluate(total, b, a, loaded.params.release.rollout.guardrails, loaded.params)
    print(canary.table(tests))
    where = args.url or directory
    print(f"A/B {name}: {b} ({percent}%) vs {a}: {canary.decide(tests, True, True)[0]} after {args.days} days; "
          f"telemetry in {where} (declare the experiment in deploy/production.yaml for `fleet analyse`)")
    return 0


def cmd_analyse(args: argparse.Namespace) -> int:
    from pipelines.fleet.steps import canary_report

    report = canary_report(settings(args), args.until, act=args.act, to=args.to)
    print(report["table"])
    if "ab" in report:
        print(report["ab"]["table"])
        print(f"A/B {report['ab']['experiment']} ({report['ab']['treatment']} vs {report['ab']['control']}): "
              f"{report['ab']['decision']}")
    print(f"{report['model']} v{report['version']} stage {report['stage']}: {report['decision']}")
    if "action" in report:
        action = report["action"]
        to = f" to v{action['to']}" if action.get("to") else ""
        print(f"{action['kind']}{to}: branch {action['branch']}"
              + (f", pull request {action['pull_request']}" if action.get("pull_request") else ""))
    print(f"chart: {report['chart']}")
    return 0


def cmd_finops(args: argparse.Namespace) -> int:
    import sys

    from pipelines.fleet.steps import fleet_observed_finops

    loaded = settings(args)
    report = fleet_observed_finops(loaded)
    for row in report["comparison"]:
        est = "" if row["estimated"] is None else f"{row['estimated']:.4g}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(f"{row['month']} {row['metric']:<26} observed {row['observed']:.4g}  estimated {est}  ratio {ratio}")
    print(f"chart: {report['chart']}")
    if not report["over_budget"]:
        return 0
    over = [b for b in report["budgets"] if not b["passed"]]
    blocking = loaded.params.gates.budgets.blocking
    print(f"{'error' if blocking else 'warning'}: over budget: " + "; ".join(b["detail"] for b in over)
          + ("" if blocking else " (gates.budgets.blocking is false)"), file=sys.stderr)
    return 1 if blocking else 0


def cmd_drift(args: argparse.Namespace) -> int:
    from pipelines.fleet.steps import fleet_production_drift

    report = fleet_production_drift(settings(args))
    print(f"production drift: {'yes: ' + ', '.join(report['drifted']) if report['drift'] else 'none'}")
    return 0


def _leaf(parent, name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
    """`telemetry serve`, `fleet simulate`...: help, a description, its own --debug and the handler."""
    sub = parent.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub.set_defaults(handler=handler)
    return sub


def register(add: Add, with_params: Callable[[argparse.ArgumentParser], None]) -> None:
    telemetry = add("telemetry", lambda a: 2, "Fleet telemetry ingestion.")
    leaves = telemetry.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = _leaf(leaves, "serve", cmd_serve,
                 "serve POST /v1/telemetry (HMAC-signed batches)")
    serve.add_argument("--host", default=None, help="bind address (default: fleet.host, loopback)")
    serve.add_argument("--port", type=int, default=None, help="port (default: fleet.port)")
    with_params(serve)
    fleet = add("fleet", lambda a: 2, "Post-release fleet analysis.")
    actions = fleet.add_subparsers(dest="action", required=True, metavar="ACTION")
    simulate = _leaf(actions, "simulate", cmd_simulate,
                 "simulated telemetry from a release (and its rollout)")
    simulate.add_argument("--release", help="release folder (default: production, else the latest)")
    simulate.add_argument("--production", help="release the production cohort runs (default: the same one)")
    simulate.add_argument("--devices", type=int, default=10_000)
    simulate.add_argument("--days", type=int, default=14)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--start", default="2026-01-01", help="first day (YYYY-MM-DD)")
    simulate.add_argument("--fault", action="append", default=[], metavar="NAME[=SIZE]",
                          help="latency, crash, data, fairness or accuracy (repeatable)")
    simulate.add_argument("--url", help="post to this endpoint like an app (else write and play the rollout)")
    simulate.add_argument("--percent", type=int, default=None,
                          help="canary share when posting (--url; default 5), or arm B's share with --experiment "
                               "(default: production.yaml's, else 50)")
    simulate.add_argument("--experiment", metavar="NAME",
                          help="A/B arms instead of canary/production (names and split from deploy/production.yaml "
                               "when it declares NAME, else A and B)")
    simulate.add_argument("--batch", type=int, default=500, help="records per posted batch")
    simulate.add_argument("--feature-devices", type=int, default=500, help="devices reporting input buckets a day")
    with_params(simulate)
    analyse = _leaf(actions, "analyse", cmd_analyse,
                 "canary / A-B decision from stored telemetry")
    analyse.add_argument("--until", help="last day to include (default: the latest)")
    analyse.add_argument("--act", action="store_true", help="open the promote PR or roll back")
    analyse.add_argument("--to", metavar="VERSION", help="with --act: the release a rollback restores (default: "
                                                         "the previous one in deploy/production.yaml)")
    with_params(analyse)
    finops = _leaf(actions, "finops", cmd_finops,
                 "observed vs estimated cost; budgets on observed spend")
    with_params(finops)
    drift = _leaf(actions, "drift", cmd_drift,
                 "DP-noised production input histograms vs the reference profile")
    with_params(drift)
