"""The project's import graph: which `pipelines.*` modules a module imports, read from its import lines.

Every import line counts, at the top of a module or inside a function (a step imports its heavy helpers where it
uses them), so the graph is what can run, not only what runs at import. Lines are read with regular expressions:
parsing every module with `ast` made building the Dagster definitions 40x slower here. A line in a docstring that
looks like an import can only add an edge, which makes a code version stricter, never laxer. Each file's imports
are cached by path, mtime and size, so an edited file is read again and an unchanged one never.

`cycles` and `upward_imports` keep the graph a layered tree: no import circle, no import up LAYERS.

A step module is also read statement by statement (`function_modules`): one steps.py holds all steps of a group,
and a stage depends on the modules its own function (and the module's helpers it calls) uses, not on the imports
of the other steps beside it.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from pipelines.catalog import GROUPS

PROJECT = Path(__file__).resolve().parents[1]
ROOT = "pipelines"
# The packages bottom to top: a module imports only from its own package and the ones below it. core is below all;
# release_format (keysets, the deployed state, a release's model) is shared by data and release.
LAYERS = ("core", "release_format", *GROUPS)

_FROM = re.compile(r"^[ \t]*from[ \t]+(pipelines(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n]*\bpipelines\b[^\n]*)", re.MULTILINE)


@functools.cache
def _listing(folder: str, stamp: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A folder's module files and sub-folders (cached by the folder's mtime, which a new or removed file changes)."""
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    return (tuple(e.name for e in entries if e.is_file() and e.name.endswith(".py")),
            tuple(e.name for e in entries if e.is_dir() and e.name != "__pycache__"))


