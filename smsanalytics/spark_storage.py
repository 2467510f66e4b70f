"""Where the Spark conversion's data lives: local paths, or any file system URI.

This module owns the two ways the Spark conversion (:mod:`smsanalytics.spark_convert`)
reaches files that are not local POSIX paths (``hdfs://``, ``s3a://``, ``abfss://``,
``gs://``; and ``file://`` when tests route it this way):

* On the **driver**, :class:`HadoopStore` goes through Hadoop's ``FileSystem`` API on the
  session's JVM gateway: whatever file systems and credentials the session is configured
  with, it lists inputs, reads and writes the manifest and the rejects file, and deletes
  replaced files. It has no rename: object stores cannot rename atomically, and the
  conversion never needs one there (see :mod:`smsanalytics.spark_convert`).
* In the **tasks** (Python workers have no JVM), :func:`arrow_filesystem` opens the same
  URI with ``pyarrow.fs`` (pyarrow is already a core dependency): byte ranges of inputs are
  read, and written Parquet files uploaded, with it. The driver hands the tasks the Hadoop
  settings they need for that (:class:`TaskSettings`: endpoints and keys of ``s3a`` and
  ``abfs``), inside the job's closure, never in a log.

Why not Spark's own readers in the tasks: ``binaryFiles`` and the ``binaryFile`` source
read whole files (at most 2 GB each, as one value), ``newAPIHadoopFile`` with a text
format decodes lines (the raw bytes of a line that is not UTF-8, which the rejects file
keeps, are lost) and gives byte offsets, not line numbers; and none of them writes files
of our format. pyarrow.fs reads any byte range and writes any file, for the schemes above.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .dataset import MANIFEST_NAME, manifest_name, parse_manifest
from .errors import ArgumentError, DatasetError

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyspark.sql import SparkSession

__all__ = [
    "LOCAL_SCHEMES",
    "TASK_SCHEMES",
    "HadoopStore",
    "TaskSettings",
    "arrow_filesystem",
    "display_name",
    "is_local",
    "join",
    "local_path",
    "manifest_uris",
    "scheme_of",
    "spark_string",
]

#: Schemes written like a local POSIX path (renames, the dataset's lock). Tests empty it
#: to send ``file://`` URIs down the rename-free path that object stores take.
LOCAL_SCHEMES: frozenset[str] = frozenset({"file"})
#: Schemes the tasks can open with pyarrow.fs (see :func:`arrow_filesystem`).
TASK_SCHEMES = frozenset({"file", "s3a", "s3", "hdfs", "gs", "abfs", "abfss"})
_COPY_BLOCK = 8 << 20  # bytes moved at a time between file systems


def scheme_of(location: str | Path) -> str:
    """The URI scheme of `location`, lower case; ``""`` for a plain path."""
    text = str(location)
    if "://" not in text and not text.startswith("file:"):
        return ""
    return urlsplit(text).scheme.lower()


def is_local(location: str | Path) -> bool:
    """Whether `location` is written as a local POSIX path (a path, or a local scheme)."""
    scheme = scheme_of(location)
    return scheme == "" or scheme in LOCAL_SCHEMES


def local_path(location: str | Path) -> Path:
    """The path of a plain path or a ``file:`` location, taken as Spark takes it: as
    written, not percent-decoded (``file:///data/a b``)."""
    text = str(location)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    return Path(text[len("file:"):]) if text.startswith("file:") else Path(text)


def display_name(uri: str) -> str:
    """How an input found at the percent-encoded `uri` is named in ``source_file``: a
    ``file:`` URI by its path (as the local conversion names it), any other by its URI."""
    return unquote(urlsplit(uri).path) if scheme_of(uri) == "file" else uri


def join(base: str, relative: str) -> str:
    """The file `relative` (a plain name: ``month=2025-03/part-x.parquet``) under the
    directory URI `base` (percent-encoded, as :meth:`HadoopStore.qualify` gives it)."""
    return base.rstrip("/") + "/" + quote(relative)


def manifest_uris(out: str) -> tuple[str, str]:
    """Where the manifest of the dataset at the directory URI `out` (percent-encoded, as
    :meth:`HadoopStore.qualify` gives it) is: beside the folder, named as a local
    dataset's (:func:`smsanalytics.dataset.manifest_name`), and the legacy one inside it.

    Of the two, the one beside is newer: a conversion writes it, then deletes the other.

    Raises
    ------
    DatasetError
        If `out` is the root of its file system (a bucket): nothing is beside it.
    """
    parts = urlsplit(out)
    parent, _, name = parts.path.rstrip("/").rpartition("/")
    if not name:
        raise DatasetError(out, "is the root of its file system, with no place beside it "
                           "for the dataset's manifest; write the dataset into a folder")
    beside = urlunsplit((parts.scheme, parts.netloc,
                         f"{parent}/{quote(manifest_name(unquote(name)))}", "", ""))
    return beside, join(out, MANIFEST_NAME)


def spark_string(uri: str) -> str:
    """A percent-encoded URI as Spark's readers take a location: not encoded (Spark hands
    the string to Hadoop's ``Path(String)``, which would look for ``%20`` literally)."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, unquote(parts.path), "", ""))


def check_location(location: str | Path, name: str) -> None:
    """Refuse a URI whose scheme the tasks cannot open.

    Raises
    ------
    ArgumentError
        With the schemes that work.
    """
    scheme = scheme_of(location)
    if scheme and scheme not in TASK_SCHEMES:
        raise ArgumentError(
            name, str(location), "the Spark conversion reads and writes paths and "
            f"{', '.join(s + '://' for s in sorted(TASK_SCHEMES))} URIs")


@dataclass(frozen=True)
class FileEntry:
    """A file found by :meth:`HadoopStore.list_files`: its URI, size and name below the
    listed directory."""

    uri: str
    size: int
    relative: str


class HadoopStore:
    """Files through Hadoop's FileSystem API on the session's JVM (driver side only).

    A location given by the user is taken as Spark takes it (``s3a://b/my dir``, not
    percent-decoded) and made a percent-encoded URI by :meth:`qualify`; every other method
    takes such URIs, of any file system the session serves. A checksumming file system
    (Hadoop's local one) is used raw: no ``.crc`` files beside ours.
    """

    def __init__(self, spark: SparkSession) -> None:
        # The JVM gateway of the session (py4j objects: typed Any on purpose).
        self._jvm: Any = spark._jvm
        self._conf: Any = spark._jsc.hadoopConfiguration()

    def qualify(self, location: str) -> str:
        """The percent-encoded, fully qualified URI of a location written as for Spark."""
        path = self._jvm.org.apache.hadoop.fs.Path(location)
        return _uri_of(path.getFileSystem(self._conf).makeQualified(path))

    def _fs_path(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(self._jvm.java.net.URI(uri))
        fs = path.getFileSystem(self._conf)
        checksummed = self._jvm.java.lang.Class.forName("org.apache.hadoop.fs.ChecksumFileSystem")
        if checksummed.isInstance(fs):
            fs = fs.getRawFileSystem()
        return fs, path

    def kind(self, uri: str) -> str | None:
        """``"dir"``, ``"file"``, or None when nothing is there."""
        fs, path = self._fs_path(uri)
        if not fs.exists(path):
            return None
        return "dir" if fs.getFileStatus(path).isDirectory() else "file"

    def list_files(self, uri: str) -> list[FileEntry]:
        """Every file under the directory `uri`, recursively, sorted by relative name (the
        file itself if `uri` is one). Their URIs are percent-encoded, as URIs are."""
        fs, path = self._fs_path(uri)
        root = fs.makeQualified(path).toUri().getPath().rstrip("/") + "/"
        found = []
        files = fs.listFiles(path, True)
        while files.hasNext():
            status = files.next()
            qualified = status.getPath()
            relative = qualified.toUri().getPath()
            relative = relative[len(root):] if relative.startswith(root) else qualified.getName()
            found.append(FileEntry(_uri_of(qualified), int(status.getLen()), relative))
        return sorted(found, key=lambda f: PurePosixPath(f.relative).parts)

    def read_bytes(self, uri: str) -> bytes | None:
        """The whole (small) file at `uri`; None if there is none."""
        fs, path = self._fs_path(uri)
        if not fs.exists(path):
            return None
        try:
            stream = fs.open(path)
        except Exception:
            if not fs.exists(path):  # deleted since (a legacy manifest, by a conversion)
                return None
            raise
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def read_manifest(self, out: str) -> dict[str, Any]:
        """The manifest of the dataset at the directory URI `out` ({} if it has none): the
        one beside it, else a legacy one inside (:func:`manifest_uris`).

        Raises
        ------
        DatasetError
            If it is not JSON.
        """
        try:
            places = manifest_uris(out)
        except DatasetError:  # the root of a bucket: only a legacy manifest can be there
            places = ("", join(out, MANIFEST_NAME))
        for _ in range(2):  # twice: a conversion may write one and delete the other between
            for uri in filter(None, places):
                data = self.read_bytes(uri)
                if data is not None:
                    return parse_manifest(out, uri, data)
        return {}

    def write_file(self, uri: str, source: Path) -> None:
        """Write the local file `source` as `uri`, replacing it, in one ``create``.

        On an object store the object appears whole when the stream closes.
        """
        fs, path = self._fs_path(uri)
        stream = fs.create(path, True)
        try:
            with open(source, "rb") as local:
                while block := local.read(_COPY_BLOCK):
                    stream.write(bytearray(block))
        finally:
            stream.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        fs, path = self._fs_path(uri)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def delete(self, uri: str) -> bool:
        fs, path = self._fs_path(uri)
        return bool(fs.delete(path, False))

    def settings_for(self, *uris: str) -> TaskSettings:
        """What tasks need from this session's Hadoop settings to open `uris`."""
        wanted: dict[str, str] = {}
        for uri in uris:
            parts = urlsplit(uri)
            scheme = parts.scheme.lower()
            names: list[str] = []
            if scheme in ("s3a", "s3"):
                bucket = parts.netloc
                for key in _S3A_KEYS:
                    names += [f"fs.s3a.bucket.{bucket}.{key}", f"fs.s3a.{key}"]
            elif scheme in ("abfs", "abfss"):
                host = parts.netloc.partition("@")[2]
                names.append(f"fs.azure.account.key.{host}")
            for name in names:
                value = self._conf.get(name)
                if value is not None:
                    wanted[name] = str(value)
        return TaskSettings(wanted)


_S3A_KEYS = ("access.key", "secret.key", "session.token", "endpoint", "endpoint.region",
             "path.style.access")


def _uri_of(qualified: Any) -> str:
    # Path.toString() is not percent-encoded (a name holding "%41" would be read as "A").
    text = str(qualified.toUri().toString())
    if text.startswith("file:") and not text.startswith("file://"):
        return "file://" + text[len("file:"):]
    return text


class TaskSettings(Mapping[str, str]):
    """Hadoop settings the tasks need to open URIs (keys included): shown by name only."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<TaskSettings {sorted(self._values)}>"

    def first(self, *names: str) -> str | None:
        return next((self._values[n] for n in names if n in self._values), None)


def arrow_filesystem(uri: str, settings: TaskSettings) -> tuple[pafs.FileSystem, str]:
    """Open the percent-encoded `uri` with pyarrow.fs: the file system and the path in it.

    ``s3a``/``s3`` take Hadoop's ``fs.s3a.*`` settings (per bucket first), else the
    AWS default credentials of the machine; ``abfs``/``abfss`` the account key of
    ``fs.azure.account.key.<host>``, else Azure's default credentials; ``hdfs`` needs
    ``libhdfs`` and the Hadoop client (``HADOOP_HOME``, ``CLASSPATH``) on the executors,
    as a YARN node has; ``gs`` Google's default credentials.

    Raises
    ------
    ArgumentError
        For a scheme not in :data:`TASK_SCHEMES`.
    """
    import pyarrow.fs as pafs

    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    path = unquote(parts.path)
    if scheme == "":
        return pafs.LocalFileSystem(), uri
    if scheme == "file":
        return pafs.LocalFileSystem(), path
    if scheme in ("s3a", "s3"):
        return pafs.S3FileSystem(**s3_options(parts.netloc, settings)), parts.netloc + path
    if scheme == "hdfs":
        return pafs.HadoopFileSystem.from_uri(f"hdfs://{parts.netloc}/"), path
    if scheme == "gs":
        return pafs.GcsFileSystem(), parts.netloc + path
    if scheme in ("abfs", "abfss"):
        container, _, host = parts.netloc.partition("@")
        key = settings.first(f"fs.azure.account.key.{host}")
        options: dict[str, Any] = {"account_name": host.split(".")[0]}
        if key:
            options["account_key"] = key
        return pafs.AzureFileSystem(**options), container + path
    raise ArgumentError("uri", uri, f"tasks open {sorted(TASK_SCHEMES)} only")


def s3_options(bucket: str, settings: TaskSettings) -> dict[str, Any]:
    """pyarrow ``S3FileSystem`` arguments from Hadoop's ``fs.s3a.*`` settings."""
    def get(key: str) -> str | None:
        return settings.first(f"fs.s3a.bucket.{bucket}.{key}", f"fs.s3a.{key}")

    options: dict[str, Any] = {}
    if (access := get("access.key")) and (secret := get("secret.key")):
        options.update(access_key=access, secret_key=secret)
        if token := get("session.token"):
            options["session_token"] = token
    if endpoint := get("endpoint"):
        options["endpoint_override"] = endpoint
    if region := get("endpoint.region"):
        options["region"] = region
    if (get("path.style.access") or "").lower() == "false":
        options["force_virtual_addressing"] = True
    return options


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private local directory for one task's copies, on Spark's local disks if known."""
    roots = [r for r in os.environ.get("SPARK_LOCAL_DIRS", "").split(",") if r]
    path = Path(tempfile.mkdtemp(prefix="smsanalytics-", dir=roots[0] if roots else None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def download(fs: pafs.FileSystem, path: str, target: Path, start: int = 0,
             end: int | None = None) -> None:
    """Copy bytes [`start`, `end`) of `path` (to its end by default) into the local `target`."""
    with fs.open_input_file(path) as source, open(target, "wb") as out:
        source.seek(start)
        left = (source.size() if end is None else end) - start
        while left > 0:
            block = source.read(min(left, _COPY_BLOCK))
            if not block:
                break
            out.write(block)
            left -= len(block)


def upload(source: Path, fs: pafs.FileSystem, path: str) -> None:
    """Write the local file `source` as `path`, in one output stream (no rename: on an
    object store the object appears whole when the stream closes)."""
    with open(source, "rb") as local, fs.open_output_stream(path) as out:
        while block := local.read(_COPY_BLOCK):
            out.write(block)
