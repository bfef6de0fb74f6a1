"""params.yaml parsing: typed sections, one-line errors naming the key, overrides, hashing."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.config import load_settings
from pipelines.core.errors import PipelineError

VALID = """\
data:
  source: data/table.csv
  label: income
  positive_label: ">50K"
  sensitive_features: [sex]
train:
  epochs: 7
  hidden_units: [8]
"""


def write_params(folder: Path, text: str = VALID) -> Path:
    path = folder / "params.yaml"
    path.write_text(text)
    return path


def test_valid_file_parses_into_typed_sections_with_defaults(tmp_path):
    settings = load_settings(write_params(tmp_path))
    params = settings.params
    assert params.data.label == "income"
    assert params.data.sensitive_features == ["sex"]
    assert params.train.epochs == 7
    assert params.train.hidden_units == [8]
    # keys left out take the defaults from pipelines/config.py
    assert params.train.batch_size == 256
    assert params.split.seed == 42
    assert params.validate_.min_rows == 100
    assert params.data.na_values == ["?"]
    assert settings.path == tmp_path / "params.yaml"


def test_unknown_key_is_named_with_its_section(tmp_path):
    path = write_params(tmp_path, VALID + "  epoch: 3\n")
    with pytest.raises(PipelineError) as caught:
        load_settings(path)
    assert "unknown key 'train.epoch'" in str(caught.value)
    assert "params.yaml" in str(caught.value)


def test_unknown_section_is_named(tmp_path):
    path = write_params(tmp_path, VALID + "trian:\n  epochs: 3\n")
    with pytest.raises(PipelineError, match="unknown key 'trian'"):
        load_settings(path)


def test_wrong_type_names_the_key_and_the_value(tmp_path):
    path = write_params(tmp_path, VALID.replace("epochs: 7", 'epochs: "ten"'))
    with pytest.raises(PipelineError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "'train.epochs'" in message
    assert "'ten'" in message
    assert "\n" not in message


def test_out_of_range_value_names_the_key(tmp_path):
    path = write_params(tmp_path, VALID + "split:\n  test_size: 1.5\n")
    with pytest.raises(PipelineError, match=r"'split\.test_size'"):
        load_settings(path)


def test_missing_required_key_is_named(tmp_path):
    path = write_params(tmp_path, VALID.replace("  label: income\n", ""))
    with pytest.raises(PipelineError, match="missing key 'data.label'"):
        load_settings(path)


def test_overrides_are_applied_by_dotted_key(tmp_path):
    settings = load_settings(write_params(tmp_path), overrides={"train.epochs": 3, "split.seed": 7})
    assert settings.params.train.epochs == 3
    assert settings.params.split.seed == 7
    # untouched keys keep the file's values
    assert settings.params.train.hidden_units == [8]


def test_override_with_wrong_type_is_rejected_naming_the_key(tmp_path):
    with pytest.raises(PipelineError, match="'train.epochs'"):
        load_settings(write_params(tmp_path), overrides={"train.epochs": "many"})


def test_override_into_a_non_section_is_rejected(tmp_path):
    with pytest.raises(PipelineError, match="'train.epochs.x'"):
        load_settings(write_params(tmp_path), overrides={"train.epochs.x": 1})


def test_top_level_list_is_rejected(tmp_path):
    path = write_params(tmp_path, "- data\n- train\n")
    with pytest.raises(PipelineError, match="top level must be a mapping"):
        load_settings(path)


def test_invalid_yaml_is_one_line_error(tmp_path):
    path = write_params(tmp_path, "data: [unclosed\n")
    with pytest.raises(PipelineError, match="not valid YAML") as caught:
        load_settings(path)
    assert "\n" not in str(caught.value)


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PipelineError, match="params file not found") as caught:
        load_settings(missing)
    assert "nope.yaml" in str(caught.value)


def test_resolve_is_relative_to_the_params_folder_not_the_cwd(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    settings = load_settings(write_params(project))
    monkeypatch.chdir(tmp_path)
    assert settings.root == project
    assert settings.resolve("data/table.csv") == project / "data" / "table.csv"
    absolute = tmp_path / "elsewhere.csv"
    assert settings.resolve(str(absolute)) == absolute


def test_relative_params_path_is_made_absolute(tmp_path, monkeypatch):
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    settings = load_settings("params.yaml")
    assert settings.path.is_absolute()
    assert settings.resolve("x.csv") == tmp_path / "x.csv"


def test_section_hash_is_stable_and_tracks_values(tmp_path):
    first = load_settings(write_params(tmp_path)).section_hash()
    again = load_settings(write_params(tmp_path)).section_hash()
    assert first == again
    assert len(first) == 64 and int(first, 16) >= 0
    # key order and formatting do not matter, only content
    reordered = "train:\n  hidden_units: [8]\n  epochs: 7\n" + VALID.split("train:")[0]
    assert load_settings(write_params(tmp_path, reordered)).section_hash() == first
    changed = load_settings(write_params(tmp_path, VALID.replace("epochs: 7", "epochs: 8"))).section_hash()
    assert changed != first
    overridden = load_settings(write_params(tmp_path), overrides={"train.epochs": 8}).section_hash()
    assert overridden == changed


REPO = Path(__file__).resolve().parents[2]


def _leaves(node, prefix=""):
    if isinstance(node, dict) and node and all(isinstance(k, str) for k in node):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, node


def test_params_yaml_states_the_code_defaults_except_the_data_sets_own_keys():
    """Defaults live in pipelines/core/config.py; params.yaml may only repeat them, except DATASET_KEYS."""
    import yaml

    from pipelines.core.config import DATASET_KEYS, Params

    written = yaml.safe_load((REPO / "params.yaml").read_text())
    defaults = Params.model_construct().model_dump(by_alias=True, mode="json")
    differ = []
    for key, value in _leaves(written):
        if any(key == k or key.startswith(k + ".") for k in DATASET_KEYS):
            continue
        default = defaults
        for part in key.split("."):
            default = default.get(part) if isinstance(default, dict) else None
        if default != value and not (isinstance(value, (int, float)) and default == pytest.approx(value)):
            differ.append(f"{key}: params.yaml {value!r} vs code {default!r}")
    assert differ == []


@pytest.mark.parametrize("old,new", [("footprint:\n  max_bytes: 10\n", "gates.on_device"),
                                     ("gates:\n  min_accuracy: 0.9\n", "gates.keras.min_accuracy"),
                                     ("gates:\n  min_agreement: 0.9\n", "gates.conversion.min_agreement_with_keras"),
                                     ("finops:\n  budgets:\n    monthly_usd: 5\n", "gates.budgets.max_monthly_usd"),
                                     ("fairness:\n  gates:\n    min_group_size: 5\n", "gates.fairness")])
def test_a_moved_key_names_its_new_place(tmp_path, old, new):
    with pytest.raises(PipelineError, match=rf"params.yaml: key '.*' has moved to '{new}'$"):
        load_settings(write_params(tmp_path, VALID + old))


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    import time

    bomb = "".join(f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 9 if i else ["x"] * 9) + "]\n" for i in range(9))
    started = time.perf_counter()
    with pytest.raises(PipelineError, match=r"^params.yaml: YAML aliases \(\*name\) are not allowed in params "
                                            r"\(line 10\); write the value out$"):
        load_settings(write_params(tmp_path, VALID + bomb))
    assert time.perf_counter() - started < 5  # refused while parsing, never expanded


def test_a_long_wrong_value_is_cut_in_the_message(tmp_path):
    with pytest.raises(PipelineError) as caught:
        load_settings(write_params(tmp_path, VALID.replace("epochs: 7", "epochs: " + "x" * 5000)))
    assert len(str(caught.value)) < 300 and "…" in str(caught.value)


def test_a_release_directory_outside_the_project_must_be_allowed(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    escape = VALID + "release:\n  directory: ../escape\n"
    with pytest.raises(PipelineError, match=r"key 'release.directory': .*escape is outside the project .*"
                                            r"set release.allow_outside_project: true"):
        load_settings(write_params(project, escape))
    allowed = load_settings(write_params(project, escape + "  allow_outside_project: true\n"))
    assert allowed.resolve(allowed.params.release.directory) == project / "../escape"


def test_the_pipelines_own_outputs_do_not_make_the_code_dirty(tmp_path):
    import subprocess

    from pipelines.catalog import pipeline_outputs
    from pipelines.core.git_state import git_state

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "reports" / "metrics").mkdir(parents=True)
    (tmp_path / "reports" / "metrics" / "trained_model.json").write_text('{"cpu_seconds": 1.0}\n')
    (tmp_path / "model.py").write_text("EPOCHS = 10\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "project")
    (tmp_path / "reports" / "metrics" / "trained_model.json").write_text('{"cpu_seconds": 1.3}\n')  # a re-run
    assert git_state(tmp_path, pipeline_outputs())["git_dirty"] is False
    assert git_state(tmp_path)["git_dirty"] is True  # without the outputs list, any change counts
    (tmp_path / "model.py").write_text("EPOCHS = 11\n")  # a real change to what produced the model
    assert git_state(tmp_path, pipeline_outputs())["git_dirty"] is True
