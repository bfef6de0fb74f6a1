"""Load a CSV or Parquet source into a typed frame: the raw dataset."""
from __future__ import annotations

import bz2
import csv
import gzip
import lzma
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.core.config import DataConfig, column_name
from pipelines.core.errors import PipelineError
from pipelines.data.numbers import refuse_numeric_looking, refuse_separated, separated_example, strip_thousands
from pipelines.data.partitions import accepted_files
from pipelines.data.rowsplit import INTERNAL, ORIGIN, ROW

CSV_DIALECT: dict[str, Any] = {"delimiter": ",", "quotechar": '"', "skipinitialspace": True}  # as read_csv below parses
_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_UNSCANNED = {".zip", ".zst", ".tar", ".tgz"}  # other compressions pandas reads: parsed without the scan


def normalize_label(values: pd.Series) -> pd.Series:
    """Trim spaces and one trailing full stop (UCI test files write `>50K.`)."""
    return values.astype("string").str.strip().str.removesuffix(".")


def positive_mask(values: pd.Series, positive: str | bool | int | float) -> pd.Series:
    """Which labels equal `positive` by value, after normalization: text as text, numbers numerically
    (1 matches "1" and "1.0"), booleans as true/false or 1/0 in any case."""
    text = normalize_label(values)
    if isinstance(positive, bool):
        matches = text.str.lower().isin(["true", "1", "1.0"] if positive else ["false", "0", "0.0"])
    elif isinstance(positive, int | float):
        matches = pd.to_numeric(text, errors="coerce") == positive
    else:
        matches = text == normalize_label(pd.Series([positive])).iloc[0]
    return matches.fillna(False).astype(bool)


_MAGIC = {b"PAR1": ".parquet", b"\x1f\x8b": ".gz", b"BZh": ".bz2", b"\xfd7zXZ": ".xz"}


def sniffed_format(path: Path) -> str:
    """The file's real format from its first bytes (a Parquet file named .csv is read as Parquet), else its suffix."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), path.suffix)


_NOT_TABLES = {b"PK\x03\x04": "a ZIP archive (unzip it and point at the file inside)",
               b"SQLite format 3": "a SQLite database", b"\xff\xfe": "UTF-16 text, not UTF-8 (save it as UTF-8)",
               b"\xfe\xff": "UTF-16 text, not UTF-8 (save it as UTF-8)", b"\x89HDF": "an HDF5 file",
               b"%PDF": "a PDF document"}


def not_a_table(path: Path) -> str | None:
    """What the file is when it is neither CSV (plain or compressed) nor Parquet, from its first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    known = next((what for magic, what in _NOT_TABLES.items() if head.startswith(magic)), None)
    if known is None and sniffed_format(path) not in _MAGIC.values() and b"\x00" in head:
        known = "binary, not text"
    return known


def _open(path: Path, mode: str = "rt"):
    opener = _OPENERS.get(sniffed_format(path), open)
    return opener(path, mode, encoding="utf-8", newline="") if "t" in mode else opener(path, mode)


def check_fields(path: Path, config: DataConfig, key: str) -> None:
    """Every row has as many fields as there are column names.

    pandas reads a row with too few fields silently (padded with nulls; one that lost its label is then
    dropped), so a ragged file is caught here, naming the first bad line.
    """
    expected, origin = (len(config.columns), "data.columns") if config.columns else (None, "the header")
    with _open(path) as handle:
        reader = csv.reader(handle, **CSV_DIALECT)
        for row in reader:
            if len(row) == expected:  # the common case first: a full row needs no other look
                continue
            if not any(field.strip() for field in row):  # blank lines are skipped, as pandas does
                continue
            if len(row) == 1 and row[0].startswith("|"):  # a UCI comment line (adult.test starts with one)
                continue
            if expected is None:
                expected = len(row)
                if not config.columns:
                    renamed_header([field.strip() for field in row], config, path, key)
            elif len(row) != expected:
                raise PipelineError(f"data.{key}: {path.name} is not a readable table: line {reader.line_num} "
                                    f"has {len(row)} fields, expected {expected} ({origin})")


