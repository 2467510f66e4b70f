"""The ``smsanalytics`` console script, and ``python -m smsanalytics``.

This module imports only the standard library before it is ready for Ctrl-C: the command
line's modules (click, DuckDB, and what each command imports) take a second or more to
import, and Ctrl-C during that second printed Python's traceback. :func:`run` catches it
from the start, and also around click's own work before and after a command (which click
reported as ``Aborted!``, exit 1): one line, exit 130, as inside a command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["run"]

#: Exit status after Ctrl-C: 128 + SIGINT, as shells report it.
INTERRUPTED = 130


def _interrupted(what: str) -> NoReturn:
    sys.stderr.write(f"smsanalytics: interrupted; {what}\n")
    sys.stderr.flush()
    sys.exit(INTERRUPTED)


def run(args: Sequence[str] | None = None) -> NoReturn:
    """Run the command line with `args` (default: ``sys.argv[1:]``) and exit."""
    try:
        import click

        from . import cli
    except KeyboardInterrupt:
        _interrupted("nothing was changed")
    cli.COMMAND_RETURNED.clear()
    try:
        code = cli.main.main(
            args=list(args) if args is not None else None,
            prog_name="smsanalytics",
            standalone_mode=False,
        )
    except click.Abort:
        # Ctrl-C in click's own work: reading options before the command, or closing its
        # context after (the command catches its own Ctrl-C and says what it changed).
        finished = cli.COMMAND_RETURNED.is_set()
        _interrupted("the command had finished" if finished else "nothing was changed")
    except click.ClickException as exc:  # a usage error: click's own message and status
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted("the command had finished")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
