"""`mobile-mlops`: run the pipeline, run one stage, generate dvc.yaml; release commands (verify, propose,
promote, rollback, lineage check) live in cli/gitops.py."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cli import automation, fleet, gitops, keys, logformat, reference, serve
from cli.options import overrides, settings, with_params
from cli.quiet import library_output_to_log, quiet_libraries
from pipelines.core.errors import PipelineError


def cmd_run(args: argparse.Namespace) -> int:
    from cli.uptodate import up_to_date
    from pipelines.core.config import load_settings
    from pipelines.core.memory import tune_collector
    from pipelines.data.spark_engine import check_engine

    loaded = load_settings(Path(args.params), overrides(args.set))
    check_engine(loaded)  # engine spark: a missing JVM or an unreachable master stops here, before any step
    if not args.force and not args.profile and up_to_date(loaded):
        text = ("up to date: data, code and params unchanged since the last run; nothing to run "
                "(--force redoes everything)")
        if logformat.is_json():
            logformat.line("info", text)
        else:
            print(text, file=sys.stderr)
        return 0

    tune_collector()  # before Dagster's world is imported
    from cli.runner import run_all

    return run_all(Path(args.params), overrides(args.set), debug=args.debug, verbose=args.verbose, wait=args.wait,
                   profile=args.profile, force=args.force)


def cmd_stage(args: argparse.Namespace) -> int:
    from pipelines.catalog import STAGES, output_folders, output_roots, step_function
    from pipelines.core.lock import project_lock, remove_leftovers
    from pipelines.data.spark_engine import DATA_ENGINE_STAGES, check_engine

    if args.name not in STAGES:  # the partitioned and post-release assets run under Dagster only
        raise PipelineError(f"unknown stage '{args.name}' (stages: {', '.join(STAGES)})")
    step = step_function(args.name)  # the step, then its gates: a failed blocking gate is the one error line
    loaded = settings(args)
    if args.name in DATA_ENGINE_STAGES:
        check_engine(loaded)
    with project_lock(loaded.root, wait=args.wait, say=lambda text: print(text, file=sys.stderr)):
        removed = remove_leftovers(output_folders(loaded),
                                   output_roots(loaded))  # what a killed run or stage left behind
        if removed:
            print(f"removed {len(removed)} temp folder(s) a stopped run left behind", file=sys.stderr)
        result = step(loaded)
    for key, value in result.summary.items():
        print(f"{args.name}: {key} = {value}")
    return 0


def cmd_expectations(args: argparse.Namespace) -> int:
    from pipelines.data.steps import build_expectations, raw_dataset

    loaded = settings(args)
    raw_dataset(loaded)  # the data version the suite is built from is the current source
    result = build_expectations(loaded)
    print(f"wrote {result.summary['expectations']} expectations to {result.summary['path']} "
          f"from data version {result.summary['built_from_data_version']}; review and commit it")
    return 0


def cmd_dvc(args: argparse.Namespace) -> int:
    from pipelines import dvc_stages

    loaded = settings(args)
    if args.action == "generate":
        print(f"wrote {dvc_stages.generate(loaded)} from the stage catalog ({len(dvc_stages.STAGES)} stages)")
        return 0
    found = dvc_stages.problems(loaded)
    if found:
        raise PipelineError(found[0])
    print("dvc.yaml matches the stage catalog")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.run import main as bench

    out = bench(quick=args.quick)
    print(f"wrote {out}" + ("" if args.quick else " and docs/benchmarks.md"))
    return 0


def cmd_privacy(args: argparse.Namespace) -> int:
    from pipelines.training.compare import ROWS, markdown, privacy_tradeoff

    report = privacy_tradeoff(settings(args), tuple(args.rows or ROWS))
    print(markdown(report))
    print("wrote reports/privacy_tradeoff.json and reports/privacy_tradeoff.md")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from pipelines.data.landing import split_source
    from pipelines.data.partitions import parse_day

    loaded = settings(args)
    written = split_source(loaded, args.days, parse_day(args.start, '--start') if args.start else None)
    print(f"wrote {len(written)} daily files to {written[0].parent} ({written[0].stem}..{written[-1].stem}); "
          "materialize them: daily_batch partitions in the UI, or `mobile-mlops services backfill`")
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    from cli import services

    folder = Path(args.folder)
    if args.action == "up":
        stack = services.up(folder, Path(args.params), args.workers, services.parse_ports(args.port))
        print(f"stack up in {stack.folder}: Dagster {stack.url('dagster')}, MLflow {stack.url('mlflow')}, "
              f"{stack.workers} Celery workers, telemetry {stack.url('telemetry')}, Prometheus "
              f"{stack.url('prometheus')}, Alertmanager {stack.url('alertmanager')}; `make run-prod` runs the "
              "pipeline on it, `make services-down` stops it")
        return 0
    if args.action == "exporter":
        from cli import exporter

        def say(message: str, **fields: Any) -> None:
            if logformat.is_json():
                logformat.line("info", message, **fields)
            else:
                print(f"{message}: {fields.get('url')}", flush=True)

        port = services.parse_ports(args.port).get("exporter", 0)
        exporter.serve(settings(args), "127.0.0.1", port, exporter.dagster_instance(), say)
        return 0
    if args.action == "down":
        services.down(folder)
        print(f"stack in {folder} stopped")
        return 0
    if args.action == "backfill":
        from cli.backfill import backfill
        from pipelines.data.partitions import parse_day

        start = parse_day(args.start, '--start') if args.start else None
        done = backfill(folder, args.days, start)
        print(done.line())
        if done.status != "COMPLETED_SUCCESS":
            raise PipelineError(f"backfill {done.backfill_id} ended {done.status}: {done.failed} partition(s) failed "
                                f"(the Dagster UI's backfill page names each one's error)")
        return 0
    run_id, status, seconds = services.run(folder)
    print(f"run {run_id}: {status} in {seconds:.1f} s")
    if status != "SUCCESS":
        raise PipelineError(f"run {run_id} ended {status}: see the Dagster UI or {folder / 'logs'}")
    return 0


EXAMPLES = """Examples:
  mobile-mlops run                              the whole pipeline on params.yaml, progress and a summary
  mobile-mlops run --set train.epochs=5         the same with one params key overridden
  mobile-mlops stage trained_model              one step, as its DVC stage runs it
  mobile-mlops dvc generate                     rewrite dvc.yaml from the stage catalog (pipelines/catalog.py)
  mobile-mlops verify releases/adult-income/1   check a release's signature and hashes
  mobile-mlops decrypt releases/adult-income/1 --out /tmp/v1   an encrypted release's model files, decrypted

