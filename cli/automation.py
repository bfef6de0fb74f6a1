"""`mobile-mlops automation status`: which schedules and sensors are on (`make ui` prints it first)."""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from cli.options import settings

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def statuses(defs, instance) -> list[tuple[str, str, str, str]]:
    """(kind, name, RUNNING|STOPPED, why) per schedule and sensor: a state stored in the instance (switched in the
    UI or with `dagster schedule|sensor start|stop`) wins over the code's default (MOBILE_MLOPS_AUTOMATION)."""
    stored = {state.instigator_name: state.status.value for state in instance.all_instigator_state()}
    rows = []
    for kind, items in (("schedule", defs.schedules or []), ("sensor", defs.sensors or [])):
        for item in items:
            default = item.default_status.value
            status = stored.get(item.name)
            if status in ("RUNNING", "STOPPED"):
                rows.append((kind, item.name, status, "set in this Dagster home"))
            else:
                rows.append((kind, item.name, default, "default"))
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from assets.automation import AUTOMATION_ENV
    from assets.build import build_definitions
    from cli.quiet import dagster_home

    loaded = settings(args)
    home = dagster_home(Path(os.environ.setdefault("DAGSTER_HOME", str(loaded.root / ".dagster"))))
    defs = build_definitions(loaded)
    with DagsterInstance.get() as instance:
        rows = statuses(defs, instance)
    on = [name for _, name, status, _ in rows if status == "RUNNING"]
    print(f"automation ({home}): {', '.join(on) + ' on' if on else 'all off'}; "
          f"{AUTOMATION_ENV}={os.environ.get(AUTOMATION_ENV, 'stopped')}")
    for kind, name, status, why in rows:
        print(f"  {kind:<8} {name:<26} {status.lower():<8} ({why})")
    return 0


def register(add: Add, with_params: Callable[[argparse.ArgumentParser], None]) -> None:
    automation = add("automation", lambda a: 2, "Schedules and sensors.")
    actions = automation.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="which schedules and sensors are on",
                                description="Which schedules and sensors are on (a state switched in the UI wins "
                                            "over the default).")
    status.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    status.set_defaults(handler=cmd_status)
    with_params(status)
