"""The release pull request's body: a Markdown report of whatever the release folder holds.

Known reports get their own sections (gates, metrics, fairness, footprint and cost, drift); any other
JSON report is rendered generically, so reports added later show up without changes here. Every number
is compared with the production release where it has the same one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.gitops.deploy import Deployment
from pipelines.gitops.views import ReleaseView

MARKER = "<!-- mobile-mlops:release-report -->"  # marks the one report comment on a pull request
NOT_AVAILABLE = "_not available_"
MAX_ROWS = 40
MAX_CHARS = 60000  # GitHub rejects bodies over 65,536 characters
SKIPPED = {"feature_spec.json", "reference_profile.json", "tflite.json", "coreml.json"}  # covered by metrics
SECTIONS = {"fairness": ("fairness",), "footprint": ("footprint", "cost", "latency", "benchmark", "energy",
                                                   "offload", "size"), "drift": ("drift",)}


@dataclass
class ReportContext:
    candidate: ReleaseView
    production: ReleaseView | None
    deployment: Deployment
    signer: str  # which trusted key verified the signature, e.g. keys/release-signing.pub (sha256 1a2b…)
    link_base: str = ""  # prefix for links to files on the branch ("" = relative links)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if value == value else "NaN"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _delta(new: Any, old: Any) -> str:
    if not (_is_number(new) and _is_number(old)):
        return ""
    diff = new - old
    return f"{diff:+d}" if isinstance(diff, int) else f"{diff:+.4f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    shown = rows[:MAX_ROWS]
    lines += ["| " + " | ".join(row) + " |" for row in shown]
    if len(rows) > len(shown):
        lines.append(f"\n_{len(rows) - len(shown)} more rows in the release folder._")
    return "\n".join(lines)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Scalar leaves as dotted keys; long lists and texts are left out of tables."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat.update(flatten(child, f"{prefix}{key}."))
        return flat
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value) and len(str(value)) <= 80:
            return {prefix[:-1]: ", ".join(map(str, value)) or "–"}
        return {}
    if isinstance(value, str) and len(value) > 100:
        return {}
    return {prefix[:-1]: value}


def comparison(candidate: dict[str, Any], production: dict[str, Any] | None, label: str) -> str:
    """key | candidate | production | delta, for every scalar of the candidate's structure."""
    new, old = flatten(candidate), flatten(production) if production is not None else None
    rows = [[f"`{key}`", _fmt(value), _fmt(old.get(key)) if old is not None else "–",
             _delta(value, old.get(key)) if old is not None else ""] for key, value in new.items()]
    return _table(["", "candidate", label, "Δ"], rows) if rows else NOT_AVAILABLE


def _drift_summary(content: dict[str, Any], label: str) -> str | None:
    """A drift report (per-feature tests): verdict, reference, and the features by PSI."""
    features = content.get("features")
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        return None
    drifted = content.get("drifted") or []
    head = (f"Drift: **{'yes' if content.get('drift') else 'no'}** (blocking: {_fmt(content.get('blocking'))}); "
            f"drifted features: {', '.join(map(str, drifted)) or 'none'}; "
            f"reference: {_fmt(content.get('reason') or content.get('reference'))}.")
    ranked = sorted(features.items(), key=lambda item: -float(item[1].get("psi") or 0))
    rows = [[f"`{name}`", _fmt(f.get("test")), _fmt(f.get("statistic")), _fmt(f.get("p_value")), _fmt(f.get("psi")),
             "⚠ yes" if f.get("drifted") else "no"] for name, f in ranked]
    return head + "\n\n" + _table(["feature", "test", "statistic", "p-value", "PSI", "drifted"], rows)


def _released(report: dict[str, Any] | None, platform: str) -> dict[str, Any] | None:
    facts = ((report or {}).get("platforms") or {}).get(platform)
    if not isinstance(facts, dict):
        return None
    variant = (facts.get("variants") or {}).get(facts.get("selected")) or {}
    picked = {"released variant": facts.get("selected")}
    picked |= {k: variant.get(k) for k in ("size_bytes", "accuracy", "agreement_with_keras") if k in variant}
    for tier, numbers in (variant.get("estimates") or {}).items():
        if isinstance(numbers, dict):
            picked |= {f"{tier} {k}": numbers[k] for k in ("p95_ms", "energy_mj") if k in numbers}
    return picked


def _footprint_summary(content: dict[str, Any], old: dict[str, Any] | None, label: str) -> str | None:
    """A footprint report (platforms with a selected variant): what ships per platform, vs production."""
    platforms = content.get("platforms")
    if not isinstance(platforms, dict):
        return None
    return "\n\n".join(f"**{platform}**\n\n" + comparison(_released(content, platform) or {},
                                                          _released(old, platform), label)
                         for platform in platforms)


