"""Post-release commands: `telemetry serve`, `fleet simulate`, `fleet analyse`, `fleet finops`, `fleet drift`."""
from __future__ import annotations

import argparse
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

    from pipelines.release_format.deployment import production_or_latest
    from pipelines.core.errors import PipelineError
    from pipelines.fleet import rollout, simulate
    from pipelines.fleet.server import post
    from pipelines.fleet.steps import batch_body, telemetry_dir, to_records

    loaded = settings(args)
    release = Path(args.release) if args.release else production_or_latest(loaded, "footprint.json")[0]
    if release is None:
        raise PipelineError("fleet simulate: no release found; pass --release FOLDER")
    faults = dict(f.split("=", 1) if "=" in f else (f, None) for f in args.fault)
    defaults = {"latency": 3.0, "crash": 25.0, "data": 8.0, "fairness": 0.35, "accuracy": 0.12}
    faults = {k: float(v) if v is not None else defaults.get(k, 1.0) for k, v in faults.items()}
    production = Path(args.production) if args.production else None
    sim = simulate.build(loaded, release, production, devices=args.devices, seed=args.seed, faults=faults)
    if args.url:
        key = os.environ.get(loaded.params.fleet.hmac_key_env, "").encode() or None
        sent = 0
        for offset in range(args.days):
            import datetime as dt

            day = (dt.date.fromisoformat(args.start) + dt.timedelta(days=offset)).isoformat()
            records, features = sim.day(day, args.percent, args.feature_devices)
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


def cmd_analyse(args: argparse.Namespace) -> int:
    from pipelines.fleet.steps import canary_report

    report = canary_report(settings(args), args.until, act=args.act)
    print(report["table"])
    print(f"{report['model']} v{report['version']} stage {report['stage']}: {report['decision']}")
    if "action" in report:
        print(f"{report['action']['kind']}: branch {report['action']['branch']}")
    return 0


def cmd_finops(args: argparse.Namespace) -> int:
    from pipelines.fleet.steps import fleet_observed_finops

    report = fleet_observed_finops(settings(args))
    for row in report["comparison"]:
        est = "" if row["estimated"] is None else f"{row['estimated']:.4g}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(f"{row['month']} {row['metric']:<26} observed {row['observed']:.4g}  estimated {est}  ratio {ratio}")
    return 1 if report["over_budget"] and settings(args).params.gates.budgets.blocking else 0


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
    simulate.add_argument("--percent", type=int, default=5, help="canary share when posting (--url)")
    simulate.add_argument("--batch", type=int, default=500, help="records per posted batch")
    simulate.add_argument("--feature-devices", type=int, default=500, help="devices reporting input buckets a day")
    with_params(simulate)
    analyse = _leaf(actions, "analyse", cmd_analyse,
                 "canary / A-B decision from stored telemetry")
    analyse.add_argument("--until", help="last day to include (default: the latest)")
    analyse.add_argument("--act", action="store_true", help="open the promote PR or roll back")
    with_params(analyse)
    finops = _leaf(actions, "finops", cmd_finops,
                 "observed vs estimated cost; budgets on observed spend")
    with_params(finops)
    drift = _leaf(actions, "drift", cmd_drift,
                 "DP-noised production input histograms vs the reference profile")
    with_params(drift)
