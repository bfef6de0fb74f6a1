"""The release pull request's body: a Markdown report of whatever the release folder holds.

Known reports get their own sections (gates, metrics, fairness, footprint and cost, drift); any other
JSON report is rendered generically, so reports added later show up without changes here. Every number
is compared with the production release where it has the same one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.paths import (
    COREML_REPORT,
    FEATURE_SPEC_FILE,
    RELEASE_PROFILE_FILE,
    TFLITE_REPORT,
)
from pipelines.core.safe_text import md_text, safe_markdown
from pipelines.release.gitops.tables import (
    NOT_AVAILABLE,
    comparison,
    delta,
    flatten,
    fmt,
    group_tables,
    is_number,
    summarize,
    table,
)
from pipelines.release.gitops.views import ReleaseView
from pipelines.release_format.deployment import Deployment

MARKER = "<!-- mobile-mlops:release-report -->"  # marks the one report comment on a pull request
MAX_CHARS = 60000  # GitHub rejects bodies over 65,536 characters
SKIPPED = {FEATURE_SPEC_FILE, RELEASE_PROFILE_FILE, Path(TFLITE_REPORT).name, Path(COREML_REPORT).name}  # in metrics
SECTIONS = {"fairness": ("fairness",), "footprint": ("footprint", "cost", "latency", "benchmark", "energy",
                                                   "offload", "size"), "drift": ("drift",)}


@dataclass
class ReportContext:
    candidate: ReleaseView
    production: ReleaseView | None
    deployment: Deployment
    signer: str  # which trusted key verified the signature, e.g. keys/release-signing.pub (sha256 1a2b…)
    link_base: str = ""  # prefix for links to files on the branch ("" = relative links)


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
                          table(["", ""], rows)])

    def lineage(self) -> str:
        lineage = self.new.manifest.get("lineage", {})
        rows = [[f"data `{md_text(path)}`", f"md5 `{md_text(md5)}`"]
                for path, md5 in lineage.get("data_md5", {}).items()]
        rows += [["raw dataset", f"md5 `{lineage.get('raw_dataset_md5', '?')}`"],
                 ["code",
                  f"commit `{lineage.get('git_commit', '?')}`" + (" (dirty)" if lineage.get("git_dirty") else "")],
                 ["params", f"sha256 `{lineage.get('params_sha256', '?')}`"],
                 ["MLflow", f"run `{lineage.get('mlflow_run_id', '?')}`, model version {self.new.version}"],
                 ["created", fmt(self.new.manifest.get("created_at"))]]
        return "## Lineage\n\n" + table(["", ""], rows)

    def gates(self) -> str:
        gates = [g for g in self.new.metrics.get("gates", []) if isinstance(g, dict)]
        rows = [[fmt(g.get("name")), fmt(g.get("measured")), fmt(g.get("threshold")),
                 "✅ pass" if g.get("passed") else "❌ FAIL", fmt(g.get("detail"))] for g in gates]
        body = table(["gate", "measured", "threshold", "verdict", "why"], rows) if rows else NOT_AVAILABLE
        return "## Gates\n\n" + body

    def _split_metrics(self, footprint: bool) -> dict[str, Any]:
        def is_size(key: str) -> bool:
            return any(word in key for word in ("size", "bytes", "op_", "ops"))

        metrics = {k: v for k, v in flatten({k: v for k, v in self.new.metrics.items() if k != "gates"}).items()
                   if is_number(v)}
        return {k: v for k, v in metrics.items() if is_size(k) == footprint}

    def _metric_table(self, footprint: bool) -> str:
        old = flatten({k: v for k, v in self.old.metrics.items() if k != "gates"}) if self.old else None
        rows = [[f"`{k}`", fmt(v), fmt(old.get(k)) if old is not None else "–",
                 delta(v, old.get(k)) if old is not None else ""] for k, v in self._split_metrics(footprint).items()]
        return table(["", "candidate", self.label, "Δ"], rows) if rows else NOT_AVAILABLE

    def metrics(self) -> str:
        return "## Metrics vs production\n\n" + self._metric_table(footprint=False)

    def fairness(self) -> str:
        parts = ["## Fairness by group"]
        groups = (self.new.reports.get("evaluation.json") or {}).get("groups")
        old_groups = (self.old_report("evaluation.json") or {}).get("groups") if self.old else None
        if isinstance(groups, dict):
            for feature, facts in groups.items():
                old = (old_groups or {}).get(feature) if isinstance(old_groups, dict) else None
                parts.append(f"### `{feature}`\n\n" + (group_tables(facts, old, self.label)
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
            short = summarize(content, old if isinstance(old, dict) else None, self.label)
            full = self.render_json(name)
            if short:
                full = f"{short}\n\n<details><summary>all values</summary>\n\n{full}\n\n</details>"
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
        stages = table(["stage", "share of users", "soak before next"],
                        [[s.name, f"{s.percent}%", f"{s.min_hours} h"] for s in deployment.rollout.stages])
        guards = table(["guardrail", "limit"], [[f"`{k}`", fmt(v)] for k, v in
                                                 deployment.rollout.guardrails.model_dump().items()])
        return f"## Rollout (`deploy/production.yaml`)\n\n{stages}\n\n{guards}"

    def files(self) -> str:
        hashes = self.ctx.deployment.artifacts
        rows = [[f"`{n}`", f"{self.new.sizes.get(n, 0):,}", f"`{hashes.get(n, '')[:16]}…`"] for n in sorted(hashes)]
        return "## Files\n\n<details><summary>" + f"{len(rows)} files</summary>\n\n" + \
            table(["file", "bytes", "sha256"], rows) + "\n\n</details>"


def render_report(ctx: ReportContext) -> str:
    """The whole Markdown body; deterministic for the same inputs (no clock), so re-runs compare equal."""
    report = _Report(ctx)
    sections = [report.header(), report.lineage(), report.gates(), report.metrics(), report.fairness(),
                report.footprint(), report.drift(), report.others(), report.rollout(), report.files()]
    body = safe_markdown("\n\n".join(sections) + "\n")  # whatever a report held: no raw HTML, no script link
    if len(body) > MAX_CHARS:
        body = body[:MAX_CHARS] + "\n\n_Report truncated; the full values are in the release folder._\n"
    return body
