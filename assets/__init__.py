"""Dagster glue: thin assets over pipelines.steps, checks, resources and the one Definitions."""