def _summary(content: Any, old: dict[str, Any] | None, label: str) -> str | None:
    """A short view of a report whose shape is known; None means render it generically only."""
    if not isinstance(content, dict):
        return None
    return _drift_summary(content, label) or _footprint_summary(content, old, label)


def _cell(new: Any, old: Any) -> str:
    delta = _delta(new, old)
    return f"{_fmt(new)} ({delta})" if delta else _fmt(new)


def _group_tables(facts: Any, old: Any, label: str) -> str | None:
    """One sensitive feature: its gap metrics vs production, then one row per group."""
    if not isinstance(facts, dict) or not isinstance(facts.get("groups"), dict):
        return None
    gaps = {k: v for k, v in facts.items() if k != "groups" and _is_number(v)}
    old = old if isinstance(old, dict) else {}
    old_groups = old.get("groups") if isinstance(old.get("groups"), dict) else {}
    groups = {g: m for g, m in facts["groups"].items() if isinstance(m, dict)}
    columns = sorted({k for m in groups.values() for k, v in m.items() if _is_number(v)},
                     key=lambda k: (k != "count", k))
    rows = [[f"`{g}`", *(_cell(m.get(c), (old_groups.get(g) or {}).get(c)) for c in columns)] for g, m in groups.items()]
    by_group = _table(["group", *columns], rows)
    return (comparison(gaps, {k: old.get(k) for k in gaps} if old else None, label) + "\n\n"
            + f"Per group (Δ vs {label}):\n\n{by_group}")


