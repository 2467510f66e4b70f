"""Output paths: whether a path the user named may be written, decided before any reading.

A conversion, a report or a CSV export writes where the user says. A mistyped or hostile
name must not destroy what is there (``--rejects in.jsonl`` once truncated the archive it
was converting; ``--rejects /dev/null`` replaced the device with a regular file). An
output path is refused, with :class:`~smsanalytics.errors.OutputPathError`, when it is:

* one of the inputs: the same path once resolved, or the same file under another name
  (a hard link), or the file standard input is redirected from when ``-`` is an input;
* a symbolic link: writing would replace the link or follow it to somewhere else; the
  user is asked for the path it points to, so that what is written is what was meant;
* a device, a named pipe (FIFO) or a socket;
* a directory where a file goes, or anything else where a directory goes;
* an existing file that is not ours (for a rejects file: one whose first line is not a
  rejects record); a directory that is not ours is refused by its owner
  (:func:`smsanalytics.dataset.check_writable` for a dataset).

The checks look at the path as it is now; writers still replace files atomically
(:func:`write_atomically`), so a path swapped for a link in between is replaced, not
followed, and a write cut short leaves the previous file whole.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from .errors import InputError, OutputPathError

__all__ = [
    "read_regular_file",
    "KINDS",
    "REJECTS_FIELDS",
    "PAGE_MARKER",
    "check_output_path",
    "is_rejects_file",
    "is_report_page",
    "same_file",
    "write_atomically",
]

#: What an output path is for: a file we replace, a rejects file, a folder we write files
#: into, a dataset directory.
KINDS = ("file", "rejects", "directory", "dataset")
#: The fields every line of a rejects file has (it may have more).
REJECTS_FIELDS = ("source_file", "source_line", "reason")
#: In the head of every HTML report page: how a report knows a page it may replace.
PAGE_MARKER = '<meta name="generator" content="smsanalytics report">'
#: Pages written before the marker: their title (the marker is in the first 1,000 bytes).
_OLD_PAGE_TITLE = "<title>Inbound SMS cost report: "
_HEAD_LIMIT = 4096
_FIRST_LINE_LIMIT = 1 << 20  # a rejects line holds at most 10,000 characters of raw text


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether `a` and `b` name the same file: one path once resolved, or one inode."""
    pa_, pb = Path(a), Path(b)
    if pa_.resolve() == pb.resolve():
        return True
    try:
        sa, sb = pa_.stat(), pb.stat()
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def is_rejects_file(path: str | Path) -> bool:
    """Whether the regular file `path` is empty or starts with a rejects record."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(_FIRST_LINE_LIMIT)
    except OSError:
        return False
    if not first:
        return True
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and all(k in record for k in REJECTS_FIELDS)


def is_report_page(path: str | Path) -> bool:
    """Whether the regular file `path` is an HTML report page smsanalytics wrote.

    Pages carry :data:`PAGE_MARKER` in their head; pages written before it was added are
    recognised by their doctype and title.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_LIMIT).decode("utf-8", "replace")
    except OSError:
        return False
    return PAGE_MARKER in head or (
        head.startswith("<!DOCTYPE html>") and _OLD_PAGE_TITLE in head
    )


def _is_stdin(st: os.stat_result) -> bool:
    """Whether `st` is the file standard input reads (``convert - < ds.rejects.jsonl``)."""
    try:
        fd = sys.stdin.fileno()
        own = os.fstat(fd)
    except (AttributeError, ValueError, OSError):  # closed, or not a real file (a buffer)
        return False
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


