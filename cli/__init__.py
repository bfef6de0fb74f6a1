"""The mobile-mlops command line: run, stage, dvc generate, release commands, lineage check."""