Errors print one line and exit 1; add --debug for the traceback. `mobile-mlops COMMAND --help` for more.
The Dagster UI: `make ui`; MLflow: `make mlflow-ui`; DVC: `dvc repro`, `dvc exp run -S train.epochs=5`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobile-mlops",
        description="Versioned tabular data to a gated, audited TFLite + Core ML release candidate.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--log-format", choices=logformat.FORMATS, default="text",
                        help="json: the project's log and progress lines as one JSON object per line")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        sub.set_defaults(handler=handler)
        return sub

    run = add("run", cmd_run, "Materialize what is stale (data, code or params changed) with Dagster and print a "
                              "summary; \"up to date\" when nothing is.")
    run.add_argument("--force", action="store_true", help="materialize every asset, stale or not")
    run.add_argument("--verbose", action="store_true", help="also show library and Dagster log lines")
    run.add_argument("--wait", action="store_true", help="wait for another run in this project instead of stopping")
    run.add_argument("--profile", action="store_true",
                     help="run each step under cProfile; write reports/profile/profile.md (wall, CPU, imports, "
                     "memory, hot spots)")
    with_params(run)
    stage = add("stage", cmd_stage, "Run one pipeline step (what each DVC stage calls).")
    stage.add_argument("name", help="step name, e.g. raw_dataset or trained_model")
    stage.add_argument("--wait", action="store_true", help="wait for another run in this project instead of stopping")
    with_params(stage)
    expectations = add("expectations", cmd_expectations, "Manage the Great Expectations suite.")
    expectations.add_argument("action", choices=["build"],
                              help="build: regenerate validate.suite from the current data")
    with_params(expectations)
    dvc = add("dvc", cmd_dvc, "dvc.yaml from the stage catalog.")
    dvc.add_argument("action", choices=["generate", "check"],
                     help="generate: write dvc.yaml; check: fail unless the committed dvc.yaml is what generate writes")
    with_params(dvc)
    bench = add("bench", cmd_bench, "Run the benchmarks; write reports/benchmarks.json and docs/benchmarks.md.")
    bench.add_argument("--quick", action="store_true", help="every benchmark at a tiny size (under two minutes)")
    privacy = add("privacy", cmd_privacy, "Privacy trade-off: central, DP-SGD, federated, federated + DP + SecAgg+.")
    privacy.add_argument("action", choices=["compare"], help="compare: train every row on the current splits and "
                         "write reports/privacy_tradeoff.json and .md")
    privacy.add_argument("--rows", nargs="+", metavar="ROW",
                         help="only these rows (central central_mitigated dp_sgd federated federated_dp_secagg)")
    with_params(privacy)
    services = add("services", cmd_services, "The production profile on loopback: PostgreSQL, Redis, MLflow server, "
                   "Celery workers, Dagster daemon and webserver (docs/deployment.md).")
    services.add_argument("action", choices=["up", "down", "run", "backfill", "exporter"],
                          help="up: start the stack; down: stop it; run: submit the release job to it and wait; "
                               "backfill: materialize --days daily_batch partitions, one run each, and wait; "
                               "exporter: serve the pipeline's Prometheus metrics (what `up` starts)")
    services.add_argument("--folder", default=".services", help="where the stack keeps its data and logs")
    services.add_argument("--workers", type=int, default=2, help="Celery workers (up)")
    services.add_argument("--port", action="append", default=[], metavar="NAME=PORT",
                          help="a server's loopback port (up, exporter; repeatable): postgres, redis, mlflow, dagster, "
                               "telemetry, exporter, alertmanager, prometheus; default a free one")
    services.add_argument("--days", type=int, default=30, help="daily partitions to backfill (backfill)")
    services.add_argument("--start", help="first day, YYYY-MM-DD (backfill; default data.incoming.start_date)")
    with_params(services)
    data = add("data", cmd_data, "Incoming data as daily partitions (README \"Daily partitions\").")
    data.add_argument("action", choices=["split-days"],
                      help="split-days: cut data.source into --days daily files in data.incoming.folder")
    data.add_argument("--days", type=int, default=30, help="how many days (default 30)")
    data.add_argument("--start", help="first day, YYYY-MM-DD (default data.incoming.start_date)")
    with_params(data)
    docs = add("docs", reference.cmd_docs, "The documentation's generated reference pages (docs/reference/).")
    docs.add_argument("action", choices=["generate", "check"],
                      help="generate: write the params, CLI and stage pages; check: fail when one is stale or a "
                           "params key has no description")
    gitops.register(add, with_params)  # verify, release propose, promote, rollback, lineage check
    keys.register(add, gitops.leaf, with_params)  # decrypt, keys rotate
    fleet.register(add, with_params)  # telemetry serve, fleet simulate / analyse / finops / drift
    automation.register(add, with_params)  # automation status
    serve.register(add, with_params)  # serve (the MLflow Model over HTTP)
    docs.set_defaults(command_parser=parser)  # the CLI page documents this parser
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logformat.use(args.log_format)
    if logformat.is_json() and os.environ.get("MOBILE_MLOPS_PROGRESS", "").strip().lower() != "off":
        os.environ["MOBILE_MLOPS_PROGRESS"] = "json"  # progress lines as JSON objects too
    if args.debug or getattr(args, "verbose", False):
        return _handle(args)
    quiet_libraries()
    with library_output_to_log(_project(args)) as log:
        log.keep = (code := _handle(args, log.note)) != 0  # a failed command keeps its library log (if not empty)
    return code