class _Report:
    def __init__(self, ctx: ReportContext):
        self.ctx, self.new, self.old = ctx, ctx.candidate, ctx.production
        self.label = f"production v{self.old.version}" if self.old else "production (none yet)"

    def link(self, name: str) -> str:
        return f"[`{name}`]({self.ctx.link_base}{self.new.path}/{name})"

    def old_report(self, name: str) -> Any:
        return self.old.reports.get(name) if self.old else None

    def header(self) -> str:
        lineage, gates = self.new.manifest.get("lineage", {}), self.new.metrics.get("gates", [])
        passed = sum(1 for g in gates if isinstance(g, dict) and g.get("passed"))
        replaces = f"replaces **v{self.old.version}**" if self.old else "first production release"
        cards = sorted(n for n in self.new.sizes if "card" in n.lower() and n.endswith((".md", ".html", ".json")))
        rows = [["release folder", f"`{self.new.path}/`"], ["signature", f"verified with {self.ctx.signer}"],
                ["gates", f"{passed}/{len(gates)} passed"],
                ["model card", ", ".join(self.link(c) for c in cards) or NOT_AVAILABLE],
                ["rollout", " → ".join(f"{s.percent}%" for s in self.ctx.deployment.rollout.stages)]]
        if lineage.get("git_dirty"):
            rows.append(["⚠ code", "built from a working tree with uncommitted changes"])
        return "\n".join([f"# Release {lineage.get('model_name', '?')} v{self.new.version}", "",
                          f"Proposes **v{self.new.version}** for production ({replaces}). Merging changes "
                          "`deploy/production.yaml`; CI then runs `mobile-mlops promote`.", "",
                          _table(["", ""], rows)])

    def lineage(self) -> str:
        lineage = self.new.manifest.get("lineage", {})
        rows = [[f"data `{path}`", f"md5 `{md5}`"] for path, md5 in lineage.get("data_md5", {}).items()]
        rows += [["raw dataset", f"md5 `{lineage.get('raw_dataset_md5', '?')}`"],
                 ["code", f"commit `{lineage.get('git_commit', '?')}`" + (" (dirty)" if lineage.get("git_dirty") else "")],
                 ["params", f"sha256 `{lineage.get('params_sha256', '?')}`"],
                 ["MLflow", f"run `{lineage.get('mlflow_run_id', '?')}`, model version {self.new.version}"],
                 ["created", _fmt(self.new.manifest.get("created_at"))]]
        return "## Lineage\n\n" + _table(["", ""], rows)

    def gates(self) -> str:
        gates = [g for g in self.new.metrics.get("gates", []) if isinstance(g, dict)]
        rows = [[_fmt(g.get("name")), _fmt(g.get("measured")), _fmt(g.get("threshold")),
                 "✅ pass" if g.get("passed") else "❌ FAIL", _fmt(g.get("detail"))] for g in gates]
        body = _table(["gate", "measured", "threshold", "verdict", "why"], rows) if rows else NOT_AVAILABLE
        return "## Gates\n\n" + body

    def _split_metrics(self, footprint: bool) -> dict[str, Any]:
        def is_size(key: str) -> bool:
            return any(word in key for word in ("size", "bytes", "op_", "ops"))

        metrics = {k: v for k, v in flatten({k: v for k, v in self.new.metrics.items() if k != "gates"}).items()
                   if _is_number(v)}
        return {k: v for k, v in metrics.items() if is_size(k) == footprint}

    def _metric_table(self, footprint: bool) -> str:
        old = flatten({k: v for k, v in self.old.metrics.items() if k != "gates"}) if self.old else None
        rows = [[f"`{k}`", _fmt(v), _fmt(old.get(k)) if old is not None else "–",
                 _delta(v, old.get(k)) if old is not None else ""] for k, v in self._split_metrics(footprint).items()]
        return _table(["", "candidate", self.label, "Δ"], rows) if rows else NOT_AVAILABLE

    def metrics(self) -> str:
        return "## Metrics vs production\n\n" + self._metric_table(footprint=False)

    def fairness(self) -> str:
        parts = ["## Fairness by group"]
        groups = (self.new.reports.get("evaluation.json") or {}).get("groups")
        old_groups = (self.old_report("evaluation.json") or {}).get("groups") if self.old else None
        if isinstance(groups, dict):
            for feature, facts in groups.items():
                old = (old_groups or {}).get(feature) if isinstance(old_groups, dict) else None
                parts.append(f"### `{feature}`\n\n" + (_group_tables(facts, old, self.label)
                                                        or comparison(facts, old, self.label)))
        parts += self.named_reports("fairness")
        return "\n\n".join(parts if len(parts) > 1 else parts + [NOT_AVAILABLE])

    def footprint(self) -> str:
        parts = ["## Footprint and cost", "### Model files\n\n" + self._metric_table(footprint=True)]
        extra = self.named_reports("footprint")
        names = " ".join(self.matching("footprint"))
        if "cost" not in names:
            extra.append("### Cost\n\n" + NOT_AVAILABLE)
        return "\n\n".join(parts + extra)

    def drift(self) -> str:
        found = self.named_reports("drift")
        return "\n\n".join(["## Drift"] + (found or [NOT_AVAILABLE]))

    def matching(self, section: str) -> list[str]:
        words = SECTIONS[section]
        return [n for n in sorted(self.new.reports) if n not in SKIPPED and n != "evaluation.json"
                and any(w in n.lower() for w in words)]

    def named_reports(self, section: str) -> list[str]:
        parts = []
        for name in self.matching(section):
            content, old = self.new.reports.get(name), self.old_report(name)
            summary = _summary(content, old if isinstance(old, dict) else None, self.label)
            full = self.render_json(name)
            if summary:
                full = f"{summary}\n\n<details><summary>all values</summary>\n\n{full}\n\n</details>"
            parts.append(f"### {self.link(name)}\n\n{full}")
        return parts

    def render_json(self, name: str) -> str:
        content = self.new.reports.get(name)
        if not isinstance(content, dict):
            return NOT_AVAILABLE + " (not a JSON object)"
        old = self.old_report(name)
        return comparison(content, old if isinstance(old, dict) else None, self.label)

    def others(self) -> str:
        claimed = {n for s in SECTIONS for n in self.matching(s)} | SKIPPED | {"evaluation.json"}
        rest = [n for n in sorted(self.new.reports) if n not in claimed]
        parts = [f"### {self.link(n)}\n\n<details><summary>values</summary>\n\n{self.render_json(n)}\n\n</details>"
                 for n in rest]
        return "\n\n".join(["## Other reports"] + (parts or ["_none_"]))

    def rollout(self) -> str:
        deployment = self.ctx.deployment
        stages = _table(["stage", "share of users", "soak before next"],
                        [[s.name, f"{s.percent}%", f"{s.min_hours} h"] for s in deployment.rollout.stages])
        guards = _table(["guardrail", "limit"], [[f"`{k}`", _fmt(v)] for k, v in
                                                 deployment.rollout.guardrails.model_dump().items()])
        return f"## Rollout (`deploy/production.yaml`)\n\n{stages}\n\n{guards}"

    def files(self) -> str:
        hashes = self.ctx.deployment.artifacts
        rows = [[f"`{n}`", f"{self.new.sizes.get(n, 0):,}", f"`{hashes.get(n, '')[:16]}…`"] for n in sorted(hashes)]
        return "## Files\n\n<details><summary>" + f"{len(rows)} files</summary>\n\n" + \
            _table(["file", "bytes", "sha256"], rows) + "\n\n</details>"


def render_report(ctx: ReportContext) -> str:
    """The whole Markdown body; deterministic for the same inputs (no clock), so re-runs compare equal."""
    report = _Report(ctx)
    sections = [report.header(), report.lineage(), report.gates(), report.metrics(), report.fairness(),
                report.footprint(), report.drift(), report.others(), report.rollout(), report.files()]
    body = "\n\n".join(sections) + "\n"
    if len(body) > MAX_CHARS:
        body = body[:MAX_CHARS] + "\n\n_Report truncated; the full values are in the release folder._\n"
    return body
