"""`mobile-mlops`: run the pipeline, run one DVC stage; release commands (verify, propose, promote,
rollback, lineage check) live in assets/cli_gitops.py."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from assets import cli_gitops as gitops
from pipelines.errors import PipelineError


def _overrides(pairs: Sequence[str]) -> dict[str, object]:
    import yaml

    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PipelineError(f"--set {pair!r}: expected KEY=VALUE, e.g. train.epochs=5")
        result[key] = yaml.safe_load(value)
    return result


def cmd_run(args: argparse.Namespace) -> int:
    from assets.runner import run_all

    return run_all(Path(args.params), _overrides(args.set), debug=args.debug)


def cmd_stage(args: argparse.Namespace) -> int:
    from pipelines.config import load_settings
    from pipelines.steps import registry

    steps = registry()
    if args.name not in steps:
        raise PipelineError(f"unknown stage '{args.name}' (stages: {', '.join(steps)})")
    result = steps[args.name](load_settings(args.params, _overrides(args.set)))
    for key, value in result.summary.items():
        print(f"{args.name}: {key} = {value}")
    return 0


def cmd_expectations(args: argparse.Namespace) -> int:
    from pipelines.config import load_settings
    from pipelines.steps.data import build_expectations, raw_dataset

    settings = load_settings(args.params, _overrides(args.set))
    raw_dataset(settings)  # the data version the suite is built from is the current source
    result = build_expectations(settings)
    print(f"wrote {result.summary['expectations']} expectations to {result.summary['path']} "
          f"from data version {result.summary['built_from_data_version']}; review and commit it")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.run import main as bench

    out = bench(quick=args.quick)
    print(f"wrote {out}" + ("" if args.quick else " and docs/benchmarks.md"))
    return 0


EXAMPLES = """Examples:
  mobile-mlops run                              the whole pipeline on params.yaml, progress and a summary
  mobile-mlops run --set train.epochs=5         the same with one params key overridden
  mobile-mlops stage trained_model              one step, as its DVC stage runs it
  mobile-mlops verify releases/adult-income/1   check a release's signature and hashes

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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        sub.set_defaults(handler=handler)
        return sub

    def with_params(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override one params key, e.g. --set train.epochs=5 (repeatable)")

    with_params(add("run", cmd_run, "Materialize every asset with Dagster and print a summary."))
    stage = add("stage", cmd_stage, "Run one pipeline step (what each DVC stage calls).")
    stage.add_argument("name", help="step name, e.g. raw_dataset or trained_model")
    with_params(stage)
    expectations = add("expectations", cmd_expectations, "Manage the Great Expectations suite.")
    expectations.add_argument("action", choices=["build"], help="build: regenerate validate.suite from the current data")
    with_params(expectations)
    bench = add("bench", cmd_bench, "Run the benchmarks; write reports/benchmarks.json and docs/benchmarks.md.")
    bench.add_argument("--quick", action="store_true", help="every benchmark at a tiny size (under two minutes)")
    gitops.register(add, with_params)  # verify, release propose, promote, rollback, lineage check
    return parser


def _quiet_libraries() -> None:
    """Keep TensorFlow, coremltools and beta-API chatter out of the terminal (`--debug` keeps it)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    for name in ("coremltools", "absl", "tensorflow", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.debug:
        _quiet_libraries()
    try:
        return args.handler(args)
    except PipelineError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
