"""MCC-MNC lookup: ITU E.212 country assignments, main operators, resolution rules."""

from __future__ import annotations

import csv
import re
from importlib import resources

import pytest

from smsanalytics.networks import NETWORK_SCHEMA, lookup_network, lookup_networks, mcc_country
from smsanalytics.schema import column

# MCCs assigned by ITU-T E.212
MCCS = {
    "208": "FR", "262": "DE", "234": "GB", "214": "ES", "222": "IT", "206": "BE", "204": "NL",
    "228": "CH", "310": "US", "311": "US", "302": "CA", "724": "BR", "404": "IN", "405": "IN",
    "604": "MA", "608": "SN", "612": "CI", "250": "RU", "255": "UA", "420": "SA", "424": "AE",
    "602": "EG", "440": "JP", "460": "CN", "505": "AU", "655": "ZA",
}  # fmt: skip


@pytest.mark.parametrize(("mcc", "country"), sorted(MCCS.items()))
def test_mcc_countries(mcc, country):
    assert mcc_country(mcc) == country


@pytest.mark.parametrize(
    ("code", "country", "operator"),
    [
        ("20801", "FR", "Orange"),
        ("20810", "FR", "SFR"),
        ("20815", "FR", "Free"),
        ("20820", "FR", "Bouygues"),
        ("26201", "DE", "Telekom"),
        ("23415", "GB", "Vodafone"),
        ("310260", "US", "T-Mobile"),  # 3-digit MNC
        ("302720", "CA", "Rogers"),
        ("405840", "IN", "Jio"),  # India also uses 3-digit MNCs
        ("60400", "MA", "Orange"),
        ("60801", "SN", "Orange"),
        ("65501", "ZA", "Vodacom"),
        ("46000", "CN", "China Mobile"),
        ("44010", "JP", "docomo"),
    ],
)
def test_known_networks(code, country, operator):
    found_country, found_operator = lookup_network(code)
    assert found_country == country
    assert operator.lower() in found_operator.lower()


def test_unknown_mnc_keeps_the_country_of_its_mcc():
    assert lookup_network("20899") == ("FR", None)


def test_five_and_six_digit_codes_are_not_confused():
    assert lookup_network("310260")[1] is not None
    assert lookup_network("31026") == ("US", None)  # MNC "26" is not MNC "260"


@pytest.mark.parametrize(
    "code",
    ["", None, "12345", "2080", "2080123", "abcde", "208 1", "\uff12\uff10\uff18\uff10\uff11"],
)
def test_unknown_or_malformed_codes_give_nulls(code):
    assert lookup_network(code) == (None, None)


def test_lookup_networks_one_row_per_distinct_code():
    table = lookup_networks(["20801", None, "20801", "", "310260"])
    assert table.schema == NETWORK_SCHEMA
    assert [f.type for f in table.schema] == [
        column(n).type for n in ("network", "network_country", "network_operator")
    ]
    assert table.to_pylist() == [
        {"network": "20801", "network_country": "FR", "network_operator": "Orange"},
        {"network": "", "network_country": None, "network_operator": None},
        {"network": "310260", "network_country": "US", "network_operator": "T-Mobile"},
    ]
    assert lookup_networks([]).num_rows == 0


def test_shipped_table_is_well_formed():
    text = resources.files("smsanalytics").joinpath("data", "mccmnc.csv").read_text("utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) > 2000
    codes = [r["mcc"] + "-" + r["mnc"] for r in rows]
    assert len(codes) == len(set(codes))
    for r in rows:
        assert re.fullmatch(r"\d{3}", r["mcc"]) and re.fullmatch(r"\d{2,3}", r["mnc"])
        assert r["country"] == "" or re.fullmatch(r"[A-Z]{2}", r["country"])
    source = resources.files("smsanalytics").joinpath("data", "MCCMNC_SOURCE.md").read_text()
    assert "CC BY-SA 4.0" in source and "mcc-mnc-list" in source
