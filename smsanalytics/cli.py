"""The ``smsanalytics`` command: a thin layer over the library.

Each command parses its options, makes one library call and prints the result. Errors the
library raises on purpose (:class:`~smsanalytics.errors.SmsAnalyticsError`) become one line
on standard error and exit code 2; ``--strict`` failures exit 1. Text that came from
messages is escaped before it reaches the terminal.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import duckdb

from . import arguments
from . import dataset as ds
from .errors import (
    ArgumentError,
    DatasetError,
    OutputPathError,
    SmsAnalyticsError,
    StrictModeError,
)
from .escape import for_terminal

if TYPE_CHECKING:  # pandas is imported by the commands that use it: the CLI starts faster
    import pandas as pd

__all__ = ["COMMAND_RETURNED", "main"]

F = TypeVar("F", bound=Callable[..., Any])
#: Set when a command has returned: a Ctrl-C after it interrupted click's own work, and
#: :func:`smsanalytics.__main__.run` says the command had finished.
COMMAND_RETURNED = threading.Event()


def _handle_errors(func: F) -> F:
    """Turn the library's errors into one clear line and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            value = func(*args, **kwargs)
            COMMAND_RETURNED.set()
            return value
        except StrictModeError as exc:
            click.echo(f"smsanalytics: {for_terminal(exc)}", err=True)
            sys.exit(1)
        except SmsAnalyticsError as exc:
            click.echo(f"smsanalytics: error: {for_terminal(exc)}", err=True)
            sys.exit(2)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"smsanalytics: SQL error: {for_terminal(first)}", err=True)
            sys.exit(2)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as other tools do.
            _silence_stdout()
            sys.exit(141)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"smsanalytics: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:  # what was changed, if the library says so
            # str(): the exception itself is always true, even when it says nothing.
            said = str(exc) or "nothing was changed"
            click.echo(f"smsanalytics: interrupted; {said}", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


T = TypeVar("T")


def _interruptible(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a library call in a worker thread, so that Ctrl-C stops its queries at once.

    DuckDB does not see SIGINT while a query runs (the signal waits for the query to end,
    which can take minutes); the main thread waits for the worker in short steps, so it
    gets the KeyboardInterrupt at once, stops the queries and raises it. Only for calls
    that write nothing.
    """
    outcome: dict[str, Any] = {}
    # An Event, not Thread.join: a join cut short by Ctrl-C marks the thread finished
    # while it still runs (CPython), and the process then aborts at exit under DuckDB.
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call(*args, **kwargs)
        except BaseException as exc:  # handed to the main thread as it is
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="smsanalytics-query", daemon=True).start()
    try:
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        # The module that opens every connection (audit opens its own, without queries).
        shared = sys.modules.get(f"{__package__}._analysis")
        if shared is not None:
            shared.interrupt_all()
        done.wait(10)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a real file (a test runner's buffer): nothing to flush


def _print_table(df: pd.DataFrame, max_rows: int = 50, max_width: int = 60,
                 found: int | None = None, written: int | None = None) -> None:
    """Print `df` as an aligned text table, cells escaped and cut to `max_width`.

    `found` is how many rows there were when `df` holds only the first of them (audit's
    ``--detail-rows``): the rows not shown are counted of those. `written` is how many of
    them --csv and --json would write (default: the rows of `df`); they are said to hold
    them all only when that is all found.
    """
    import pandas as pd

    shown = df.head(max_rows)

    def cell(v: Any) -> str:
        # A list or struct cell (status_history) arrives as an array: not a missing scalar.
        if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
            return ""
        if not pd.api.types.is_scalar(v):  # shown as JSON, as --csv writes it
            v = json.dumps(v.tolist() if hasattr(v, "tolist") else v, ensure_ascii=False,
                           default=str)
        elif isinstance(v, Decimal):  # exact, never an exponent (0E-8 reads 0.00000000)
            v = format(v, "f")
        text = for_terminal(v)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    header = [for_terminal(c) for c in shown.columns]
    rows = [[cell(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    click.echo("  ".join("-" * w for w in widths))
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    total = len(df) if found is None else max(found, len(df))
    files = len(df) if written is None else min(written, total)
    if total > len(shown):
        hint = ("use --csv or --json for all" if files == total else
                f"--csv or --json write the first {files:,}; --detail-rows all writes "
                "every one")
        click.echo(f"... {total - len(shown):,} more rows ({hint})")


class _OneLineUsageError(click.UsageError):
    """A usage error shown as the project's errors are: one line, ``smsanalytics: error:``."""

    def show(self, file: Any = None) -> None:
        click.echo(f"smsanalytics: error: {for_terminal(self.message)}", err=True)


class _Group(click.Group):
    """The command group: click's usage errors (a bad choice, a missing option or argument,
    an unknown option or command) become one line and exit 2, for every command at once.

    Click shows them as four lines (usage, hint, blank, error); the library's errors are
    one line, and so are these. ``--help`` is unchanged, and so is the help shown for
    ``smsanalytics`` without a command.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _usage_in_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_in_one_line():
            return super().invoke(ctx)


@contextlib.contextmanager
def _usage_in_one_line() -> Iterator[None]:
    """Raise click's usage errors again as :class:`_OneLineUsageError`, with a hint."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # `smsanalytics` alone: the help is what was asked for
    except click.UsageError as exc:
        if isinstance(exc, _OneLineUsageError):
            raise
        where = exc.ctx.command_path if exc.ctx is not None else "smsanalytics"
        message = f"{exc.format_message()} (see: {where} --help)"
        raise _OneLineUsageError(message, exc.ctx) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smsanalytics")
def main() -> None:
    """Callr inbound-SMS archives as typed tables, answers and reports."""


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out", "-o", required=True, type=click.Path(file_okay=False), help="Dataset directory."
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Rejects file (JSON Lines); default <out>.rejects.jsonl.",
)
@click.option(
    "--partition-by", type=click.Choice(["month", "none"]), default="month", show_default=True
)
@click.option("--overwrite", is_flag=True, help="Replace the dataset instead of adding to it.")
@click.option(
    "--strict", is_flag=True, help="Exit 1 (and change nothing) if any record is rejected."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no summary.")
@click.option(
    "--no-enrich", is_flag=True, help="Skip number, network and segment columns (faster)."
)
@click.option(
    "--pseudonymize", is_flag=True, help="Replace sender numbers by keyed tokens (--key-file)."
)
@click.option("--key-file", type=click.Path(dir_okay=False),
              help="Key for --pseudonymize (required with it; make one with keygen).")
@click.option("--redact-bodies", is_flag=True, help="Drop message bodies (computed columns stay).")
@click.option("--pseudonymize-recipients", is_flag=True, help="Also tokenise recipient numbers.")
@click.option(
    "--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
    help="spark: run the conversion as a Spark job (pip install smsanalytics[spark]).",
)
@click.option(
    "--spark-master", metavar="URL",
    help="With --engine spark: the master (default: the configured one, else local[*]).",
)
@_handle_errors
def convert(
    inputs: tuple[str, ...],
    out: str,
    rejects: str | None,
    partition_by: str,
    overwrite: bool,
    strict: bool,
    as_json: bool,
    quiet: bool,
    no_enrich: bool,
    pseudonymize: bool,
    key_file: str | None,
    redact_bodies: bool,
    pseudonymize_recipients: bool,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> None:
    """Convert Callr archives (files, folders, - for stdin) into a Parquet dataset.

    Converting into an existing dataset adds only what is new; running the same
    command twice writes nothing the second time.
    """
    from .ingest import convert as run

    if spark_master and engine != "spark":
        raise SmsAnalyticsError("--spark-master is only used with --engine spark")
    key = _key(pseudonymize or pseudonymize_recipients, key_file)
    if engine == "spark":
        summary = _convert_on_spark(
            inputs, out, spark_master, rejects=rejects, partition_by=partition_by,
            overwrite=overwrite, strict=strict, enrich_rows=not no_enrich,
            pseudonymize_key=key, redact_bodies=redact_bodies,
            pseudonymize_recipients=pseudonymize_recipients)
        _print_summary(summary, as_json, quiet)
        return
    summary = run(
        inputs,
        out,
        rejects=rejects,
        partition_by=partition_by,
        overwrite=overwrite,
        strict=strict,
        quiet=quiet or as_json,
        enrich_rows=not no_enrich,
        pseudonymize_key=key,
        redact_bodies=redact_bodies,
        pseudonymize_recipients=pseudonymize_recipients,
    )
    _print_summary(summary, as_json, quiet)


def _print_summary(summary: Any, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict(), default=str))
    elif not quiet:
        for line in str(summary).splitlines():
            click.echo(for_terminal(line), err=False)


def _convert_on_spark(inputs: tuple[str, ...], out: str, master: str | None,
                      **options: Any) -> Any:
    """``convert --engine spark``: the same conversion as a Spark job (see spark_convert)."""
    from .spark_convert import check_arguments

    # Everything that can be refused is refused before a session starts (seconds of JVM).
    check_arguments(inputs, out, options.get("rejects"), partition_by=options["partition_by"],
                    **{k: options[k] for k in ("pseudonymize_key", "redact_bodies",
                                               "pseudonymize_recipients")})
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SmsAnalyticsError(
            "--engine spark needs PySpark: pip install 'smsanalytics[spark]' (and Java 17+)"
        ) from exc
    from .spark import convert as spark_convert
    from .spark import get_session

    return spark_convert(get_session(master), list(inputs), out, **options)


def _key(wanted: bool, key_file: str | None) -> bytes | None:
    """The pseudonymisation key, if asked for; a clear error if it cannot be had."""
    from .privacy import load_key

    if not wanted:
        if key_file:
            raise SmsAnalyticsError("--key-file is only used with --pseudonymize")
        return None
    if not key_file:
        raise SmsAnalyticsError(
            "--pseudonymize needs --key-file (make one with: smsanalytics keygen KEYFILE)"
        )
    return load_key(key_file)


@main.command()
@click.argument("dataset", type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="New dataset.")
@click.option("--key-file", type=click.Path(dir_okay=False),
              help="Key for the number tokens (required unless only --redact-bodies).")
@click.option("--redact-bodies", is_flag=True, help="Drop message bodies (computed columns stay).")
@click.option(
    "--pseudonymize-recipients", "recipients", is_flag=True, help="Also tokenise recipients."
)
@_handle_errors
def pseudonymize(
    dataset: str, out: str, key_file: str | None, redact_bodies: bool, recipients: bool
) -> None:
    """Write a pseudonymised copy of DATASET: sender numbers as keyed tokens."""
    from .paths import check_output_path
    from .privacy import pseudonymize_dataset

    check_output_path(out, inputs=[dataset], kind="dataset")
    key = _key(key_file is not None or not redact_bodies, key_file)
    rows = pseudonymize_dataset(
        dataset, out, key=key, redact_bodies=redact_bodies, pseudonymize_recipients=recipients
    )
    click.echo(f"{rows:,} rows written to {for_terminal(out)}")


@main.command()
@click.argument("key_file", type=click.Path())
@_handle_errors
def keygen(key_file: str) -> None:
    """Create a new random key file for --pseudonymize (never overwrites one)."""
    from .privacy import generate_key

    generate_key(key_file)
    click.echo(f"new key written to {for_terminal(key_file)}; keep it secret and backed up")


@main.command()
@click.argument("dataset", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print as one JSON object.")
@_handle_errors
def info(dataset: str, as_json: bool) -> None:
    """Rows, date range, partitions, size and schema of a dataset."""
    from .schema import COLUMNS

    d = ds.describe(dataset)
    if as_json:
        click.echo(json.dumps(d.to_dict(), default=str))
        return
    click.echo(f"dataset   {for_terminal(d.path)}")
    click.echo(f"rows      {d.rows:,}")
    span = f"{d.first:%Y-%m-%d %H:%M} .. {d.last:%Y-%m-%d %H:%M} UTC" if d.first and d.last else "-"
    click.echo(f"created   {span}")
    click.echo(f"size      {d.size / 1e6:,.2f} MB in {d.files:,} files")
    click.echo(f"partitions ({d.manifest.get('partition_by', '?')}):")
    for key, n in d.partitions.items():
        click.echo(f"  {for_terminal(key) or '(none)':<12} {n:>10,}")
    click.echo("schema:")
    for c in COLUMNS:
        unit = f" [{c.unit}]" if c.unit else ""
        kind = (
            f"{c.type.value_type} (dictionary)"
            if hasattr(c.type, "value_type") and hasattr(c.type, "index_type")
            else str(c.type)
        )
        click.echo(f"  {c.name:<18} {kind:<26} {c.description}{unit}")


@main.command()
@click.argument("dataset", type=click.Path())
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (formula cells neutralised).")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout.")
@click.option(
    "--max-rows", default="50", show_default=True, metavar="N",
    help="Rows shown in the table view (1 to 1,000,000).",
)
@click.option(
    "--read-only",
    is_flag=True,
    help="Read the dataset and nothing else: no file access, no writes, no extensions "
    "(for SQL from others, behind a service).",
)
@click.option(
    "--tz",
    metavar="ZONE",
    help="Session time zone of the SQL, an IANA name (Europe/Paris): what ::DATE, "
    "date_trunc and printed times use. Default UTC; the view's month stays UTC.",
)
@_handle_errors
def sql(
    dataset: str, query: str, as_csv: bool, as_json: bool, max_rows: str, read_only: bool,
    tz: str | None,
) -> None:
    """Run DuckDB SQL over a view named `messages` of DATASET.

    Without --read-only the SQL runs with your rights: it can read and write any file you
    can (COPY ... TO, ATTACH, read_text).
    """
    from .queries import run_sql

    rows = arguments.positive_int(max_rows, "--max-rows")
    zone = None if tz is None else arguments.time_zone_name(tz, "--tz")
    if as_csv and as_json:
        raise ArgumentError("--csv", "--json", "choose one output: --csv or --json")
    if not Path(dataset).is_dir():
        raise DatasetError(dataset, "no dataset here (not a directory)")
    df = _interruptible(run_sql, dataset, query, read_only=read_only, tz=zone)
    if as_csv:
        from .escape import write_csv

        write_csv(df, sys.stdout)
    elif as_json:
        from .escape import write_json_lines

        write_json_lines(df, sys.stdout)
    else:
        _print_table(df, max_rows=rows)


@main.command()
@click.argument("dataset", type=click.Path())
@click.option("--out", "-o", required=True, metavar="FILE",
              help="HTML file (new, or a report written before).")
@click.option("--start", metavar="DATE",
              help="First day of the period (inclusive), e.g. 2025-05-01.")
@click.option("--end", metavar="DATE", help="Day after the period (exclusive), e.g. 2025-06-01.")
@click.option("--tz", default="UTC", show_default=True, metavar="ZONE",
              help="Time zone of days and months, an IANA name (Europe/Paris).")
@click.option("--currency", metavar="LABEL",
              help="Label of the account currency, e.g. EUR (never guessed).")
@click.option("--csv", "csv_dir", metavar="DIR", help="Also write CSV tables into this folder.")
@click.option("--top", default="10", show_default=True, metavar="N",
              help="Senders and rows per table (1 to 1,000,000).")
@_handle_errors
def report(
    dataset: str,
    out: str,
    start: str | None,
    end: str | None,
    tz: str,
    currency: str | None,
    csv_dir: str | None,
    top: str,
) -> None:
    """Write the cost report of DATASET as one self-contained HTML page."""
    from .paths import is_report_page
    from .report import cost_report

    period = arguments.bounds(start, end, tz, names=("--start", "--end"), tz_name="--tz")
    n = arguments.positive_int(top, "--top")
    label = arguments.currency_label(currency, "--currency")
    if not Path(dataset).is_dir():
        raise DatasetError(dataset, "no dataset here (not a directory)")
    _check_outputs(dataset, out, is_report_page, csv_dir)
    r = _interruptible(cost_report, dataset, start=period.start, end=period.end,
                       tz=period.zone, currency=label, top=n)
    path = r.write_html(out)
    click.echo(f"report for {for_terminal(r.period.label)} written to {for_terminal(path)}")
    if csv_dir:
        files = r.to_csv(csv_dir)
        click.echo(f"{len(files)} CSV tables written to {for_terminal(csv_dir)}")


def _check_outputs(
    dataset: str, page: str | None, ours: Callable[[Path], bool] | None, csv_dir: str | None
) -> None:
    """Refuse a report page or CSV folder that is the dataset, in it, or not ours: early."""
    from .paths import check_output_path

    if page is not None:
        where = check_output_path(page, inputs=[dataset], within=[dataset], ours=ours).parent
        if not where.is_dir():  # found now, not after the report is computed
            raise OutputPathError(page, f"its folder {where} does not exist")
    if csv_dir is not None:
        folder = check_output_path(csv_dir, inputs=[dataset], within=[dataset], kind="directory")
        if page is not None and folder.resolve() == Path(page).resolve():
            raise OutputPathError(csv_dir, "is also the report page (--out); choose another")


@main.command()
@click.argument("dataset", type=click.Path())
@click.option("--start", metavar="DATE", help="First day audited (inclusive), e.g. 2025-05-01.")
@click.option("--end", metavar="DATE",
              help="Day after the last one audited (exclusive), e.g. 2025-06-01.")
@click.option("--tz", default="UTC", show_default=True, metavar="ZONE",
              help="Time zone of days and months, an IANA name (Europe/Paris).")
@click.option("--currency", metavar="LABEL",
              help="Label of the account currency, e.g. EUR (never guessed).")
@click.option(
    "--margin",
    default="0.25",
    show_default=True,
    metavar="FRACTION",
    help="Flag a cost per part above the country's usual rate by more than this fraction "
    "(0.25: more than 125 % of it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every table as one JSON object.")
@click.option("--csv", "csv_dir", metavar="DIR", help="Also write CSV tables into this folder.")
@click.option("--max-rows", default="20", show_default=True, metavar="N",
              help="Rows shown per table (1 to 1,000,000).")
@click.option(
    "--detail-rows",
    default="10000",
    show_default=True,
    metavar="N",
    help="Rows kept per finding table for --json and --csv, the first by time, or all "
    "(memory grows with the findings). The summary counts every finding whatever this.",
)
@_handle_errors
def audit(
    dataset: str,
    start: str | None,
    end: str | None,
    tz: str,
    currency: str | None,
    margin: str,
    as_json: bool,
    csv_dir: str | None,
    max_rows: str,
    detail_rows: str,
) -> None:
    """Audit the billing of DATASET: parts, encodings, rates, networks, numbers."""

    from .audit import audit as run

    period = arguments.bounds(start, end, tz, names=("--start", "--end"), tz_name="--tz")
    label = arguments.currency_label(currency, "--currency")
    rate_margin = arguments.margin(margin, "--margin")
    rows = arguments.positive_int(max_rows, "--max-rows")
    kept = arguments.row_cap(detail_rows, "--detail-rows")
    if not Path(dataset).is_dir():
        raise DatasetError(dataset, "no dataset here (not a directory)")
    _check_outputs(dataset, None, None, csv_dir)
    # Only what is printed or written is loaded: on the terminal alone, --max-rows rows.
    load = kept if as_json or csv_dir else (rows if kept is None else min(rows, kept))
    a = _interruptible(run, dataset, start=period.start, end=period.end, tz=period.zone,
                       currency=label, rate_margin=rate_margin, max_rows=load)
    if as_json:
        click.echo(a.to_json(readable=True))
    else:
        for name, df in a.tables().items():
            if name != "summary" and df.empty:
                continue
            title = name.replace("_", " ")
            total = a.found.get(name, len(df))  # rows found, of which `df` kept the first
            click.echo(f"\n{title} ({total:,})" if name != "summary" else title)
            if name == "summary":  # the meanings below the table, whole and wrapped
                _print_table(df.drop(columns="meaning"), max_rows=len(df))
                _print_meanings(df)
            else:
                _print_table(df, max_rows=rows, found=total,
                             written=total if kept is None else kept)
        if a.pseudonymised_senders:
            click.echo(f"\nnumber checks skipped for {a.pseudonymised_senders:,} messages: "
                       "their senders are pseudonymised tokens, not numbers")
    if csv_dir:
        files = a.to_csv(csv_dir, readable=True)
        click.echo(f"{len(files)} CSV tables written to {for_terminal(csv_dir)}", err=as_json)
    if as_json or csv_dir:  # say which tables hold only their first rows (stderr: not data)
        for name, df in a.tables().items():
            total = a.found.get(name, len(df))
            if total > len(df):
                click.echo(f"{name}: the first {len(df):,} of {total:,} rows "
                           "(--detail-rows all keeps every one)", err=True)


def _print_meanings(summary: pd.DataFrame) -> None:
    """What each check of the audit summary means, wrapped to the terminal's width."""
    import shutil
    import textwrap

    width = max(40, min(shutil.get_terminal_size().columns, 100))
    click.echo("\nwhat each check means:")
    for check, meaning in zip(summary["check"], summary["meaning"], strict=True):
        click.echo(textwrap.fill(for_terminal(meaning), width=width,
                                 initial_indent=f"  {for_terminal(check)}: ",
                                 subsequent_indent="      "))


@main.command()
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to create (missing or empty).",
)
@click.option(
    "--n", "n", type=int, default=3000, show_default=True, metavar="N",
    help="Distinct messages (200 or more).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, metavar="N",
    help="Random seed (same seed, same bytes).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no summary.")
@_handle_errors
def sample(out: str, n: int, seed: int, quiet: bool) -> None:
    """Write a realistic synthetic Callr archive in every shape and container."""
    from tqdm import tqdm

    from .sample import write_sample

    if n < 200:
        raise ArgumentError("--n", n, "a sample needs at least 200 messages")
    with tqdm(
        total=n, unit=" msg", unit_scale=True, leave=False, dynamic_ncols=True, disable=quiet
    ) as bar:

        def made(k: int) -> None:
            bar.update(k)
            if bar.n >= n:  # what is left is merging the line files: say so, not 100 % idle
                bar.set_description("merging files")

        try:
            m = write_sample(out, n=n, seed=seed, progress=made)
        except FileExistsError as exc:
            raise OutputPathError(out, "exists and is not an empty folder") from exc
    if not quiet:
        click.echo(
            f"wrote {len(m.files)} files to {for_terminal(out)}: {m.records:,} records, "
            f"{m.messages:,} messages, {m.duplicates:,} duplicates, {m.rejects:,} broken"
        )



@main.command()
@click.option("--archive", required=True, metavar="DIR", help="Archive directory.")
@click.option("--dataset", metavar="DIR", help="Dataset kept current.")
@click.option(
    "--convert-every", default="5m", show_default=True, metavar="DURATION",
    help="Conversion period (90s, 5m, 1h).",
)
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              metavar="PORT", help="TCP port to listen on.")
@click.option(
    "--secret-file",
    "secret_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="HMAC secret of the webhook; give two during a rotation.",
)
@click.option(
    "--token-file", type=click.Path(dir_okay=False), help="Secret path token: POST /<token>."
)
@click.option("--insecure-no-auth", is_flag=True, help="Accept events from anyone.")
@click.option(
    "--hmac-hash",
    default="sha256",
    show_default=True,
    type=click.Choice(["sha256", "sha512", "sha1"]),
    help="Hash of the webhook's HMAC.",
)
@click.option("--prefix", default="", metavar="PATH",
              help="Path prefix of the routes, e.g. /callr.")