def renamed_header(names: list[str], config: DataConfig, path: Path, key: str) -> list[str]:
    """The column names after `data.rename` (`old: new`, or `old#k: new` for the k-th column named old).

    pandas would rename a repeated column (`age.1`) and the pipeline would train on both: a name still repeated
    after the renaming is refused, naming the rename that fixes it.
    """
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        positional = f"{name}#{seen[name]}"
        result.append(config.rename.get(positional, config.rename.get(name, name) if seen[name] == 1 else name))
    known = set(names) | {f"{n}#{k}" for n in seen for k in range(1, seen[n] + 1)}
    unknown = [old for old in config.rename if old not in known]
    if unknown:
        raise PipelineError(f"data.rename: column '{unknown[0]}' is not in {path.name}")
    repeated = sorted({name for name in result if result.count(name) > 1})
    if repeated:
        first = repeated[0]
        raise PipelineError(f"data.{key}: {path.name} has repeated column names: {', '.join(repeated)} (rename "
                            f"the later ones by position, e.g. data.rename: {{\"{first}#2\": {first}_2}})")
    return result


def _header(path: Path) -> list[str]:
    """The header's names: the first line that is neither blank nor a UCI comment."""
    with _open(path) as handle:
        for row in csv.reader(handle, **CSV_DIALECT):
            if any(field.strip() for field in row) and not (len(row) == 1 and row[0].startswith("|")):
                return [field.strip() for field in row]
    return []


def _fields(line: str) -> list[str]:
    """One line's fields as the reader splits them; a line csv cannot parse (a bare CR) split on commas."""
    try:
        return next(csv.reader([line], **CSV_DIALECT), [])
    except csv.Error:
        return line.replace("\r", "").split(",")


def _undecodable(path: Path, config: DataConfig) -> str:
    """Line, column and value of the first byte that is not UTF-8 (read again, on the error path only)."""
    with _open(path, "rb") as handle:
        raw = handle.read()
    try:
        raw.decode("utf-8")
        return "unknown position"
    except UnicodeDecodeError as exc:
        start = exc.start
    line_start = raw.rfind(b"\n", 0, start) + 1
    before = _fields(raw[line_start:start].decode("utf-8", "replace")) or [""]
    header = raw[: raw.find(b"\n")].decode("utf-8", "replace")
    names = config.columns or _fields(header)
    index = len(before) - 1
    column = f", column '{names[index].strip()}'" if index < len(names) else ""
    line = raw.count(b"\n", 0, start) + 1
    return f"line {line}{column}, byte 0x{raw[start]:02x}"


def read_table(path: Path, config: DataConfig, key: str) -> pd.DataFrame:
    """Read one CSV/Parquet file with every value as text; problems name the file."""
    return next(read_table_batches(path, config, key, None))


def read_table_batches(path: Path, config: DataConfig, key: str, batch_rows: int | None) -> Iterator[pd.DataFrame]:
    """One CSV/Parquet file as text frames of at most `batch_rows` rows (None: the whole file as one frame), parsed
    by the same reader either way; problems name the file."""
    if not path.is_file():
        raise PipelineError(f"data.{key}: file not found: {path}")
    kind, other = sniffed_format(path), not_a_table(path)
    if other:
        raise PipelineError(f"data.{key}: {path.name} is {other}; expected CSV (plain or gzip/bz2/xz) or Parquet")
    seen = 0
    try:
        if kind == ".parquet":
            chunks = _parquet_chunks(path, batch_rows)
        else:
            if kind not in _UNSCANNED:
                check_fields(path, config, key)
            names = config.columns
            if names is None and config.rename and kind not in _UNSCANNED:
                names = renamed_header(_header(path), config, path, key)
            read = pd.read_csv(
                path,
                compression={".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}.get(kind, "infer"),
                header=None if config.columns else 0,
                names=names,
                dtype="string",
                skipinitialspace=True,
                na_values=[*config.na_values, ""],  # a blank field is missing, not text
                keep_default_na=False,
                encoding="utf-8",
                quoting=csv.QUOTE_MINIMAL,
                on_bad_lines="error",
                chunksize=batch_rows,
            )
            chunks = iter([read]) if batch_rows is None else iter(read)
        for frame in chunks:
            if not isinstance(frame.index, pd.RangeIndex):  # pandas turns extra leading fields into an index
                raise PipelineError(f"data.{key}: {path.name} has rows with more fields than there are column names")
            frame.columns = [str(c).strip() for c in frame.columns]
            if config.rename and (kind == ".parquet" or config.columns):  # a CSV header was renamed as it was read
                frame.columns = renamed_header(list(frame.columns), config, path, key)
            if frame.empty:
                continue
            seen += len(frame)
            yield frame.reset_index(drop=True) if seen > len(frame) else frame
    except pd.errors.EmptyDataError as exc:
        raise PipelineError(f"data.{key}: {path.name} is empty") from exc
    except UnicodeDecodeError as exc:
        raise PipelineError(f"data.{key}: {path.name} is not UTF-8 text ({_undecodable(path, config)})") from exc
    except (pd.errors.ParserError, csv.Error) as exc:
        raise PipelineError(f"data.{key}: {path.name} is not a readable table ({str(exc).strip()})") from exc
    except EOFError as exc:
        raise PipelineError(f"data.{key}: {path.name} is cut short (its compressed stream ends early)") from exc
    except pa.ArrowException as exc:
        raise PipelineError(f"data.{key}: {path.name} is not a readable Parquet file ({str(exc)[:200]})") from exc
    except (OSError, ValueError, lzma.LZMAError) as exc:
        raise PipelineError(f"data.{key}: cannot read {path.name} ({str(exc)[:200]})") from exc
    if not seen:
        raise PipelineError(f"data.{key}: {path.name} has no data rows")


def _parquet_chunks(path: Path, batch_rows: int | None) -> Iterator[pd.DataFrame]:
    if batch_rows is None:
        yield pd.read_parquet(path).astype("string")
        return
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path, pre_buffer=False)  # as stream.parquet_batches: memory flat over the file
    for batch in handle.iter_batches(batch_size=batch_rows):
        yield pa.Table.from_batches([batch], schema=handle.schema_arrow).to_pandas().astype("string")


