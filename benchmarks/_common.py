"""What the dataset benchmarks share: the synthetic dataset and the options that choose it.

``benchmarks/queries.py`` and ``benchmarks/report_audit.py`` time questions of one
synthetic Parquet dataset in the dataset layout (``DIR/month=YYYY-MM/*.parquet``, the
schema's column names and types). This module writes that dataset (:func:`generate`),
adds the options that size and place it (:func:`add_dataset_options`: ``--rows``,
``--dir``, ``--reuse``) and makes it for the length of a run (:func:`synthetic_dataset`).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from smsanalytics.schema import COLUMNS, duckdb_type

__all__ = ["add_dataset_options", "generate", "sql_list", "synthetic_dataset"]

_COUNTRIES = ["FR", "BE", "CH", "GB", "DE", "ES", "IT", "US", "CA", "MA", "SN", "RE"]
_LOCATIONS = ["France", "Belgium", "Switzerland", "United Kingdom", "Germany", "Spain",
              "Italy", "United States", "Canada", "Morocco", "Senegal", "Réunion"]
_BODIES = ["STOP", "Stop !", "Arrêt", "stop sms", "START", "Oui", "Merci beaucoup",
           "Bonjour, je voudrais plus d'informations sur votre offre",
           "Quel est le prix ? 😀", "ok", "Non merci", "UNSUBSCRIBE", "Je confirme ma venue",
           "Pouvez-vous me rappeler demain matin s'il vous plaît ?", "Oui ça me va 👍", "2"]
_STATUSES = ["delivered"] * 8 + ["failed", "expired"]


def sql_list(values: list[str]) -> str:
    """Return `values` as a DuckDB list literal of strings (quotes doubled)."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def generate(out: Path, rows: int) -> None:
    """Write `rows` synthetic messages to the dataset directory `out` (replaced).

    Parameters
    ----------
    out : Path
        Dataset directory.
    rows : int
        Number of messages [rows].
    """
    if out.exists():
        shutil.rmtree(out)
    u = "(hash(i, {k}) % 1000000) / 1000000.0"  # deterministic uniform [0, 1)
    country = f"floor(pow({u.format(k=2)}, 2) * {len(_COUNTRIES)})::INT + 1"
    expr = {
        "sid": "printf('%08x', i)",
        "direction": "'inbound'",
        "from_number": f"'+336' || lpad(floor(pow({u.format(k=1)}, 3) * 500000)::BIGINT::VARCHAR, "
                       "8, '0')",
        "to_number": "['+33639980042', '+33639983040', '+33757000001'][1 + i % 3]",
        "body_text": f"{sql_list(_BODIES)}[1 + (hash(i, 3) % {len(_BODIES)})::INT]",
        "traffic_type": "CASE WHEN (hash(i, 4) % 5)::INT = 0 THEN 'alerting' ELSE 'marketing' END",
        "status": f"{sql_list(_STATUSES)}[1 + (hash(i, 5) % {len(_STATUSES)})::INT]",
        "error": "''",
        "encoding": "CASE WHEN (hash(i, 6) % 4)::INT = 0 THEN 'unicode' ELSE 'gsm' END",
        "parts": "CASE WHEN (hash(i, 7) % 10)::INT < 8 THEN 1 ELSE 1 + (hash(i, 7) % 4)::INT END",
        "network": "['20801', '20810', '20815', '20820', '20601'][1 + (hash(i, 8) % 5)::INT]",
        "cost_cents": f"round({u.format(k=9)} * 10, 4)",
        "payment_type": "CASE WHEN (hash(i, 10) % 3)::INT = 0 THEN 'prepaid' ELSE 'postpaid' END",
        "created_at": "TIMESTAMPTZ '2025-01-01 00:00:00+00' + "
                      f"to_microseconds(({u.format(k=11)} * 365 * 86400e6)::BIGINT)",
        "from_type": "'MOBILE'",
        "from_country": f"{sql_list(_COUNTRIES)}[{country}]",
        "from_location": f"{sql_list(_LOCATIONS)}[{country}]",
        "to_country": "'FR'",
        "network_operator": "['Orange', 'SFR', 'Free', 'Bouygues', 'Proximus']"
                            "[1 + (hash(i, 8) % 5)::INT]",
        "source": "'webhook'",
        "event_try": "0",
        "source_line": "i + 1",
    }
    expr["delivered_at"] = expr["updated_at"] = expr["created_at"]
    cols = ",\n  ".join(
        f'CAST({expr.get(c.name, "NULL")} AS {duckdb_type(c.type)}) AS "{c.name}"'
        for c in COLUMNS
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""
        COPY (
          SELECT *, strftime(created_at, '%Y-%m') AS month
          FROM (SELECT {cols} FROM range({int(rows)}) AS t(i))
        ) TO '{out}' (FORMAT parquet, PARTITION_BY (month), COMPRESSION zstd)
        """
    )
    con.close()


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--rows``, ``--dir`` and ``--reuse``, read by :func:`synthetic_dataset`."""
    parser.add_argument("--rows", type=int, default=10_000_000, help="dataset size [rows]")
    parser.add_argument("--dir", type=Path, default=None,
                        help="dataset directory (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="reuse --dir if it exists")


@contextmanager
def synthetic_dataset(args: argparse.Namespace, *, say_where: bool = False) -> Iterator[Path]:
    """Yield the dataset the options of :func:`add_dataset_options` ask for.

    It is generated (``args.rows`` rows, the time printed) unless ``--reuse`` finds it;
    a temporary one (no ``--dir``) is removed afterwards.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options (``rows``, ``dir``, ``reuse``).
    say_where : bool
        Also print where the dataset was generated.
    """
    tmp = None
    path = args.dir
    if path is None:
        tmp = tempfile.mkdtemp(prefix="smsanalytics-bench-")
        path = Path(tmp) / "dataset"
    try:
        if not (args.reuse and path.exists()):
            t0 = time.perf_counter()
            generate(path, args.rows)
            where = f" at {path}" if say_where else ""
            print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s{where}")
        yield path
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
