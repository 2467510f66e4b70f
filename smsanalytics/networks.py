"""Mobile network codes (MCC-MNC) to country and operator, offline.

This module owns the reading of Callr's ``network`` field: the MCC (mobile country code,
3 digits, ITU-T E.212) followed by the MNC (mobile network code, 2 or 3 digits) of the
operator that delivered the SMS, e.g. ``20801`` = MCC 208 (France), MNC 01 (Orange).

The table is ``smsanalytics/data/mccmnc.csv``: 3,038 codes compiled from the English
Wikipedia lists "Mobile country code" through the npm package ``mcc-mnc-list`` 1.1.11
(2024-12-13). Being Wikipedia content, the data file is licensed CC BY-SA 4.0 (attribution:
Wikipedia contributors); see ``smsanalytics/data/MCCMNC_SOURCE.md`` for source, date, licence
and the changes made.

Resolution rules:

* a 5-digit code is MCC + 2-digit MNC, a 6-digit code MCC + 3-digit MNC; the two are never
  converted into each other (``310260`` is T-Mobile US; ``31026`` is another, unknown, code);
* a code whose MNC is not in the table still gets the country of its MCC, with no operator;
* anything else (empty, not digits, another length) gets nulls.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib import resources

import pyarrow as pa

from .schema import column

__all__ = ["NETWORK_SCHEMA", "lookup_network", "lookup_networks", "mcc_country"]

#: One row per distinct network code.
NETWORK_SCHEMA = pa.schema(
    [
        column("network").field(),
        column("network_country").field(),
        column("network_operator").field(),
    ]
)


@cache
def _table() -> tuple[dict[str, tuple[str | None, str | None]], dict[str, str]]:
    """The shipped table: code -> (country, operator), and MCC -> country."""
    codes: dict[str, tuple[str | None, str | None]] = {}
    votes: dict[str, Counter[str]] = {}
    text = resources.files("smsanalytics").joinpath("data", "mccmnc.csv").read_text("utf-8")
    for row in csv.DictReader(text.splitlines()):
        country = row["country"] or None
        codes[row["mcc"] + row["mnc"]] = (country, row["operator"] or None)
        if country:
            votes.setdefault(row["mcc"], Counter())[country] += 1
    # an MCC's country: the one most of its networks are in (234: GB, not GG or JE)
    mccs = {mcc: c.most_common(1)[0][0] for mcc, c in votes.items()}
    return codes, mccs


def mcc_country(mcc: str) -> str | None:
    """Return the country (ISO 3166-1 alpha-2) a mobile country code is assigned to.

    Parameters
    ----------
    mcc : str
        Three digits, e.g. ``"208"``.

    Returns
    -------
    str or None
        ``"FR"`` for ``"208"``; None for an unknown or international MCC (901, ...).

    Examples
    --------
    >>> mcc_country("208")
    'FR'
    """
    return _table()[1].get(mcc)


def lookup_network(code: str | None) -> tuple[str | None, str | None]:
    """Return ``(country, operator)`` of one MCC-MNC code (see the module's rules).

    Examples
    --------
    >>> lookup_network("20801")
    ('FR', 'Orange')
    """
    if not code or len(code) not in (5, 6) or not code.isascii() or not code.isdigit():
        return None, None
    codes, mccs = _table()
    found = codes.get(code)
    if found is not None:
        return found
    return mccs.get(code[:3]), None


def lookup_networks(codes: Iterable[str | None]) -> pa.Table:
    """Describe each distinct network code once.

    Parameters
    ----------
    codes : iterable of str or None
        Callr ``network`` values (``"20801"``, ``"310260"``, ...); nulls are skipped.

    Returns
    -------
    pyarrow.Table
        :data:`NETWORK_SCHEMA`: ``network`` (each distinct code, in order of first
        appearance), ``network_country`` and ``network_operator`` (null when unknown).

    Examples
    --------
    >>> lookup_networks(["20801", "20801", "12345"]).to_pylist()
    [{'network': '20801', 'network_country': 'FR', 'network_operator': 'Orange'}, \
{'network': '12345', 'network_country': None, 'network_operator': None}]
    """
    distinct = list(dict.fromkeys(c for c in codes if c is not None))
    found = [lookup_network(c) for c in distinct]
    return pa.Table.from_arrays(
        [
            pa.array(distinct, NETWORK_SCHEMA.field("network").type),
            pa.array([f[0] for f in found], NETWORK_SCHEMA.field("network_country").type),
            pa.array([f[1] for f in found], NETWORK_SCHEMA.field("network_operator").type),
        ],
        schema=NETWORK_SCHEMA,
    )
