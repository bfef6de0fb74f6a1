"""Fairness benchmark over many data sets (issue 25): baselines and the real pipeline on the same test rows."""