@click.option("--certfile", type=click.Path(dir_okay=False), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option(
    "--max-body", default=1 << 20, show_default=True, type=click.IntRange(1), metavar="BYTES",
    help="Largest request body.",
)
@click.option(
    "--max-file-mb", default=64, show_default=True, type=click.IntRange(1), metavar="MB",
    help="Rotation size.",
)
@click.option(
    "--min-free-mb", default=100, show_default=True, type=click.IntRange(0), metavar="MB",
    help="Free disk below which /readyz says not ready.",
)
@click.option(
    "--client-timeout",
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="Time a client has to send a request's headers, and its body.",
)
@click.option("--no-access-log", is_flag=True, help="No line per request.")
@_handle_errors
def serve(
    archive: str,
    dataset: str | None,
    convert_every: str,
    host: str,
    port: int,
    secret_files: tuple[str, ...],
    token_file: str | None,
    insecure_no_auth: bool,
    hmac_hash: str,
    prefix: str,
    certfile: str | None,
    keyfile: str | None,
    max_body: int,
    max_file_mb: int,
    min_free_mb: int,
    client_timeout: str,
    no_access_log: bool,
) -> None:
    """Receive Callr's webhooks into an archive (and a dataset), durably.

    Needs the serve extra: pip install 'smsanalytics[serve]'.
    """
    from .paths import check_output_path
    from .receiver import ReceiverConfig, parse_duration, read_secret_file
    from .receiver import serve as run

    # The archive may be a link to a folder (a data disk's mount point): it is never
    # replaced, only written into. The dataset is checked by the receiver before it listens.
    check_output_path(Path(archive).resolve(), kind="directory")
    config = ReceiverConfig(
        Path(archive),
        secrets=tuple(read_secret_file(f) for f in secret_files),
        token=read_secret_file(token_file, "token").decode("utf-8", "replace")
        if token_file
        else None,
        insecure_no_auth=insecure_no_auth,
        hash_name=hmac_hash,
        prefix=prefix,
        max_body=max_body,
        body_timeout=parse_duration(client_timeout, "--client-timeout"),
        min_free_bytes=min_free_mb << 20,
        max_file_bytes=max_file_mb << 20,
        dataset=Path(dataset) if dataset else None,
        convert_every=parse_duration(convert_every, "--convert-every"),
        access_log=not no_access_log,
    )
    run(config, host=host, port=port, certfile=certfile, keyfile=keyfile)

if __name__ == "__main__":  # pragma: no cover
    from .__main__ import run

    run()
