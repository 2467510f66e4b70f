"""Prove that DuckDB's own reading of JSON Lines converts exactly as the careful reading.

With ``SMSANALYTICS_DUCKDB_LINES_MIN_BYTES`` set (opt-in, see README "Performance"), a
large clean JSON Lines file is read by DuckDB's parallel reader
(``smsanalytics.readers.lines_sql``); every other file, or one with anything unusual, is
cut into records in Python. This converts the same inputs both ways (DuckDB's reading
offered to every lines file, then to none) and compares what matters: the summary's
counts and reasons, the partitions, every row and column of the dataset, and the rejects
file byte for byte. Prints the differences; exits 1 if there are any.

Usage: python benchmarks/convert_paths.py [--rows N] [--workdir DIR] [--no-enrich] [INPUT ...]
(without inputs: N generated bare payloads, default 1,000,000, with a few bad lines mixed in)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

import smsanalytics
from smsanalytics import dataset as ds
from smsanalytics import readers

_SKIPPED = ("elapsed", "out", "rejects_path", "partitions_written")


def _convert(inputs: Sequence[Path], out: Path, direct: bool, **kwargs: object) -> dict:
    before = readers.DIRECT_MIN_BYTES
    readers.DIRECT_MIN_BYTES = 0 if direct else None
    try:
        summary = smsanalytics.convert(inputs, out, overwrite=True, quiet=True, **kwargs)
    finally:
        readers.DIRECT_MIN_BYTES = before
    got = {k: v for k, v in summary.to_dict().items() if k not in _SKIPPED}
    got["partitions"] = sorted(
        str(ds.partition_of(f, out)) for f in ds.dataset_files(out)
    )
    return got


def _rows(out: Path) -> pa.Table:
    table = ds.read_dataset_table(out)
    # Dictionary-encoded columns compare by value: their dictionaries' order is the
    # order values were met in each file.
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
    return table.sort_by([("sid", "ascending")])


def differences(inputs: Sequence[Path], workdir: Path, **kwargs: object) -> list[str]:
    """What differs between the two readings of `inputs` (empty: nothing)."""
    found = []
    runs = {}
    for direct in (True, False):
        out = workdir / ("direct" if direct else "careful")
        runs[direct] = (_convert(inputs, out, direct, **kwargs), _rows(out))
    (s1, t1), (s2, t2) = runs[True], runs[False]
    if s1 != s2:
        found.append(f"summaries differ:\n  direct  {s1}\n  careful {s2}")
    if t1.schema != t2.schema:
        found.append("dataset schemas differ")
    for name in t2.column_names:
        if name in t1.column_names and not t1.column(name).equals(t2.column(name)):
            found.append(f"column {name} differs")
    rejects = [smsanalytics.ingest.default_rejects_path(workdir / n) for n in ("direct", "careful")]
    if rejects[0].read_bytes() != rejects[1].read_bytes():
        found.append("rejects files differ")
    return found


def _generate(path: Path, rows: int) -> None:
    from smsanalytics.sample import write_webhook_jsonl

    write_webhook_jsonl(path, n=rows, senders=50_000, seed=1)
    with open(path, "ab") as f:  # a few lines of the kinds a reader must number right
        f.write(b"\n   \nnot json\n{\"sid\": \"x\"}\n\t\n")
        f.write(b'{"sid":"dup","from":"+33612345678","to":"+33798765432"}\n' * 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--no-enrich", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.workdir, prefix="convert-paths-"))
    try:
        inputs = args.inputs
        if not inputs:
            inputs = [work / "payloads.jsonl"]
            _generate(inputs[0], args.rows)
        found = differences(inputs, work, enrich_rows=not args.no_enrich)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in found:
        print(line)
    print("identical" if not found else f"{len(found)} differences")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
