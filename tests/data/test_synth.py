"""Synthetic scale data keeps the real data's shape: same columns, ranges, categories, whole numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.data.synth import synthesize


def test_resampled_rows_keep_ranges_categories_and_integers():
    real = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0], "hours": [10.5, 20.25, 30.0, 40.75],
                         "sex": pd.array(["Male", "Female", "Male", "Female"], dtype="string")})
    fake = synthesize(real, 1000, noise=0.1, seed=1)
    assert len(fake) == 1000 and list(fake.columns) == list(real.columns)
    assert fake["age"].between(20, 50).all() and np.all(fake["age"] % 1 == 0)
    assert fake["hours"].between(10.5, 40.75).all() and (fake["hours"] % 1 != 0).any()
    assert set(fake["sex"]) == {"Male", "Female"}
    assert not fake["age"].isin(real["age"]).all()  # noise was added
    pd.testing.assert_frame_equal(fake, synthesize(real, 1000, noise=0.1, seed=1))  # seeded
