"""DuckDB SQL of the questions, rewritten as Spark SQL: sqlglot plus a few tested rules.

This module owns the translation. The SQL an analyst reads is the DuckDB SQL of
:mod:`smsanalytics.queries`; :func:`to_spark` parses it with sqlglot (DuckDB dialect),
applies the rules below to the parsed tree, and prints it as Spark SQL. It imports only
sqlglot and the schema: no Spark, no I/O, so it is tested without a JVM.

sqlglot alone gets some constructs wrong, silently or not; the rules fix those used here:

* ``epoch_us(ts)`` becomes ``unix_micros(ts)`` (sqlglot leaves it untranslated).
* ``to_timestamp(seconds)`` becomes ``timestamp_seconds(seconds)`` (sqlglot's
  ``CAST(FROM_UNIXTIME(...) AS TIMESTAMP)`` goes through the session's wall clock).
* ``timezone(tz, x)`` becomes ``convert_timezone``. Its direction depends on the type of
  ``x``, which a parse cannot see, so ``x`` must say it: ``CAST(x AS TIMESTAMPTZ)`` (an
  instant, giving the wall-clock time in ``tz``) or ``CAST(x AS TIMESTAMP)`` (a wall-clock
  time in ``tz``, giving the instant). A bare column of the message table whose type is an
  instant (``created_at``, ...) counts as ``TIMESTAMPTZ``. Anything else is refused.
* ``isodow(x)`` (1 = Monday) becomes ``weekday(x) + 1`` (sqlglot's translation is off by
  days).
* ``strip_accents(x)``, which Spark lacks, calls :data:`STRIP_ACCENTS_UDF`, a function the
  Spark connection registers.
* Several ``unnest`` in one select list (DuckDB zips them) become one
  ``inline(arrays_zip(...)) AS (a, b)`` (Spark allows one generator per select).
* ``t.* REPLACE (...)`` over the message table is expanded to its columns.
* Table names are renamed (the ``messages`` view gets a name unique to its connection).

The translated SQL runs with the session time zone UTC (the Spark connection sets it per
query), as DuckDB's connection does: casts between instants and wall-clock times are then
exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import pyarrow as pa
import sqlglot
from sqlglot import exp

from .schema import COLUMNS, VIEW_COLUMNS

__all__ = ["STRIP_ACCENTS_UDF", "UnsupportedSql", "to_spark"]

#: Name under which the Spark connection registers its ``strip_accents``.
STRIP_ACCENTS_UDF = "smsanalytics_strip_accents"

#: Columns of the message table that hold instants (bare, they are ``TIMESTAMPTZ``).
_INSTANT_COLUMNS = frozenset(c.name for c in COLUMNS if pa.types.is_timestamp(c.type))
# The view's computed columns too: `*` over it gives them on both engines.
_MESSAGE_COLUMNS = tuple(c.name for c in (*COLUMNS, *VIEW_COLUMNS))
# DuckDB's TIMESTAMP (no time zone) parses as TIMESTAMPNTZ.
_WALL_CLOCK = (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ)


class UnsupportedSql(ValueError):
    """SQL the rewrite layer cannot translate faithfully (raised rather than guessed)."""


def to_spark(
    sql: str,
    *,
    tables: Mapping[str, str] | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Translate one DuckDB statement into Spark SQL.

    Parameters
    ----------
    sql : str
        A DuckDB statement; ``$name`` parameters become Spark's ``:name``.
    tables : mapping of str to str, optional
        Table names to rename (``{"messages": "_smsanalytics_messages_1"}``).
    columns : mapping of str to sequence of str, optional
        Columns of tables (by their name in `sql`) whose ``*`` may be expanded for
        ``* REPLACE``; the message table's are known.

    Returns
    -------
    str
        Spark SQL.

    Raises
    ------
    UnsupportedSql
        For ``timezone()`` of an argument whose type the SQL does not state.

    Examples
    --------
    >>> to_spark("SELECT epoch_us(created_at) // 900000000 AS slot FROM messages WHERE x = $x")
    'SELECT UNIX_MICROS(created_at) DIV 900000000 AS slot FROM messages WHERE x = :x'
    """
    known = {"messages": _MESSAGE_COLUMNS, **(columns or {})}
    # Typed as sqlglot's base class Expr; every node it parses is an Expression.
    tree = cast(exp.Expression, sqlglot.parse_one(sql, read="duckdb"))
    tree = _expand_star_replace(tree, known)
    tree = tree.transform(_rewrite)
    tree = _zip_unnests(tree)
    if tables:
        for table in tree.find_all(exp.Table):
            if table.name in tables and not table.args.get("db"):
                if not table.alias:  # qualified columns (messages.keyword) keep resolving
                    table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
                table.set("this", exp.to_identifier(tables[table.name]))
    return tree.sql(dialect="spark")


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name == "epoch_us" and len(args) == 1:
            return exp.UnixMicros(this=args[0])
        if name == "timezone" and len(args) == 2:
            # The replacement's children are not visited again: rewrite them first.
            return _timezone(args[0], args[1].transform(_rewrite))
        if name == "strip_accents" and len(args) == 1:
            return exp.Anonymous(this=STRIP_ACCENTS_UDF, expressions=[args[0]])
    if isinstance(node, exp.UnixToTime) and not node.args.get("scale"):
        return exp.Anonymous(this="TIMESTAMP_SECONDS", expressions=[node.this])
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128:
        # Spark has no 128-bit integer; a whole decimal of 38 digits holds every HUGEINT
        # product the templates form (exact comparisons of cross-multiplied amounts).
        return exp.DataType.build("DECIMAL(38, 0)")
    if isinstance(node, exp.PercentileDisc) and node.expression is not None:
        # DuckDB's quantile_disc(x, q) is Spark's ordered-set form; both take the first
        # value whose cumulative share reaches q (the lower median at 0.5), nulls ignored.
        percentile = exp.Anonymous(this="PERCENTILE_DISC", expressions=[node.expression])
        order = exp.Order(expressions=[exp.Ordered(this=node.this.transform(_rewrite))])
        return exp.WithinGroup(this=percentile, expression=order)
    if isinstance(node, exp.DayOfWeekIso):
        weekday = exp.Anonymous(this="WEEKDAY", expressions=[node.this])
        return exp.Paren(this=exp.Add(this=weekday, expression=exp.Literal.number(1)))
    return node


