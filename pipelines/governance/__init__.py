"""Governance domain: per-group fairness, the mitigation trade-off, feature importance, the model card."""
