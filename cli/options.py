"""Options every command shares: --params and --set, parsed through the one params loader."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from pipelines.core.config import Settings, load_settings
from pipelines.core.errors import PipelineError


def overrides(pairs: Sequence[str]) -> dict[str, object]:
    """--set KEY=VALUE pairs as dotted keys to YAML-parsed values."""
    import yaml

    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PipelineError(f"--set {pair!r}: expected KEY=VALUE, e.g. train.epochs=5")
        result[key] = yaml.safe_load(value)
    return result


def settings(args: argparse.Namespace) -> Settings:
    """The params file and overrides a command was given."""
    return load_settings(args.params or "params.yaml", overrides(getattr(args, "set", [])))


def with_params(sub: argparse.ArgumentParser) -> None:
    """Add --params and --set to a command."""
    sub.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one params key, e.g. --set train.epochs=5 (repeatable)")
