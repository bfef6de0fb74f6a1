"""The CLI as users call it: help, bad input as one line with exit 1, a quiet run, verify."""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CLI = [sys.executable, "-m", "cli.main"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_help_lists_every_command(tmp_path: Path):
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("run", "stage", "verify"):
        assert command in done.stdout
        sub = run_cli(command, "--help", cwd=tmp_path)
        assert sub.returncode == 0 and "usage: mobile-mlops " + command in sub.stdout


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and sub-command of the parser, with its own parser."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*prefix, name), sub))
                found += _commands(sub, (*prefix, name))
    return found


def test_every_command_and_sub_command_has_help(capsys):
    from cli.main import build_parser

    commands = _commands(build_parser())
    names = {" ".join(path) for path, _ in commands}
    assert {"run", "stage", "expectations", "verify", "release propose", "promote", "lineage check"} <= names
    top = build_parser().format_help()
    for path, sub in commands:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*path, "--help"])
        out = capsys.readouterr().out
        assert exit_info.value.code == 0 and out.startswith(f"usage: mobile-mlops {' '.join(path)}"), path
        assert sub.description and sub.description.split()[0] in out, f"{path}: no description in its help"
        if len(path) == 1:
            assert path[0] in top
    assert "Examples:" in top  # the top-level help shows how to start


def _edit(project: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    if value is None:
        params[section].pop(key)
    else:
        params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params))


BAD_INPUTS = [
    ("missing source file", ("data", "source", "absent.csv"), "data.source: file not found"),
    ("label column absent", ("data", "label", "salary"), "data.label: column 'salary' is not in"),
    ("positive label absent", ("data", "positive_label", "rich"), "data.positive_label: 'rich' never occurs"),
    ("sensitive feature absent", ("data", "sensitive_features", ["gender"]), "data.sensitive_features: column 'gender'"),
    ("unknown params key", ("train", "epoch", 3), "unknown key 'train.epoch'"),
    ("wrong type", ("train", "epochs", "ten"), "key 'train.epochs'"),
    ("missing label key", ("data", "label", None), "missing key 'data.label'"),
]


@pytest.mark.parametrize("case,edit,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_exit_1_and_nothing_trained(small_project: Path, case, edit, message):
    _edit(small_project, *edit)
    done = run_cli("run", "--params", "params.yaml", cwd=small_project)
    assert done.returncode == 1, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not (small_project / "models").exists() and not (small_project / "releases").exists()


def test_unreadable_and_empty_csv(small_project: Path):
    (small_project / "train.csv").write_text("")
    done = run_cli("stage", "raw_dataset", cwd=small_project)
    assert done.returncode == 1 and done.stderr.strip() == "error: data.source: train.csv has no data rows"
    (small_project / "train.csv").write_bytes(b"\xff\xfe\x00garbage,\x81\n")
    done = run_cli("stage", "raw_dataset", cwd=small_project)
    assert done.returncode == 1 and "not UTF-8" in done.stderr and "Traceback" not in done.stderr


def test_debug_shows_the_traceback(small_project: Path):
    _edit(small_project, "data", "source", "absent.csv")
    done = run_cli("--debug", "stage", "raw_dataset", cwd=small_project)
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_cli_run_prints_release_and_verify_checks_it(small_project: Path):
    done = run_cli("run", "--params", "params.yaml", "--set", "train.epochs=1", cwd=small_project)
    assert done.returncode == 0, done.stderr[-3000:]
    # quiet by default: only the header, one line per step and the time; no TensorFlow, absl, coremltools,
    # LiteRT or Dagster lines (they go to a log that a successful run deletes)
    progress = re.compile(r"^[^:]+: \d+/\d+ \(\d+%\)")  # pipelines/core/progress.py, not a tty: plain lines
    noise = [line for line in done.stderr.splitlines()
             if not line.startswith(("mobile-mlops run (", "data version ", "  start ", "  done  ", "finished in "))
             and not progress.match(line)]
    assert noise == [], noise[:5]
    release = small_project / "releases" / "adult-income" / "1"
    assert str(release) in done.stdout.replace("\n", "").replace(" ", "") or "release candidate" in done.stdout
    assert release.is_dir()
    ok = run_cli("verify", str(release), cwd=small_project)
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    copy = small_project / "tampered"
    shutil.copytree(release, copy)
    target = copy / "model_int8.tflite"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    bad = run_cli("verify", str(copy), cwd=small_project)
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"error: {target}: sha256 differs from the manifest"