def check_columns(frame: pd.DataFrame, config: DataConfig, source: str) -> None:
    """Every column params name must exist in the data."""
    if config.label not in frame.columns:
        raise PipelineError(f"data.label: column '{config.label}' is not in {source}")
    named = {
        "sensitive_features": config.sensitive_features,
        "categorical": config.categorical,
        "numeric": config.numeric,
        "drop": config.drop,
        "pii": config.pii,
        "key": [config.key] if config.key else [],
    }
    for key, columns in named.items():
        for column in columns:
            if column not in frame.columns:
                raise PipelineError(f"data.{key}: column '{column}' is not in {source}")
    overlap = set(config.categorical) & set(config.numeric)
    if overlap:
        raise PipelineError(f"data.numeric: column '{sorted(overlap)[0]}' is also listed as categorical")


_PROBE = 200  # rows looked at before a whole text column is parsed as numbers


def _has_text(values: pd.Series) -> bool:
    """Whether any value is not a number: parsing a few rows tells a text column apart without parsing it all."""
    return bool((values.notna() & pd.to_numeric(values, errors="coerce").isna()).any())


def type_columns(frame: pd.DataFrame, config: DataConfig, max_categories: int | None = None,
                 schema: dict[str, str] | None = None) -> pd.DataFrame:
    """Numeric columns to float64, the rest to text; listed types win over inference. Empties `frame`: each raw
    column is dropped once its typed copy exists, so the raw and the typed table never coexist whole. Numbers
    with thousands separators are parsed (data.thousands) or refused; so is a text column with more than
    `max_categories` values that looks numeric. `schema` (column -> numeric/text, from the first batch) fixes
    the types of later batches: a column of numbers there that holds text later is refused, naming it."""
    typed, index = {}, frame.index
    for column in list(frame.columns):
        values = frame.pop(column)
        if column == ROW:
            typed[column] = values
            continue
        sensitive = column in config.sensitive_features and column not in config.numeric
        if column in (config.label, ORIGIN, config.key) or column in config.categorical or sensitive:
            typed[column] = values.str.strip()  # a sensitive 0/1 stays `1` (not `1.0`) in every report and gate
            continue
        if config.thousands:
            values = strip_thousands(values.str.strip(), config.thousands)
        fixed = (schema or {}).get(column)
        if fixed == TEXT or (fixed is None and column not in config.numeric and _has_text(values.head(_PROBE))):
            typed[column] = _text(column, values, max_categories)  # a value that is not a number: text
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & numbers.isna()
        if column in config.numeric and bad.any():
            example = values[bad].iloc[0]
            raise PipelineError(f"data.numeric: column '{column}' has non-numeric value {example!r}")
        if fixed == NUMERIC:
            if bad.any():
                raise PipelineError(f"data.source: column '{column}' holds numbers in the first batch but "
                                    f"{values[bad].iloc[0]!r} later (list it in data.categorical)")
            typed[column] = numbers.astype("float64")
            continue
        typed[column] = (numbers.astype("float64") if not bad.any() and values.notna().any()
                         else _text(column, values, max_categories))
    return pd.DataFrame(typed, index=index)


