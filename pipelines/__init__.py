"""mobile-mlops pipeline logic: plain, typed Python with no orchestration imports."""
