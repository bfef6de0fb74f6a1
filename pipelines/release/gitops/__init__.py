"""GitOps: release branches and pull requests, deploy/production.yaml, promotion, rollback, lineage checks.

The repository is the desired state: a model reaches production only through a reviewed pull request
that adds its signed release folder and changes deploy/production.yaml; going back is a revert.
"""
