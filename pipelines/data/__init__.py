"""Data domain: loading, Great Expectations validation, drift against the reference release, splits, features."""
