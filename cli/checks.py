"""`mobile-mlops lineage check`: the Definitions, the catalog against the Dagster graph and dvc.yaml, and
committed releases. Dagster-specific checks live here (pipelines/ never imports dagster)."""
from __future__ import annotations

from collections.abc import Callable

from dagster import AssetKey

from pipelines import catalog, dvc_stages
from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.release.gitops.audit import check_committed
from pipelines.release.gitops.git import repo_root, rev
from pipelines.release.gitops.propose import project_prefix

REQUIRED = ("description", "group_name", "owners", "code_version")


def asset_problems(graph) -> list[str]:
    """Every asset (observable ones too) has a description, a group, an owner and a code version."""
    problems = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        missing = [field for field in REQUIRED if not getattr(node, field)]
        if missing:
            problems.append(f"asset {key.to_user_string()}: no {', '.join(missing)}")
    return problems


def asset_parents(graph) -> dict[str, set[str]]:
    """Every asset -> its upstream assets, as Dagster resolved them."""
    return {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
            for k in graph.get_all_asset_keys()}


def compare(name: str, found: dict[str, set[str]], expected: dict[str, set[str]]) -> list[str]:
    """`found` (one declaration of the graph) against the catalog's, stage by stage."""
    problems = [f"{name}: {s} is not a catalog stage" for s in sorted(set(found) - set(expected))]
    problems += [f"{name}: catalog stage {s} is missing" for s in sorted(set(expected) - set(found))]
    problems += [f"{name}: {s} upstream {sorted(found[s])} != catalog {sorted(expected[s])}"
                 for s in sorted(set(found) & set(expected)) if found[s] != expected[s]]
    return problems


def spec_problems(graph) -> list[str]:
    """Each catalog asset's group, description, partitioning and checks in Dagster are the catalog's."""
    problems = []
    for name, entry in catalog.ASSETS.items():
        key = AssetKey(name)
        if not graph.has(key):
            continue  # compare() names a missing asset
        node, checks = graph.get(key), {k.name for k in graph.asset_check_keys if k.asset_key == key}
        found = {"group": node.group_name, "description": node.description,
                 "partitioned": node.partitions_def is not None, "checks": sorted(checks)}
        wanted = {"group": entry.group, "description": entry.description, "partitioned": entry.partitions is not None,
                  "checks": sorted(g.name for g in entry.gates)}
        problems += [f"Dagster: asset {name} {field} {found[field]!r} != catalog {wanted[field]!r}"
                     for field in found if found[field] != wanted[field]]
    return problems


def graph_problems(graph, settings: Settings) -> list[str]:
    """The Dagster asset graph is the catalog's (every asset: stages, incoming and post-release), dvc.yaml its stage
    graph, and dvc.yaml is what the catalog generates."""
    expected = {name: catalog.parents(name) for name in catalog.STAGES}
    # raw_dataset reads the daily partitions only when data.source is their folder: not an edge of the stage graph
    dagster = {k: (v - set(catalog.INCOMING) if k in catalog.STAGES else v) for k, v in asset_parents(graph).items()
               if k != catalog.SOURCE}
    dvc = {name: ups | ({catalog.SOURCE} if catalog.SOURCE in expected[name] else set())
           for name, ups in dvc_stages.stage_parents(settings.root / "dvc.yaml").items()}
    return compare("Dagster", dagster, {name: catalog.parents(name) for name in catalog.ASSETS}) + \
        spec_problems(graph) + compare("dvc.yaml", dvc, expected) + dvc_stages.problems(settings)


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
    try:
        from assets.build import build_definitions

        graph = build_definitions(settings).resolve_asset_graph()
    except PipelineError:
        raise
    except Exception as exc:  # any import or definition error is the finding itself
        return [("Definitions load", [f"assets.definitions: {type(exc).__name__}: {str(exc).splitlines()[0]}"])]
    results: list[tuple[str, list[str]]] = [("Definitions load", [])]
    checks: list[tuple[str, Callable[[], list[str]]]] = [
        ("every asset has a description, group, owner and code version", lambda: asset_problems(graph)),
        ("Dagster graph, dvc.yaml and the stage catalog are one graph", lambda: graph_problems(graph, settings)),
        (f"committed releases at {revision} hold their lineage", lambda: release_problems(settings, revision)),
    ]
    for name, check in checks:
        try:
            results.append((name, check()))
        except PipelineError as exc:
            results.append((name, [str(exc)]))
    return results