def _project(args: argparse.Namespace) -> Path:
    """The project a command works on: its params file's folder (logs go to .mobile-mlops/logs/ there)."""
    params = Path(getattr(args, "params", None) or "params.yaml")
    folder = params.resolve().parent
    return folder if folder.is_dir() else Path.cwd()


def _handle(args: argparse.Namespace, note: Callable[[], str] = str) -> int:
    """Run the command; a project error is one line (naming the library log, when libraries wrote one)."""
    try:
        return args.handler(args)
    except PipelineError as exc:
        if args.debug:
            raise
        if logformat.is_json():
            logformat.line("error", f"{exc}{note()}", command=args.command)
        else:
            print(f"error: {exc}{note()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted{note()}", file=sys.stderr)
        return 130


PROMPT_EXIT = {"run", "stage"}  # commands whose process may skip the interpreter's teardown


def entry() -> None:
    """The `mobile-mlops` console script. After `run` and `stage` the process ends at once: every output is
    written, closed and renamed into place by then, and the interpreter's teardown of TensorFlow's native state
    takes seconds (3.7 s of a 38 s `make run` here) with nothing left to do."""
    argv = sys.argv[1:]
    code = main(argv)
    words = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] != "--log-format")]
    if next(iter(words), None) in PROMPT_EXIT:
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