NUMERIC, TEXT = "numeric", "text"


def column_types(frame: pd.DataFrame) -> dict[str, str]:
    """Each typed column's kind (numeric or text): what later batches are typed to."""
    return {c: NUMERIC if pd.api.types.is_numeric_dtype(v) else TEXT for c, v in frame.items() if c not in INTERNAL}


def _text(column: str, values: pd.Series, max_categories: int | None) -> pd.Series:
    """A column that holds text: refused when it is numbers with separators, or numeric-looking and huge."""
    if separated_example(values.head(_PROBE)) or not _has_text(values.head(_PROBE)):
        refuse_separated(column, values)
    if max_categories is not None:
        refuse_numeric_looking(column, values, max_categories)
    return values.str.strip()


def read_source(source: Path, config: DataConfig, key: str) -> pd.DataFrame:
    """The source as text: one file, or a folder's accepted daily files concatenated (oldest day first)."""
    if not source.is_dir():
        return read_table(source, config, key)
    files = accepted_files(source)
    days = [read_table(path, config, key) for path in files]
    columns = list(days[0].columns)
    for path, day in zip(files, days, strict=True):
        if list(day.columns) != columns:
            raise PipelineError(f"data.{key}: {path.name} has other columns than the first accepted day")
    return pd.concat(days, ignore_index=True)


def numbered(frame: pd.DataFrame, origin: str, first: int = 0) -> pd.DataFrame:
    """The rows with their file (`origin`) and 0-based data-row number from `first`: the split's row key."""
    return frame.assign(**{ORIGIN: origin, ROW: np.arange(first, first + len(frame), dtype=np.int64)})


def load_dataset(config: DataConfig, source: Path, test_source: Path | None = None,
                 key: str = "source", max_categories: int | None = None) -> pd.DataFrame:
    """The raw dataset in memory: typed columns, normalized labels, PII and dropped columns removed (nulls kept).
    The raw_dataset step streams the same functions over batches (pipelines.data.batches)."""
    parts = [numbered(read_source(source, config, key), "source")]
    if test_source is not None:
        test = read_table(test_source, config, "test_source")
        if list(test.columns) != list(parts[0].columns[:-len(INTERNAL)]):
            raise PipelineError("data.test_source: columns differ from data.source")
        parts.append(numbered(test, "test_source"))
    frame = pd.concat(parts, ignore_index=True)
    del parts  # else the raw text outlives its typed copy (type_columns frees it column by column)
    frame = label_rows(frame, config, source.name, key)
    labels = frame[config.label]
    check_labels(sorted(labels.dropna().unique()), bool(positive_mask(labels, config.positive_label).any()), config)
    return type_columns(frame, config, max_categories).reset_index(drop=True)


def label_rows(frame: pd.DataFrame, config: DataConfig, source_name: str, key: str = "source") -> pd.DataFrame:
    """One batch of text rows: columns checked, dropped and PII columns removed, labels normalized, unlabelled
    rows removed (not yet typed)."""
    check_columns(frame, config, source_name)
    frame = frame.drop(columns=[*config.drop, *config.pii])
    for column in frame.columns:
        if column not in (config.label, ORIGIN, ROW):
            try:
                column_name(column)
            except ValueError as exc:
                shown = column if len(column) <= 40 else column[:39] + "…"
                raise PipelineError(f"data.{key}: column {shown!r} {exc} (drop it with data.drop, or rename "
                                    "it)") from None
    frame[config.label] = normalize_label(frame[config.label])
    labelled = frame[config.label].notna() & (frame[config.label] != "")
    if not labelled.all():  # a filter copies every column: only when a row goes
        frame = frame[labelled]
    return frame


def check_labels(values: list[str], any_positive: bool, config: DataConfig) -> None:
    """The whole data's label values (sorted, distinct) make a binary label with the positive one among them."""
    if not values:
        raise PipelineError(f"data.label: column '{config.label}' has no values")
    if not any_positive:
        raise PipelineError(f"data.positive_label: {config.positive_label!r} never occurs in column '{config.label}' "
                            f"(seen: {', '.join(values[:5])})")
    if len(values) != 2:
        shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
        count = f"{len(values)} distinct value{'s' if len(values) != 1 else ''}"
        raise PipelineError(f"data.label: column '{config.label}' has {count} ({shown}); "
                            "a binary label needs exactly two")