def _timezone(zone: exp.Expression, value: exp.Expression) -> exp.Expression:
    utc = exp.Literal.string("UTC")
    if isinstance(value, exp.Cast) and value.to.is_type(exp.DataType.Type.TIMESTAMPTZ):
        return _convert(utc, zone, value.this)
    if isinstance(value, exp.Column) and value.name in _INSTANT_COLUMNS:
        return _convert(utc, zone, value)
    if isinstance(value, exp.Cast) and value.to.is_type(*_WALL_CLOCK):
        return exp.cast(_convert(zone, utc, value.this), exp.DataType.Type.TIMESTAMPTZ)
    raise UnsupportedSql(
        f"timezone(tz, {value.sql('duckdb')}): say whether the argument is an instant or a "
        "wall-clock time with CAST(... AS TIMESTAMPTZ) or CAST(... AS TIMESTAMP)"
    )


def _convert(source: exp.Expression, target: exp.Expression,
             value: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="CONVERT_TIMEZONE", expressions=[source, target, value])


def _zip_unnests(tree: exp.Expression) -> exp.Expression:
    """``SELECT unnest(a) AS x, unnest(b) AS y`` -> ``SELECT inline(arrays_zip(a, b)) AS (x, y)``.

    DuckDB zips the unnests of one select list; Spark allows one generator per list.
    """
    for select in list(tree.find_all(exp.Select)):
        items = select.expressions
        unnests = [i for i in items if isinstance(i, exp.Alias) and isinstance(i.this, exp.Explode)]
        if len(unnests) < 2:
            continue
        if len(unnests) != len(items):
            raise UnsupportedSql("several unnest() beside other columns in one select list")
        arrays = [i.this.this for i in unnests]
        inline = exp.Anonymous(this="INLINE", expressions=[
            exp.Anonymous(this="ARRAYS_ZIP", expressions=arrays)])
        names = [exp.to_identifier(i.alias) for i in unnests]
        select.set("expressions", [exp.Aliases(this=inline, expressions=names)])
    return tree


def _expand_star_replace(tree: exp.Expression,
                         known: Mapping[str, Sequence[str]]) -> exp.Expression:
    """``m.* REPLACE (e AS c)`` -> every column of ``m``'s table, ``e AS c`` in its place."""
    for star in list(tree.find_all(exp.Star)):
        replace = star.args.get("replace")
        if not replace:
            continue
        column = star.parent if isinstance(star.parent, exp.Column) else None
        qualifier = column.table if column is not None else ""
        select = star.find_ancestor(exp.Select)
        table = _table_of(select, qualifier)
        if select is None or table is None or table not in known:
            raise UnsupportedSql(f"* REPLACE over a table whose columns are unknown: {table}")
        by_name = {r.alias: r for r in replace}
        expanded: list[exp.Expression] = []
        for name in known[table]:
            if name in by_name:
                expanded.append(by_name[name])
            else:
                expanded.append(exp.column(name, table=qualifier or None, quoted=True))
        target = column if column is not None else star
        items = list(select.expressions)
        at = items.index(target)
        select.set("expressions", [*items[:at], *expanded, *items[at + 1:]])
    return tree


def _table_of(select: exp.Select | None, qualifier: str) -> str | None:
    if select is None:
        return None
    for table in select.find_all(exp.Table):
        if table.find_ancestor(exp.Select) is not select:
            continue
        if not qualifier or table.alias_or_name == qualifier:
            return table.name
    return None
