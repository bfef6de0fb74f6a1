"""The documentation's reference pages, generated from the code: every params key (from the config models), every
CLI command (from the argument parser) and the stage catalog (a table and a diagram).

`mobile-mlops docs generate` writes them under docs/reference/; `mobile-mlops docs check` (CI) fails when a
committed page differs from what the code generates, or when a params key has no description."""
from __future__ import annotations

import argparse
import inspect
import io
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pipelines.core.errors import PipelineError

PAGES = ("params.md", "cli.md", "stages.md")
FOLDER = Path("docs") / "reference"


@dataclass(frozen=True)
class Key:
    """One params key: its dotted name, type, default and description."""

    name: str
    type: str
    default: str
    description: str


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment on its line(s) in the class body (where the config models document a key)."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    current: str | None = None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and token.start[1] == 4 and token.line[4:].split(":")[0].strip() == token.string:
            current = token.string  # a field at class-body indentation: `    name: type = ...`
        elif token.type == tokenize.COMMENT and current and current not in found:
            found[current] = token.string.lstrip("#").strip()
        elif token.type == tokenize.NEWLINE:
            current = None
    return found


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return "none" if annotation is type(None) else annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:  # the validators' reprs hold memory addresses: name the type only
        return _type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return str(annotation).replace("typing.", "")


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config model a field holds (directly, or as the values of a dict), else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _doc(section: type[BaseModel]) -> str:
    """The first line of a config model's own docstring (not one it inherits)."""
    return (section.__dict__.get("__doc__") or "").strip().split("\n")[0]


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        value = [v.model_dump() for v in value]
    return f"`{value!r}`"


def params_keys(model: type[BaseModel] | None = None, prefix: str = "") -> list[Key]:
    """Every params key under `model` (the whole params file by default), depth first, in declaration order."""
    if model is None:
        from pipelines.core.config import Params

        model = Params
    comments = _comments(model)
    keys: list[Key] = []
    for name, field in model.model_fields.items():
        shown = field.alias or name
        dotted = f"{prefix}{shown}"
        section = _section(field.annotation)
        description = field.description or comments.get(name, "")
        if section is not None and typing.get_origin(field.annotation) is dict:
            keys.append(Key(dotted, "mapping of name to section", _default(field),
                            description or _doc(section)))
            keys += params_keys(section, f"{dotted}.<name>.")
        elif section is not None and typing.get_origin(field.annotation) is list:
            keys.append(Key(dotted, "list of sections", _default(field), description or _doc(section)))
            keys += params_keys(section, f"{dotted}[].")
        elif section is not None:
            keys.append(Key(dotted, "section", "", description or _doc(section)))
            keys += params_keys(section, f"{dotted}.")
        else:
            keys.append(Key(dotted, _type_name(field.annotation), _default(field), description))
    return keys


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def params_page() -> str:
    lines = ["# params.yaml reference", "",
             "Generated from the config models in `pipelines/core/config.py` by `mobile-mlops docs generate`; "
             "do not edit. A key you leave out takes its default; a wrong key or type is a one-line error naming "
             "the key.", ""]
    keys = params_keys()
    for top in [k for k in keys if "." not in k.name]:
        lines += [f"## `{top.name}`", "", _cell(top.description) if top.description else "", "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        for key in keys:
            if key.name == top.name or key.name.startswith(top.name + "."):
                if key.type == "section" and key.name != top.name:
                    lines.append(f"| `{key.name}` | section | | {_cell(key.description)} |")
                elif key.name != top.name:
                    lines.append(f"| `{key.name}` | {_cell(key.type)} | {_cell(key.default)} | "
                                 f"{_cell(key.description)} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{prefix} {name}", sub))
                found += _commands(sub, f"{prefix} {name}")
    return found


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        name = ", ".join(action.option_strings) or action.dest
        if action.choices and not action.option_strings:
            name += " {" + ",".join(str(c) for c in action.choices) + "}"
        default = "" if action.default in (None, False, argparse.SUPPRESS) else f"`{action.default}`"
        rows.append(f"| `{name}` | {default} | {_cell(action.help or '')} |")
    return rows


def cli_page(parser: argparse.ArgumentParser) -> str:
    """The CLI page from the command's parser (handed in by `mobile-mlops docs`: this module does not import the
    module that builds it)."""
    lines = ["# CLI reference", "", "Generated from the argument parser (`cli/`) by `mobile-mlops docs generate`; "
             "do not edit. Every command prints one line and exits 1 on a user error; `--debug` shows the "
             "traceback.", "", "```text", parser.format_usage().strip(), "```", ""]
    for name, sub in _commands(parser, "mobile-mlops"):
        lines += [f"## `{name}`", "", _cell(sub.description or ""), "", "```text",
                  sub.format_usage().strip().removeprefix("usage: "), "```", ""]
        rows = _option_rows(sub)
        if rows:
            lines += ["| argument | default | what it does |", "|---|---|---|", *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


def stages_page() -> str:
    from pipelines import catalog

    lines = ["# Stage catalog", "", "Generated from `pipelines/catalog.py` by `mobile-mlops docs generate`; do not "
             "edit. Every stage is a Dagster asset and a DVC stage (`dvc.yaml` is generated from the same catalog).",
             "", "```mermaid", "graph TD"]
    lines += [f"  {parent} --> {name}" for name in catalog.STAGES for parent in sorted(catalog.parents(name))]
    lines += ["```", "", "| stage | group | what it makes | reads params | writes |", "|---|---|---|---|---|"]
    for stage in catalog.STAGES.values():
        params = ", ".join(f"`{k}`" for k in stage.params)
        writes = ", ".join(f"`{w}`" for w in stage.writes)
        lines.append(f"| `{stage.name}` | {stage.group} | {_cell(stage.description)} | {params} | {writes} |")
    others = getattr(catalog, "NOT_STAGES", ())
    if others:
        lines += ["", "Assets outside the stage graph (daily partitions and the post-release loop): "
                  + ", ".join(f"`{name}`" for name in others) + "."]
    return "\n".join(lines).rstrip() + "\n"


def pages(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Every reference page's file name and text; `parser` is the mobile-mlops command's."""
    return {"params.md": params_page(), "cli.md": cli_page(parser), "stages.md": stages_page()}


def undocumented_keys() -> list[str]:
    """Params keys without a description: the reference would show an empty cell."""
    return [key.name for key in params_keys() if not key.description.strip()]


def generate(root: Path, parser: argparse.ArgumentParser) -> list[Path]:
    """Write every reference page; return their paths."""
    from pipelines.core.io import atomic_path

    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages(parser).items():
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text)
        written.append(folder / name)
    return written


def problems(root: Path, parser: argparse.ArgumentParser) -> list[str]:
    """What makes the committed reference pages stale or incomplete (empty when they are current)."""
    found = [f"{FOLDER / name} is stale: run `mobile-mlops docs generate`" for name, text in pages(parser).items()
             if not (root / FOLDER / name).is_file() or (root / FOLDER / name).read_text() != text]
    missing = undocumented_keys()
    if missing:
        found.append(f"{len(missing)} params key(s) without a description in pipelines/core/config.py: "
                     + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    return found


def cmd_docs(args: argparse.Namespace) -> int:
    root = Path.cwd()
    if args.action == "generate":
        written = generate(root, args.command_parser)
        print(f"wrote {', '.join(str(p.relative_to(root)) for p in written)}")
        return 0
    found = problems(root, args.command_parser)
    if found:
        raise PipelineError(found[0] + (f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""))
    print("docs/reference matches the code")
    return 0
