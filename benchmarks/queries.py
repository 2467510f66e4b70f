"""Benchmark: each named question vs the equivalent hand-written DuckDB query.

Generates (or reuses) a synthetic Parquet dataset in the dataset layout
(``DIR/month=YYYY-MM/*.parquet``, the schema's column names and types), then times every
question of :mod:`smsanalytics.queries` against a hand-written query over the same files
(``read_parquet('DIR/**/*.parquet')``, literal values), side by side, and prints the ratio.
The bar is a ratio of at most 1.5.

Usage::

    .venv/bin/python benchmarks/queries.py                 # 10,000,000 rows
    .venv/bin/python benchmarks/queries.py --rows 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import add_dataset_options, sql_list, synthetic_dataset  # noqa: E402
from smsanalytics import queries  # noqa: E402

__all__ = ["cases", "main"]

def cases(path: Path) -> list[tuple[str, Callable[[Any], Any], str]]:
    """Return (name, library call on a connection, hand-written SQL) for every question."""
    scan = f"read_parquet('{path}/**/*.parquet')"
    paris = "created_at AT TIME ZONE 'Europe/Paris'"
    kw_list = sql_list(list(queries.DEFAULT_KEYWORDS))
    kinds = sql_list(list(queries.DEFAULT_KEYWORDS.values()))
    return [
        (
            "volume day Paris",
            lambda c: queries.volume(c, freq="day", tz="Europe/Paris"),
            f"""SELECT date_trunc('day', {paris}) AS day, count(*) AS messages,
                       sum(parts) AS parts, sum(cost_cents) AS cost_cents
                FROM {scan} GROUP BY 1 ORDER BY 1""",
        ),
        (
            "volume hour UTC, FR, March",
            lambda c: queries.volume(c, freq="hour", country="FR", start="2025-03-01",
                                     end="2025-04-01"),
            f"""SELECT date_trunc('hour', created_at) AS hour, count(*), sum(parts),
                       sum(cost_cents)
                FROM {scan}
                WHERE from_country = 'FR' AND created_at >= TIMESTAMPTZ '2025-03-01 00:00Z'
                  AND created_at < TIMESTAMPTZ '2025-04-01 00:00Z'
                GROUP BY 1 ORDER BY 1""",
        ),
        (
            "top senders by messages",
            lambda c: queries.top_senders(c, n=10, tz="Europe/Paris"),
            f"""SELECT from_number, any_value(from_country), count(*) AS n, sum(parts),
                       sum(cost_cents), min(created_at), max(created_at),
                       count(DISTINCT CAST({paris} AS DATE))
                FROM {scan} WHERE from_number IS NOT NULL
                GROUP BY from_number ORDER BY n DESC, from_number LIMIT 10""",
        ),
        (
            "top senders by cost",
            lambda c: queries.top_senders(c, by="cost", n=10),
            f"""SELECT from_number, any_value(from_country), count(*), sum(parts),
                       sum(cost_cents) AS c, min(created_at), max(created_at),
                       count(DISTINCT CAST(created_at AT TIME ZONE 'UTC' AS DATE))
                FROM {scan} WHERE from_number IS NOT NULL
                GROUP BY from_number ORDER BY c DESC, from_number LIMIT 10""",
        ),
        (
            "sender activity month",
            lambda c: queries.sender_activity(c, freq="month"),
            f"""WITH s AS (SELECT from_number, min(created_at) AS first_at, count(*) AS total
                           FROM {scan} WHERE from_number IS NOT NULL GROUP BY 1),
                a AS (SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') AS m,
                             from_number FROM {scan} WHERE from_number IS NOT NULL)
                SELECT m, count(*),
                  count(*) FILTER (WHERE date_trunc('month', first_at AT TIME ZONE 'UTC') = m),
                  count(*) FILTER (WHERE date_trunc('month', first_at AT TIME ZONE 'UTC') < m),
                  count(*) FILTER (WHERE total = 1), count(*) FILTER (WHERE total > 1)
                FROM a JOIN s USING (from_number) GROUP BY m ORDER BY m""",
        ),
        (
            "locations by country",
            lambda c: queries.locations(c),
            f"""SELECT from_country, count(*) AS n, count(*) / sum(count(*)) OVER (),
                       count(DISTINCT from_number), sum(parts), sum(cost_cents)
                FROM {scan} GROUP BY 1 ORDER BY n DESC, 1""",
        ),
        (
            "encodings by country",
            lambda c: queries.encodings(c, by="country"),
            f"""SELECT from_country, encoding, count(*) AS n,
                       count(*) / sum(count(*)) OVER (PARTITION BY from_country), sum(parts),
                       count(*) FILTER (WHERE parts > 1),
                       count(*) FILTER (WHERE parts > 1) / count(*)
                FROM {scan} GROUP BY 1, 2 ORDER BY 1, n DESC, 2""",
        ),
        (
            "parts distribution",
            lambda c: queries.parts_distribution(c),
            f"""SELECT parts, encoding, count(*), count(*) / sum(count(*)) OVER ()
                FROM {scan} GROUP BY 1, 2 ORDER BY 1, 2""",
        ),
        (
            "costs by month, country",
            lambda c: queries.costs(c, by=["month", "country"], tz="Europe/Paris"),
            f"""SELECT date_trunc('month', {paris}) AS m, from_country, count(*), sum(parts),
                       sum(cost_cents) AS c
                FROM {scan} GROUP BY ALL ORDER BY m, c DESC, 2""",
        ),
        (
            "costs by to_number, delivered",
            lambda c: queries.costs(c, by="to_number", status="delivered"),
            f"""SELECT to_number, count(*), sum(parts), sum(cost_cents) AS c
                FROM {scan} WHERE status = 'delivered' GROUP BY ALL ORDER BY c DESC, 1""",
        ),
        (
            "traffic types per day",
            lambda c: queries.traffic(c, freq="day", tz="Europe/Paris"),
            f"""SELECT date_trunc('day', {paris}) AS d, traffic_type, count(*) AS n
                FROM {scan} GROUP BY ALL ORDER BY d, n DESC, 2""",
        ),
        (
            "statuses per week",
            lambda c: queries.statuses(c, freq="week"),
            f"""SELECT date_trunc('week', created_at AT TIME ZONE 'UTC') AS w, status,
                       count(*) AS n
                FROM {scan} GROUP BY ALL ORDER BY w, n DESC, 2""",
        ),
        (
            "activity pattern Paris",
            lambda c: queries.activity_pattern(c, tz="Europe/Paris"),
            f"""SELECT isodow({paris}) - 1 AS wd, hour({paris}) AS h, count(*)
                FROM {scan} GROUP BY ALL ORDER BY 1, 2""",
        ),
        (
            "keywords per day",
            lambda c: queries.keywords(c, freq="day"),
            f"""WITH w AS (SELECT unnest({kw_list}) AS keyword, unnest({kinds}) AS kind)
                SELECT date_trunc('day', created_at AT TIME ZONE 'UTC') AS d, keyword, kind,
                       count(*) AS n
                FROM (SELECT created_at, upper(trim(regexp_replace(regexp_replace(
                        strip_accents(body_text), '[^\\p{{L}}\\p{{N}}\\s]', '', 'g'),
                        '\\s+', ' ', 'g'))) AS keyword FROM {scan})
                JOIN w USING (keyword) GROUP BY ALL ORDER BY d, n DESC, keyword""",
        ),
    ]


def _time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 if a question is slower than 1.5x its hand-written SQL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_options(parser)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query")
    parser.add_argument("--only", default=None,
                        help="run only the questions whose name contains this text")
    args = parser.parse_args(argv)

    with synthetic_dataset(args, say_where=True) as path:
        lib = queries.connect(path, currency="EUR")
        hand = duckdb.connect()
        hand.execute("SET TimeZone = 'UTC'")
        results = []
        for name, call, sql in cases(path):
            if args.only and args.only not in name:
                continue
            call(lib)  # warm up: file cache, parsing
            hand.sql(sql).df()
            t_lib = _time(lambda call=call: call(lib), args.repeat)
            t_hand = _time(lambda sql=sql: hand.sql(sql).df(), args.repeat)
            results.append((name, t_lib, t_hand, t_lib / t_hand))
            print(f"{name:32s} {t_lib:8.3f} s {t_hand:8.3f} s {t_lib / t_hand:6.2f}", flush=True)
        table = pd.DataFrame(results, columns=["question", "library [s]", "hand [s]", "ratio"])
        print()
        n = lib.execute("SELECT count(*) FROM messages").fetchall()[0][0]
        print(f"{n:,} rows, median of {args.repeat} runs")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        worst = table["ratio"].max()
        print(f"worst ratio {worst:.2f} (bar: 1.5)")
        return 0 if worst <= 1.5 else 1

if __name__ == "__main__":
    raise SystemExit(main())