def _kind_of(mode: int) -> str | None:
    """What a file of `mode` is, when it is something no output may replace."""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def check_output_path(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    kind: str = "file",
    ours: Callable[[Path], bool] | None = None,
    within: Iterable[str | Path] = (),
) -> Path:
    """Refuse an output path that is an input, a link, a device or not ours; return it.

    Parameters
    ----------
    path : str or Path
        Where the output would go.
    inputs : iterable of str or Path
        What the same command reads (files or folders; ``-``, standard input, is compared
        by its file: ``convert - < ds.rejects.jsonl`` may not write that file). The output
        may be none of them; a folder output may not be one of the folders either.
    kind : {'file', 'rejects', 'directory', 'dataset'}
        A file that is replaced whole (a report), a rejects file (an existing one must be
        a rejects file), a folder files are written into (CSV tables), a dataset
        directory (what is in an existing one is checked by its writer).
    ours : callable, optional
        For an existing regular file: whether we wrote it (a report recognising its own
        page). Refused when it says no. Rejects files are recognised without it.
    within : iterable of str or Path
        Folders the output may not be inside: the dataset a report reads (its folder is
        replaced by each conversion, and a file there would be read as part of it), the
        archive a receiver writes.

    Returns
    -------
    Path
        `path`, absolute (links not resolved).

    Raises
    ------
    OutputPathError
        If writing `path` could destroy something that is not an earlier output.

    Examples
    --------
    >>> check_output_path("/dev/null", kind="rejects")
    Traceback (most recent call last):
    ...
    smsanalytics.errors.OutputPathError: /dev/null: is a device; choose a regular file
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    wants_dir = kind in ("directory", "dataset")
    target = Path(path).absolute()
    try:
        st = target.lstat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(str(path), f"cannot be checked: {exc.strerror or exc}") from exc
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise OutputPathError(
                str(path),
                f"is a symbolic link (to {os.readlink(target)}); give the path it points to, "
                "or another one",
            )
        special = _kind_of(st.st_mode)
        if special:
            place = "a directory" if wants_dir else "a regular file"
            raise OutputPathError(str(path), f"is {special}; choose {place}")
        if wants_dir and not stat.S_ISDIR(st.st_mode):
            raise OutputPathError(str(path), "exists and is not a directory")
        if not wants_dir and stat.S_ISDIR(st.st_mode):
            raise OutputPathError(str(path), "is a directory; give a file name")
    for given in inputs:
        if str(given) == "-":
            if st is not None and _is_stdin(st):
                raise OutputPathError(
                    str(path), "is standard input (-) of this command; choose another output"
                )
            continue
        if same_file(target, given):
            raise OutputPathError(
                str(path), f"is one of the inputs ({given}); choose another output"
            )
    for folder in within:
        if _inside(target, Path(folder)):
            raise OutputPathError(
                str(path), f"is inside {folder}, which this command also uses; choose another place"
            )
    if st is not None and stat.S_ISREG(st.st_mode):
        if kind == "rejects" and not is_rejects_file(target):
            raise OutputPathError(
                str(path),
                "exists and is not a rejects file (its first line is not a rejects record); "
                "choose another name",
            )
        if ours is not None and not ours(target):
            raise OutputPathError(
                str(path), "exists and was not written by smsanalytics; choose another name"
            )
    return target


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or below it, once both are resolved."""
    here, there = path.resolve(), folder.resolve()
    return here == there or there in here.parents


def write_atomically(
    path: str | Path,
    write: Callable[[IO[str]], None],
    *,
    ours: Callable[[Path], bool] | None = None,
) -> Path:
    """Replace the text file `path` by what `write` writes, whole or not at all.

    `path` is checked first (:func:`check_output_path`: never a device, a FIFO, a link
    or, with `ours`, a file we did not write). The text goes to a new file beside it,
    which is flushed to disk and renamed over `path`; on any error or Ctrl-C the new
    file is removed and `path` is as it was.

    Parameters
    ----------
    path : str or Path
        The file to write (its folder must exist).
    write : callable
        Called once with the open text stream (UTF-8, newlines as written).
    ours : callable, optional
        For an existing file: whether we wrote it (see :func:`check_output_path`).

    Returns
    -------
    Path
        `path`, absolute.
    """
    target = check_output_path(path, kind="file", ours=ours)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        # "x": a file of that name appearing in between is an error, never written into.
        with open(tmp, "x", encoding="utf-8", newline="") as fh:
            try:  # the replaced file's permissions (a report kept private stays so)
                os.chmod(fh.fileno(), stat.S_IMODE(target.stat().st_mode))
            except FileNotFoundError:
                pass
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return target


def _fsync_dir(path: Path) -> None:
    """Flush the entries of the folder `path` (a rename is durable once its folder is)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse: the rename still holds
        pass
    finally:
        os.close(fd)


def _not_a_file(mode: int) -> str | None:
    """What a file of `mode` is, when it is not a regular file (None when it is one)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    return _kind_of(mode) or "not a regular file"


def read_regular_file(path: str | Path, limit: int) -> bytes:
    """The first ``limit + 1`` bytes of the small regular file `path` (a key, a secret).

    Anything else is refused by its kind before it is opened: a named pipe would block the
    open or the read forever, a device such as ``/dev/zero`` never ends. The file is opened
    without blocking and checked again, in case it was swapped in between. Reading one byte
    more than `limit` lets the caller tell a file that is too large.

    Raises
    ------
    InputError
        If `path` is not a regular file or cannot be read.
    """

    def refuse(kind: str) -> InputError:
        return InputError(str(path), f"is {kind}, not a regular file")

    try:
        kind = _not_a_file(os.stat(path).st_mode)
        if kind is not None:
            raise refuse(kind)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    try:
        kind = _not_a_file(os.fstat(fd).st_mode)
        if kind is not None:
            raise refuse(kind)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise InputError(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
