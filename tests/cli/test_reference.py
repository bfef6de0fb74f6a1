"""The generated reference pages: fresh in the repository, complete, and built from the code itself."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from cli import reference
from cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


class _Example(BaseModel):
    """An example section."""

    size: int = 3  # how many
    name: str | None = None
    mode: str = "a"  # the mode,
    # a comment line between fields belongs to no field
    nested_call: float = max(  # the first comment of a multi-line field
        1.0, 2.0)


def test_keys_take_their_trailing_comment_type_and_default():
    keys = {k.name: k for k in reference.params_keys(_Example, "x.")}
    assert keys["x.size"] == reference.Key("x.size", "int", "`3`", "how many")
    assert keys["x.name"] == reference.Key("x.name", "str | none", "`None`", "")
    assert keys["x.mode"].description == "the mode,"
    assert keys["x.nested_call"].description == "the first comment of a multi-line field"


def test_every_params_key_and_command_is_on_a_page():
    params, cli = reference.params_page(), reference.cli_page(build_parser())
    assert all(f"`{key.name}`" in params for key in reference.params_keys())
    assert "## `mobile-mlops run`" in cli and "## `mobile-mlops docs`" in cli
    assert "| `--set` |" in cli  # options come from the parser
    assert "raw_dataset --> validated_dataset" in reference.stages_page()


def test_committed_pages_are_what_the_code_generates():
    stale = [p for p in reference.problems(ROOT, build_parser()) if "stale" in p]
    assert stale == []


def test_a_stale_page_is_one_line(tmp_path, monkeypatch, capsys):
    reference.generate(tmp_path, build_parser())
    (tmp_path / reference.FOLDER / "cli.md").write_text("edited\n")
    monkeypatch.chdir(tmp_path)
    assert main(["docs", "check"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: docs/reference/cli.md is stale: run `mobile-mlops docs generate`")


def test_every_params_key_has_a_description():
    assert reference.undocumented_keys() == []
