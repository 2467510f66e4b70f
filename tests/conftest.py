"""Shared fixtures and helpers: Callr's own examples, the shipped sample, the CLI, processes.

Helpers are plain functions (``from .conftest import run``); datasets converted once per
session are fixtures, to be read and never written (a test that changes a dataset makes
its own in ``tmp_path``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pyarrow as pa
    from click.testing import Result

    from smsanalytics.ingest import ConversionSummary
    from smsanalytics.sample import SampleManifest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SAMPLE = ROOT / "sample_data"
CALLR_EXAMPLES = sorted(
    p for p in DATA.iterdir() if p.name.startswith(("webhook-", "actions-"))
)


def run(*args: str | Path, input: str | bytes | None = None) -> Result:
    """Run the command line in this process, named as the installed ``smsanalytics``
    command (hints name the program); a traceback fails the test, never hides in the
    output (``catch_exceptions=False``)."""
    from click.testing import CliRunner

    from smsanalytics.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], input=input, prog_name="smsanalytics",
                              catch_exceptions=False)


def command(*args: str | Path) -> list[str]:
    """The command line ``python -m smsanalytics ARGS``, for a process of its own."""
    return [sys.executable, "-m", "smsanalytics", *map(str, args)]


def run_process(*args: str | Path, input: str | None = None, timeout: float = 120,
                **options: Any) -> subprocess.CompletedProcess[str]:
    """Run the command line in a process of its own, as a shell runs it; text captured.

    A failure is the caller's to check (``returncode``); `timeout` [s] guards against a
    hang, it is not a timing a test asserts. `options` go to :func:`subprocess.run`
    (``stdin=``, ``preexec_fn=``, ...).
    """
    return subprocess.run(command(*args), input=input, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False, **options)


def convert_command(inputs: list[Path], out: Path) -> list[str]:
    """The command converting `inputs` into `out` in a process of its own, quietly."""
    return command("convert", *inputs, "--out", out, "--quiet")


def signal_when(cmd: list[str], ready: Callable[[float], bool], sig: int = signal.SIGINT,
                timeout: float = 60) -> tuple[int, str, bool]:
    """Run `cmd`; send `sig` once ``ready(elapsed)`` holds (or after `timeout` seconds).

    Returns (exit code, standard error, whether the signal was sent). The timeout guards
    against a hang; it is not a timing the test asserts.
    """
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    started, sent = time.monotonic(), False
    try:
        while proc.poll() is None and not sent:
            elapsed = time.monotonic() - started
            if ready(elapsed) or elapsed > timeout:
                proc.send_signal(sig)
                sent = True
            time.sleep(0.002)
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err, sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def dataset_state(out: Path) -> pa.Table:
    """Every row of the dataset `out`, in a stable order: two states compare with equals."""
    from smsanalytics import dataset

    return dataset.read_dataset_table(out).sort_by("sid")


def beside(out: Path, kind: str) -> list[Path]:
    """The work folders of a conversion next to `out` (`kind`: ``stage`` or ``version``)."""
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.{kind}-")]


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample's events (``sample_data/events``), converted once: read only."""
    import smsanalytics

    out = tmp_path_factory.mktemp("sample") / "ds"
    smsanalytics.convert([SAMPLE / "events"], out, quiet=True)
    return out


@pytest.fixture(scope="session")
def full_sample_conversion(tmp_path_factory: pytest.TempPathFactory) -> ConversionSummary:
    """The whole shipped sample (``sample_data``: every source and container) converted
    once: what the conversion returned. Its dataset is ``full_sample_dataset``."""
    import smsanalytics

    out = tmp_path_factory.mktemp("full-sample") / "ds"
    return smsanalytics.convert([SAMPLE], out, quiet=True)


@pytest.fixture(scope="session")
def full_sample_dataset(full_sample_conversion: ConversionSummary) -> Path:
    """The whole shipped sample (``sample_data``), converted once: read only."""
    assert full_sample_conversion.out is not None
    return Path(full_sample_conversion.out)


@pytest.fixture(scope="session")
def sample_manifest(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    """The generator's manifest of the shipped sample, written again the way
    ``sample_data`` was made (3,000 messages, seed 7): read only."""
    from smsanalytics.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample-again") / "sample", n=3000, seed=7)


@pytest.fixture(scope="session")
def callr_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Callr's own examples (``tests/data``), converted once: read only."""
    import smsanalytics

    out = tmp_path_factory.mktemp("callr") / "ds"
    smsanalytics.convert([DATA], out, quiet=True)
    return out


def assert_one_line_error(result, *words: str) -> None:
    """A CLI result failed the project's way: exit 2, one line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for w in words:
        assert w in result.stderr, result.stderr


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def write(tmp_path: Path):
    """Write text or bytes to a file under tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
        return path

    return _write
