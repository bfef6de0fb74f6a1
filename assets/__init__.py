"""Dagster glue: thin assets over pipelines.core.step, checks, resources and the one Definitions."""
