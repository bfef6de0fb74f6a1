"""`mobile-mlops lineage check`: the Definitions, the asset graph against dvc.yaml, and committed releases.

Dagster-specific checks live here (pipelines/ never imports dagster); the rest is pipelines.gitops.lineage.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from pipelines.config import Settings
from pipelines.errors import PipelineError
from pipelines.gitops.git import repo_root, rev
from pipelines.gitops.lineage import check_committed, compare_graphs, stage_parents
from pipelines.gitops.propose import project_prefix

REQUIRED = ("description", "group_name", "owners", "code_version")


def _graph():
    from assets.definitions import defs

    return defs.resolve_asset_graph()


def asset_problems(graph) -> list[str]:
    """Every asset (observable ones too) has a description, a group, an owner and a code version."""
    problems = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        missing = [field for field in REQUIRED if not getattr(node, field)]
        if missing:
            problems.append(f"asset {key.to_user_string()}: no {', '.join(missing)}")
    return problems


def asset_parents(graph) -> tuple[dict[str, set[str]], set[str]]:
    """Materializable asset -> its upstream assets; and the observable (source) assets."""
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
               for k in graph.materializable_asset_keys}
    sources = {k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).is_materializable}
    return parents, sources


def graph_problems(graph, dvc_file: Path) -> list[str]:
    """The Dagster asset graph and dvc.yaml's stage graph name the same steps and dependencies."""
    if not dvc_file.is_file():
        return [f"{dvc_file}: not found"]
    parents, sources = asset_parents(graph)
    return compare_graphs(parents, stage_parents(yaml.safe_load(dvc_file.read_text()) or {}), sources)


def release_problems(settings: Settings, revision: str) -> list[str]:
    """Every release committed at `revision` verifies, and its data md5 is dvc.lock's at its commit."""
    repo = repo_root(settings.root)
    if not rev(repo, revision):
        raise PipelineError(f"--rev {revision}: no such commit in {repo}")
    signing = settings.params.release.signing
    keys_folder = signing.public_key.rsplit("/", 1)[0] if "/" in signing.public_key else "."
    return check_committed(repo, revision, project_prefix(settings, repo), settings.params.release.directory,
                           keys_folder)


def run_checks(settings: Settings, revision: str = "HEAD") -> list[tuple[str, list[str]]]:
    """(check name, problems) for each check, in order; a check that cannot run is one problem."""
    results: list[tuple[str, list[str]]] = []
    try:
        graph = _graph()
        results.append(("Definitions load", []))
    except Exception as exc:  # noqa: BLE001 - any import or definition error is the finding itself
        return [("Definitions load", [f"assets.definitions: {type(exc).__name__}: {str(exc).splitlines()[0]}"])]
    checks: list[tuple[str, Callable[[], list[str]]]] = [
        ("every asset has a description, group, owner and code version", lambda: asset_problems(graph)),
        ("asset graph matches dvc.yaml", lambda: graph_problems(graph, settings.root / "dvc.yaml")),
        (f"committed releases at {revision} hold their lineage", lambda: release_problems(settings, revision)),
    ]
    for name, check in checks:
        try:
            results.append((name, check()))
        except PipelineError as exc:
            results.append((name, [str(exc)]))
    return results
