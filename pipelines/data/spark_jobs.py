"""The data steps' work as Spark jobs (`engine: spark`): the same rules as the local engine, so the outputs agree
row for row. Final tables come back to the driver and are written by the same pandas writer as the local engine
(pipelines.data.steps), in the same row order: so the Parquet bytes, and the DVC md5 (the data version), are equal."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from pipelines.core.config import DataConfig, SplitConfig
from pipelines.data.rowsplit import INTERNAL, ORIGIN, ROW, SPLITS, TEST, TRAIN, VALIDATION

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

HEX_DIGITS = 13  # rowsplit.unit_hash: the first 13 hex digits of the md5 (52 bits, exact in a double)


def row_key(data: DataConfig) -> Column:
    """rowsplit.row_keys as a Spark column: the data.key column's text ('' when missing), else `origin:row`."""
    from pyspark.sql import functions as F

    if data.key is not None:
        return F.coalesce(F.col(data.key).cast("string"), F.lit(""))
    return F.concat(F.col(ORIGIN), F.lit(":"), F.col(ROW).cast("string"))


def unit_hash(key: Column, seed: int) -> Column:
    """rowsplit.unit_hash in Spark SQL: md5 of `seed:key` (UTF-8), its first 13 hex digits as a number / 16**13."""
    from pyspark.sql import functions as F

    digits = F.substring(F.md5(F.concat(F.lit(f"{seed}:"), key)), 1, HEX_DIGITS)
    return F.conv(digits, 16, 10).cast("bigint").cast("double") / F.lit(float(16**HEX_DIGITS))


def split_code(data: DataConfig, config: SplitConfig) -> Column:
    """rowsplit.assign in Spark SQL: each row's split code (TRAIN, VALIDATION, TEST)."""
    from pyspark.sql import functions as F

    u = unit_hash(row_key(data), config.seed)
    if data.test_source is None:
        return (F.when(u < F.lit(config.test_size), TEST)
                .when(u < F.lit(config.test_size + (1 - config.test_size) * config.validation_size), VALIDATION)
                .otherwise(TRAIN))
    return (F.when(F.col(ORIGIN) == "test_source", TEST).when(u < F.lit(config.validation_size), VALIDATION)
            .otherwise(TRAIN))


def file_order(frame: DataFrame) -> DataFrame:
    """Rows in the local engine's order: the source's rows, then the shipped test file's, each by row number."""
    from pyspark.sql import functions as F

    return frame.orderBy(F.when(F.col(ORIGIN) == "source", 0).otherwise(1), F.col(ROW))


def to_pandas(frame: DataFrame, like: dict[str, str]) -> pd.DataFrame:
    """A Spark result on the driver (through Arrow), with the dtypes the local engine's frame has (`like`)."""
    table = frame.toArrow()
    result = table.to_pandas()
    return result.astype({name: dtype for name, dtype in like.items() if name in result.columns})


def splits(frame: DataFrame, data: DataConfig, config: SplitConfig, like: dict[str, str]) -> dict[str, pd.DataFrame]:
    """The train / validation / test tables, each in file order, without the bookkeeping columns (split.take's)."""
    from pyspark.sql import functions as F

    coded = frame.withColumn("_split", split_code(data, config))
    kept = [c for c in frame.columns if c not in INTERNAL]
    return {name: to_pandas(file_order(coded.filter(F.col("_split") == code)).select(*kept), like)
            for code, name in enumerate(SPLITS)}
