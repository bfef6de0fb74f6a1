"""`python -m benchmarks.fairness`: the fairness benchmark (docs/fairness-benchmark.md)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from benchmarks.fairness.datasets import DATASETS
from benchmarks.fairness.pipeline import RUNNERS
from benchmarks.fairness.run import DOCS, main, merge
from cli.options import overrides
from pipelines.core.errors import PipelineError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fairness", description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), metavar="NAME",
                        help=f"data sets to run (default: all: {', '.join(DATASETS)})")
    parser.add_argument("--splits", type=int, default=5, help="split seeds 0..N-1 per data set (default 5; 0: none)")
    parser.add_argument("--gate-splits", type=int, default=0, metavar="N",
                        help="also run the pipeline on N splits of each data set under 3,000 rows and count how "
                             "often the release passes its fairness gates on the test split")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params key in every run (for quick checks; the page records it)")
    parser.add_argument("--runner", choices=RUNNERS, default=RUNNERS[0],
                        help="stages: the catalog's steps with their gates in this process, as `dvc repro` runs "
                             "them (default; imports paid once); run: `mobile-mlops run` (Dagster) per split")
    parser.add_argument("--no-pipeline", action="store_true", help="baselines only (the harness's own test)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="where the page, plots and results.json go")
    parser.add_argument("--render", action="store_true", help="only re-render the page from results.json")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="DOCS",
                        help="add the data sets of runs written to other --docs folders, then re-render")
    return parser.parse_args(argv)


def entry(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: its C++ start-up lines
    os.environ.setdefault("TQDM_DISABLE", "1")  # the converters' progress bars (--runner stages runs them here)
    logging.getLogger("fairlearn").setLevel(logging.ERROR)  # grid-size advice, followed in baselines.grid_size
    try:
        if args.merge:
            print(f"wrote {merge(args.merge, args.docs)}")
            return 0
        page = main(args.datasets, args.splits, args.gate_splits, overrides(args.set), pipeline=not args.no_pipeline,
                    docs=args.docs, only_render=args.render, runner=args.runner)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(entry())
