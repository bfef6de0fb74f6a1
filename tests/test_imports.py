"""The project's imports form layers: no import circle among pipelines modules (imports inside functions count) and
no import up the packages (core, release_format, then the groups bottom to top)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines import import_graph

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pipelines_copy(tmp_path: Path) -> Path:
    """A copy of pipelines/ to plant a bad import in."""
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_no_import_circle_among_project_modules():
    assert import_graph.cycles() == []


def test_no_package_imports_a_package_above_it():
    assert import_graph.upward_imports() == []


def test_the_catalog_imports_only_core():
    assert {import_graph.layer(m) for m in import_graph.imports("pipelines.catalog")} == {"core"}


def test_the_layers_are_core_release_format_then_the_groups():
    assert import_graph.LAYERS[:3] == ("core", "release_format", "data")
    assert import_graph.LAYERS[-2:] == ("release", "fleet")
    fleet = {m for m in import_graph.project_modules() if import_graph.layer(m) == "fleet"}
    # the fleet opens pull requests through the release providers: it must sit above release
    assert any(import_graph.layer(t) == "release" for m in fleet for t in import_graph.imports(m))


def test_a_circle_through_an_import_inside_a_function_is_found(pipelines_copy: Path):
    data = pipelines_copy / "pipelines" / "data"
    (data / "ring_a.py").write_text("from pipelines.data import ring_b\n")
    (data / "ring_b.py").write_text("def late():\n    from pipelines.data.ring_a import x  # hidden in a function\n")
    assert import_graph.cycles(pipelines_copy) == [["pipelines.data.ring_a", "pipelines.data.ring_b"]]


def test_an_upward_import_is_named(pipelines_copy: Path):
    split = pipelines_copy / "pipelines" / "data" / "split.py"
    split.write_text(split.read_text() + "\n\ndef late():\n    import pipelines.fleet.canary as canary\n")
    (pipelines_copy / "pipelines" / "core" / "extra.py").write_text("from pipelines.catalog import GROUPS\n")
    assert import_graph.upward_imports(pipelines_copy) == [
        "pipelines.core.extra (core) imports pipelines.catalog (above every package)",
        "pipelines.data.split (data) imports pipelines.fleet.canary (fleet)"]


def test_every_form_of_import_is_read(pipelines_copy: Path):
    (pipelines_copy / "pipelines" / "mobile" / "extra.py").write_text(
        '"""Docs."""\n'
        "from pipelines.core.paths import (  # a comment\n"
        "    ArtifactPaths,\n"
        "    tflite_file,\n"
        ")\n"
        "from pipelines.fleet import canary, store as kept\n"
        "import os, pipelines.data.split\n"
        "def late():\n"
        "    from pipelines.governance.fairness import (\n"
        "        fairness_gates,\n"
        "    )\n"
        "    import pipelines.release.signing as signing\n"
        "    from pipelines import catalog\n"
        "    return fairness_gates, signing, catalog\n")
    assert import_graph.imports("pipelines.mobile.extra", pipelines_copy) == {
        "pipelines.core.paths", "pipelines.fleet", "pipelines.fleet.canary", "pipelines.fleet.store",
        "pipelines.data.split", "pipelines.governance.fairness", "pipelines.release.signing", "pipelines",
        "pipelines.catalog"}


def test_a_function_runs_only_the_modules_its_own_code_and_helpers_use(pipelines_copy: Path):
    (pipelines_copy / "pipelines" / "data" / "extra.py").write_text(
        "from pipelines.core.io import read_json\n"
        "from pipelines.data import split, drift as unused_here\n"
        "try:\n"
        "    from pipelines.data.validate import validate_dataset\n"
        "except ImportError:\n"
        "    validate_dataset = None\n"
        "LIMIT = read_json\n"
        "\n\n"
        "@staticmethod\n"
        "def helper():\n"
        "    return split.take, LIMIT  # drift: a word, not a name bound here\n"
        "\n\n"
        "def first():\n"
        "    from pipelines.data.features import FeatureSpec\n"
        "    return helper(), FeatureSpec\n"
        "\n\n"
        "def second():\n"
        "    return unused_here, validate_dataset\n")
    first = import_graph.function_modules("pipelines.data.extra", "first", pipelines_copy)
    assert {"pipelines.data.extra", "pipelines.data.split", "pipelines.data.features", "pipelines.core.io",
            "pipelines.data", "pipelines"} <= first
    assert not {"pipelines.data.drift", "pipelines.data.validate"} & first
    second = import_graph.function_modules("pipelines.data.extra", "second", pipelines_copy)
    assert {"pipelines.data.drift", "pipelines.data.validate"} <= second
    assert not {"pipelines.data.split", "pipelines.data.features"} & second
    with pytest.raises(KeyError, match="no function third"):
        import_graph.function_modules("pipelines.data.extra", "third", pipelines_copy)
