"""FinOps domain: hybrid offload policy, cost per variant and of the release, placement, budgets, endpoint."""