@functools.cache
def _tree(root: Path, stamps: tuple[tuple[str, int], ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, stamp in stamps:
        package = os.path.relpath(folder, root).replace(os.sep, ".")
        for name in _listing(folder, stamp)[0]:
            found[package if name == "__init__.py" else f"{package}.{name[:-3]}"] = Path(folder, name)
    return found


def _modules(root: Path) -> dict[str, Path]:
    """Every module under pipelines/ -> its file (one stat per folder when nothing was added or removed)."""
    stamps: list[tuple[str, int]] = []
    todo = [os.path.join(root, ROOT)]
    while todo:
        folder = todo.pop()
        stamp = os.stat(folder).st_mtime_ns
        stamps.append((folder, stamp))
        todo += [os.path.join(folder, sub) for sub in _listing(folder, stamp)[1]]
    return _tree(root, tuple(stamps))


def module_files(root: Path = PROJECT) -> dict[str, Path]:
    """Every project module -> its file."""
    return _modules(root)


def project_modules(root: Path = PROJECT) -> list[str]:
    """Every module under pipelines/, sorted."""
    return sorted(_modules(root))


def _stamp(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


def _aliases(listed: str) -> list[tuple[str, str]]:
    """(name, bound name) of `a, b as c, (d,\n e)`, comments dropped."""
    text = " ".join(line.split("#", 1)[0] for line in listed.strip("()").splitlines())
    return [(words[0], words[-1]) for words in (item.split() for item in text.split(",")) if words]


def _resolve(base: str, names: list[str], modules: dict[str, Path]) -> set[str]:
    """`from base import names`: base, and each name that is a submodule of it."""
    found = {base} if base in modules else set()
    return found | {f"{base}.{n}" for n in names if f"{base}.{n}" in modules}


@functools.cache
def _read_imports(path: Path, name: str, stamp: tuple[int, int], modules: frozenset[str]) -> frozenset[str]:
    text = path.read_text()
    known: dict[str, Any] = dict.fromkeys(modules)
    found: set[str] = set()
    for base, listed in _FROM.findall(text):
        found |= _resolve(base, [name for name, _ in _aliases(listed)], known)
    for listed in _IMPORT.findall(text):
        found |= {name for name, _ in _aliases(listed) if name in known}
    return frozenset(found - {name})


def _imports(module: str, modules: dict[str, Path], names: frozenset[str]) -> frozenset[str]:
    path = modules.get(module)
    return _read_imports(path, module, _stamp(path), names) if path else frozenset()


def imports(module: str, root: Path = PROJECT) -> frozenset[str]:
    """The project modules `module` imports anywhere in its file (top level or inside functions)."""
    modules = _modules(root)
    return _imports(module, modules, frozenset(modules))


def packages_of(module: str) -> list[str]:
    """The packages Python imports before `module`: pipelines.a.b -> pipelines, pipelines.a."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(start: set[str] | frozenset[str], root: Path = PROJECT) -> set[str]:
    """`start`, every project module they import, transitively, and the packages on the way."""
    modules = _modules(root)
    names = frozenset(modules)
    closed: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in closed:
            continue
        closed.add(module)
        todo += [m for m in (*_imports(module, modules, names), *packages_of(module)) if m not in closed]
    return closed


_BLOCK = re.compile(r"^(?:@|async[ \t]+def\b|def\b|class\b|from\b|import\b|if\b|try\b|with\b|for\b|while\b|"
                    r"[A-Za-z_][\w, \t]*(?::[^=\n]*)?=(?!=))", re.MULTILINE)
_DEFINES = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.MULTILINE)
_ASSIGNS = re.compile(r"^([A-Za-z_][\w, \t]*?)[ \t]*(?::[^=\n]*)?=(?!=)")
_WORD = re.compile(r"(?<![\w.])[A-Za-z_]\w*")  # not an attribute (.name)


def _blocks(text: str) -> list[str]:
    """A module's top-level statements: each starts at a line at column 0 (decorators join their function)."""
    starts = [m.start() for m in _BLOCK.finditer(text)]
    joined: list[str] = []
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        if joined and joined[-1].startswith("@") and not _DEFINES.search(joined[-1]):
            joined[-1] += text[begin:end]  # the decorated function
        else:
            joined.append(text[begin:end])
    return joined


def _block_imports(block: str, modules: dict) -> dict[str, set[str]]:
    """The names a statement's import lines bind -> the project modules each stands for."""
    bound: dict[str, set[str]] = {}
    if "import" not in block:
        return bound
    for base, listed in _FROM.findall(block):
        for name, alias in _aliases(listed):
            bound.setdefault(alias, set()).update(_resolve(base, [name], modules))
    for listed in _IMPORT.findall(block):
        for name, alias in _aliases(listed):
            if name in modules:
                bound.setdefault(alias if alias != name else name.split(".")[0], set()).add(name)
    return bound


@functools.cache
def _bindings(path: Path, stamp: tuple[int, int], names: frozenset[str]) -> dict[str, tuple[frozenset, frozenset]]:
    """A module's top-level names -> (the words their statements use, the project modules they import).

    Read with regular expressions like the import lines: a word counts as used wherever it appears in the
    statement (in a string or a comment too), which can only add a dependency."""
    modules = dict.fromkeys(names)
    found: dict[str, tuple[set, set]] = {}
    for block in _blocks(path.read_text()):
        imports_ = _block_imports(block, modules)
        if block.startswith(("from", "import")):
            for name, imported in imports_.items():
                found.setdefault(name, (set(), set()))[1].update(imported)
            continue
        defined = _DEFINES.search(block) if block.startswith(("@", "def", "async", "class")) else None
        assigned = _ASSIGNS.match(block) if defined is None else None
        bound = [defined.group(1)] if defined else _WORD.findall(assigned.group(1)) if assigned else []
        if not bound:  # `try:` / `if ...:` at the top: the names its imports bind
            for name, imported in imports_.items():
                found.setdefault(name, (set(), set()))[1].update(imported)
            continue
        inner = {m for modules_ in imports_.values() for m in modules_}  # imported inside a function
        for name in bound:
            uses, imported = found.setdefault(name, (set(), set()))
            uses.update(_WORD.findall(block))
            imported |= inner
    return {name: (frozenset(uses), frozenset(imported)) for name, (uses, imported) in found.items()}


def function_modules(module: str, function: str, root: Path = PROJECT) -> set[str]:
    """The project modules a function of `module` runs: `module`, what the function and the helpers of its module
    it uses import (at the module's top for the names they use, or inside themselves), transitively."""
    modules = _modules(root)
    if module not in modules:
        raise KeyError(f"no module {module} under {root}")
    bindings = _bindings(modules[module], _stamp(modules[module]), frozenset(modules))
    if function not in bindings:
        raise KeyError(f"{modules[module]}: no function {function}")
    used: set[str] = set()
    seen: set[str] = set()
    todo = [function]
    while todo:
        name = todo.pop()
        if name in seen or name not in bindings:
            continue
        seen.add(name)
        uses, imported = bindings[name]
        used |= imported
        todo += uses
    return closure(used | set(packages_of(module)), root) | {module}  # not the imports of its other functions


def graph(root: Path = PROJECT) -> dict[str, frozenset[str]]:
    """Every project module -> the project modules it imports."""
    return {module: imports(module, root) for module in project_modules(root)}


def cycles(root: Path = PROJECT) -> list[list[str]]:
    """The import circles among project modules (imports inside functions count): each a sorted list of modules,
    the strongly connected components of the graph with more than one module (Tarjan's algorithm)."""
    edges = graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in edges.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component: list[str] = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(found)


def layer(module: str) -> str | None:
    """The package of LAYERS a module belongs to (pipelines.data.load -> data); None for pipelines.catalog etc."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def upward_imports(root: Path = PROJECT) -> list[str]:
    """Imports that go up LAYERS (or from core to a module outside it), one line each."""
    found = []
    for module, imported in sorted(graph(root).items()):
        own = layer(module)
        if own is None:
            continue
        for target in sorted(imported):
            other = layer(target)
            if (LAYERS.index(other) > LAYERS.index(own)) if other else own == "core":
                found.append(f"{module} ({own}) imports {target} ({other or 'above every package'})")
    return found
