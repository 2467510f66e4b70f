"""The one SparkSession of the Spark tests: ``local[2]``, session-scoped, skipped without Java.

Imported by the ``test_spark*`` modules (``from tests._spark_session import spark``), so
every Spark test shares one JVM (starting one takes 6-8 s on the project machine).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] SparkSession: no UI, 2 shuffle partitions, this Python on the workers."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (the [spark] extra)")
    pytest.importorskip("sqlglot", reason="sqlglot is not installed (the [spark] extra)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17+, and no java is on PATH (nor JAVA_HOME set)")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("smsanalytics-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # no progress bars in test output
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # Not UTC on purpose: answers must not depend on the session's time zone.
        .config("spark.sql.session.timeZone", "America/New_York")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
