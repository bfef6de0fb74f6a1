"""After release: fleet telemetry, canary and A/B analysis, observed FinOps, production drift, GitOps actions."""
