"""Markdown tables for the release report: values, deltas against production, and summaries of report
shapes we know (per-group fairness, drift per feature, footprint per platform)."""
from __future__ import annotations

from typing import Any

from pipelines.core.safe_text import csv_cell, md_text

NOT_AVAILABLE = "_not available_"
MAX_ROWS = 40


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if value == value else "NaN"
    return md_text(csv_cell(value))


def delta(new: Any, old: Any) -> str:
    if not (is_number(new) and is_number(old)):
        return ""
    diff = new - old
    return f"{diff:+d}" if isinstance(diff, int) else f"{diff:+.4f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
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
    rows = [[f"`{md_text(key)}`", fmt(value), fmt(old.get(key)) if old is not None else "–",
             delta(value, old.get(key)) if old is not None else ""] for key, value in new.items()]
    return table(["", "candidate", label, "Δ"], rows) if rows else NOT_AVAILABLE


def drift_summary(content: dict[str, Any], label: str) -> str | None:
    """A drift report (per-feature tests): verdict, reference, and the features by PSI."""
    features = content.get("features")
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        return None
    drifted = content.get("drifted") or []
    head = (f"Drift: **{'yes' if content.get('drift') else 'no'}** (blocking: {fmt(content.get('blocking'))}); "
            f"drifted features: {', '.join(map(md_text, drifted)) or 'none'}; "
            f"reference: {fmt(content.get('reason') or content.get('reference'))}.")
    ranked = sorted(features.items(), key=lambda item: -float(item[1].get("psi") or 0))
    rows = [[f"`{md_text(name)}`", fmt(f.get("test")), fmt(f.get("statistic")), fmt(f.get("p_value")),
             fmt(f.get("psi")),
             "⚠ yes" if f.get("drifted") else "no"] for name, f in ranked]
    return head + "\n\n" + table(["feature", "test", "statistic", "p-value", "PSI", "drifted"], rows)


def released(report: dict[str, Any] | None, platform: str) -> dict[str, Any] | None:
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


def footprint_summary(content: dict[str, Any], old: dict[str, Any] | None, label: str) -> str | None:
    """A footprint report (platforms with a selected variant): what ships per platform, vs production."""
    platforms = content.get("platforms")
    if not isinstance(platforms, dict):
        return None
    return "\n\n".join(f"**{platform}**\n\n" + comparison(released(content, platform) or {},
                                                          released(old, platform), label)
                         for platform in platforms)


def cost_summary(content: dict[str, Any], label: str) -> str | None:
    """A FinOps cost report (cost.json): monthly $ and MB per device against production, budgets, placement."""
    release, change = content.get("release"), content.get("delta_vs_production") or {}
    if not str(content.get("schema", "")).startswith("mobile-mlops/cost-report/") or not isinstance(release, dict):
        return None

    def row(name: str, pair: dict[str, Any] | None, new: Any) -> list[str]:
        pair = pair or {}
        return [name, fmt(new), fmt(pair.get("production")), delta(new, pair.get("production"))]

    rows = [row("serving $/month (downloads + cloud)", change.get("serving_usd"), release.get("serving_usd")),
            ["training $/month", fmt(release.get("training_usd_per_month")), "–", ""],
            ["**total $/month**", fmt(release.get("monthly_usd")), "–", ""]]
    rows += [row(f"{p} MB per device per month", (change.get("device_mb_per_month") or {}).get(p),
                 f.get("device_mb_per_month")) for p, f in (release.get("platforms") or {}).items()]
    rows += [[f"{p} placement", ", ".join(f"{m} {s:.0%}" for m, s in (f.get("mode_shares") or {}).items()), "–", ""]
             for p, f in (release.get("platforms") or {}).items()]
    verdicts = (content.get("budgets") or {}).get("verdicts") or []
    over = [v.get("detail", "") for v in verdicts if not v.get("passed")]
    head = (f"Budgets: {'**over**: ' + '; '.join(over) if over else 'all within'} "
            f"(blocking: {fmt((content.get('budgets') or {}).get('blocking'))}). "
            f"Production figures: {fmt(change.get('reference'))}.")
    return head + "\n\n" + table(["", "candidate", label, "Δ"], rows)


def summarize(content: Any, old: dict[str, Any] | None, label: str) -> str | None:
    """A short view of a report whose shape is known; None means render it generically only."""
    if not isinstance(content, dict):
        return None
    return drift_summary(content, label) or footprint_summary(content, old, label) or cost_summary(content, label)


def cell(new: Any, old: Any) -> str:
    change = delta(new, old)
    return f"{fmt(new)} ({change})" if change else fmt(new)


def group_tables(facts: Any, old: Any, label: str) -> str | None:
    """One sensitive feature: its gap metrics vs production, then one row per group."""
    if not isinstance(facts, dict) or not isinstance(facts.get("groups"), dict):
        return None
    gaps = {k: v for k, v in facts.items() if k != "groups" and is_number(v)}
    old = old if isinstance(old, dict) else {}
    old_groups = old.get("groups") if isinstance(old.get("groups"), dict) else {}
    groups = {g: m for g, m in facts["groups"].items() if isinstance(m, dict)}
    columns = sorted({k for m in groups.values() for k, v in m.items() if is_number(v)},
                     key=lambda k: (k != "count", k))
    rows = [[f"`{md_text(g)}`",
             *(cell(m.get(c), (old_groups.get(g) or {}).get(c)) for c in columns)] for g, m in groups.items()]
    by_group = table(["group", *columns], rows)
    return (comparison(gaps, {k: old.get(k) for k in gaps} if old else None, label) + "\n\n"
            + f"Per group (Δ vs {label}):\n\n{by_group}")
