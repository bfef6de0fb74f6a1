"""Release policies: rules a mobile CI (or a reviewer) checks on a release's verified attestations.

A policy is a YAML file:

    rules:
      - name: demographic parity on sex at most 0.05
        gate: "*demographic_parity*sex*"    # glob over gate names in the gates attestation
        max: 0.05                           # every matching gate's measured figure (min: a floor)
      - name: built from a clean commit
        provenance: buildDefinition.internalParameters.code.dirty
        equals: false
      - name: known training data
        data_md5_in: [5d7c39d7b8804f071cdd1f2a7c460872]

Every rule must hold; the first that does not is one line naming it.
"""
from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from pipelines.core.errors import PipelineError


class Rule(BaseModel):
    """One rule: a gate figure bound, a provenance field value, or the data's md5 allow-list."""

    model_config = ConfigDict(extra="forbid")

    name: str
    gate: str | None = None  # a glob over gate names
    max: float | None = None
    min: float | None = None
    passed: bool | None = None  # the matching gates' verdict
    provenance: str | None = None  # a dotted path in the provenance predicate
    equals: Any = None
    data_md5_in: list[str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [k for k in (self.gate, self.provenance, self.data_md5_in) if k is not None]
        if len(kinds) != 1:
            raise ValueError("each rule needs exactly one of gate, provenance, data_md5_in")
        if self.gate is not None and self.max is None and self.min is None and self.passed is None:
            raise ValueError("a gate rule needs max, min or passed")
        return self


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]


def load_policy(path: Path) -> Policy:
    """Parse a policy file; a file that does not parse or validate is one line naming it."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        return Policy.model_validate(raw)
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read the policy ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}: not valid YAML{where}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        raise PipelineError(f"{path}: {where}: {error['msg']}") from None


def _field(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(dotted)
    return node


def _gate_problem(rule: Rule, gates: list[dict[str, Any]]) -> str | None:
    matching = [g for g in gates if fnmatch.fnmatchcase(g["name"], rule.gate or "")]
    if not matching:
        return f"no gate matches {rule.gate!r}"
    for gate in matching:
        if rule.max is not None and gate["measured"] > rule.max:
            return f"{gate['name']} measured {gate['measured']:.4f} > {rule.max}"
        if rule.min is not None and gate["measured"] < rule.min:
            return f"{gate['name']} measured {gate['measured']:.4f} < {rule.min}"
        if rule.passed is not None and gate["passed"] != rule.passed:
            return f"{gate['name']} passed is {gate['passed']}"
    return None


def _data_problem(rule: Rule, provenance: dict[str, Any]) -> str | None:
    allowed = set(rule.data_md5_in or [])
    data = [d for d in provenance["buildDefinition"]["resolvedDependencies"]
            if d.get("annotations", {}).get("role") == "source-data"]
    if not data:
        return "the provenance names no source data"
    for dependency in data:
        if dependency["digest"].get("md5") not in allowed:
            return f"{dependency['name']} has md5 {dependency['digest'].get('md5')}, not in the list"
    return None


def check(policy: Policy, provenance: dict[str, Any], gates: dict[str, Any]) -> list[str]:
    """The rules that hold, by name; raises at the first that does not, naming rule and figure."""
    held = []
    for rule in policy.rules:
        if rule.gate is not None:
            problem = _gate_problem(rule, gates["gates"])
        elif rule.data_md5_in is not None:
            problem = _data_problem(rule, provenance)
        else:
            try:
                value = _field(provenance, rule.provenance or "")
            except KeyError:
                problem = f"the provenance has no field {rule.provenance}"
            else:
                problem = None if value == rule.equals else f"{rule.provenance} is {value!r}, not {rule.equals!r}"
        if problem:
            raise PipelineError(f"policy rule '{rule.name}' fails: {problem}")
        held.append(rule.name)
    return held
