"""Tests of smsanalytics.audit: each kind of discrepancy found once, with exact amounts."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsanalytics import queries
from smsanalytics.audit import (
    CHECKS,
    AuditResult,
    above_rate,
    audit,
    billing_mismatches,
    usual_rate,
)
from smsanalytics.errors import ArgumentError
from smsanalytics.sample import SampleManifest
from smsanalytics.schema import MESSAGE_SCHEMA
from smsanalytics.segments import analyze_array

from .conftest import assert_one_line_error, run

FR_RATE = Decimal("0.8925")  # cents per part, France, March 2025 (the sample's rate card)
XSS = "<script>alert(1)</script>"
GSM_100 = ("Bonjour, je confirme le rendez-vous de demain a 10h30 au cabinet. "
           "Merci et bonne soiree a vous tous!")
GSM_161 = ("Bonjour, suite a votre appel je vous confirme que la commande est bien partie "
           "ce matin par colis suivi; vous devriez la recevoir sous 48h ouvrees. Cordialement!!")
SMART_100 = ("\u201cBonjour\u201d \u2014 je confirme le rendez-vous de demain a 10h30, "
             "merci beaucoup et a tres vite\u2026")
ME = "+33639983040"


def _t(day: int, month: int = 3) -> datetime:
    return datetime(2025, month, day, 9, tzinfo=UTC)


# (sid, day, from, country, network, source, encoding, parts, cost, body)
# What each row plants, worked out by hand (FR's usual rate in March is 0.8925 per part):
# * d1: a 100-character GSM body billed 2 parts: 1 part over-billed, 1.785 / 2 at stake.
# * d2: a body with a curly apostrophe billed gsm: it needs unicode (same single part);
#   with a straight apostrophe it would be GSM (smart punctuation, no part saved).
# * d3: a 161-character GSM body billed 1 part: it needs 2 (under-billed, nothing at stake).
# * d4: 1.785 for 1 part, twice FR's usual rate: 0.8925 above it.
# * d5: network 99999, which no table knows.
# * d6: +33639980042, in a range libphonenumber calls invalid (Callr's documented example).
# * d7: an Actions record declaring fromCountry BE for a French mobile.
# * d8: a unicode body of 2 parts that is 1 GSM part with plain quotes, dash and dots.
_ROWS: list[tuple[Any, ...]] = [
    ("c1", 2, "+33612345601", "FR", "20801", "webhook", "gsm", 1, "0.8925", "Bonjour"),
    ("c2", 3, "+33612345602", "FR", "20801", "webhook", "gsm", 1, "0.8925", "OK merci"),
    ("c3", 4, "+33612345603", "FR", "20801", "webhook", "gsm", 1, "0.8925", "Oui"),
    ("c4", 5, "+33612345601", "FR", "20801", "webhook", "gsm", 1, "0.8925", "A demain"),
    ("c5", 6, "+33612345604", "FR", "20801", "webhook", "unicode", 1, "0.8925",
     "Merci \U0001f600"),
    ("c6", 7, "+32470123456", "BE", "20601", "webhook", "gsm", 1, "1.05", "Dank u"),
    ("c7", 2, "+33612345605", "FR", "20801", "webhook", "gsm", 1, "0.945", "Avril"),
    ("d1", 10, "+33612345606", "FR", "20801", "webhook", "gsm", 2, "1.785", GSM_100),
    ("d2", 11, "+33612345607", "FR", "20801", "webhook", "gsm", 1, "0.8925",
     "C\u2019est bon"),
    ("d3", 12, "+33612345608", "FR", "20801", "webhook", "gsm", 1, "0.8925", GSM_161),
    ("d4", 13, "+33612345609", "FR", "20801", "webhook", "gsm", 1, "1.785", XSS),
    ("d5", 14, "+33612345610", "FR", "99999", "webhook", "gsm", 1, "0.8925", "Salut"),
    ("d6", 15, "+33639980042", "FR", "20801", "webhook", "gsm", 1, "0.8925", "Coucou"),
    ("d7", 16, "+33612345611", "BE", "20801", "actions", "gsm", 1, "0.8925", "Bonsoir"),
    ("d8", 17, "+33612345612", "FR", "20801", "webhook", "unicode", 2, "1.785", SMART_100),
]


def rows() -> list[dict[str, Any]]:
    """The fixture's messages; c7 is in April, the rest in March."""
    out = []
    for sid, day, frm, country, network, source, enc, parts, cost, body in _ROWS:
        out.append({
            "sid": sid, "direction": "inbound", "created_at": _t(day, 4 if sid == "c7" else 3),
            "from_number": frm, "to_number": ME, "from_country": country, "network": network,
            "source": source, "encoding": enc, "parts": parts, "cost_cents": Decimal(cost),
            "body_text": body, "status": "delivered",
            "from_type": "MOBILE" if source == "actions" else None,
        })
    return out


def table() -> pa.Table:
    """The fixture with MESSAGE_SCHEMA; enrichment columns are null (computed on the fly)."""
    return pa.Table.from_pylist(rows(), schema=MESSAGE_SCHEMA)


def enriched() -> pa.Table:
    """The fixture with the computed columns stored, as a conversion writes them."""
    t = table()
    computed = analyze_array(t.column("body_text"))
    for name in computed.column_names:
        i = t.schema.get_field_index(name)
        t = t.set_column(i, t.schema.field(i), computed.column(name).cast(t.schema.field(i).type))
    return t


@pytest.fixture(scope="module")
def result() -> AuditResult:
    return audit(table(), currency="EUR")


def _summary(a: AuditResult) -> dict[str, dict[str, Any]]:
    return a.summary.set_index("check").astype(object).to_dict(orient="index")


def test_fixture_bodies_are_what_the_comments_say() -> None:
    assert len(GSM_100) == 100 and len(GSM_161) == 161
    computed = analyze_array(pa.array([GSM_100, GSM_161, SMART_100])).to_pylist()
    assert [(c["computed_encoding"], c["computed_parts"]) for c in computed] == [
        ("gsm", 1), ("gsm", 2), ("unicode", 2)]


# -- each check ----------------------------------------------------------------------------


def test_summary_counts_and_amounts(result: AuditResult) -> None:
    s = _summary(result)
    assert list(s) == list(CHECKS)
    expected = {  # check: (messages, parts, cost, at stake)
        "parts_over_billed": (1, 1, Decimal("1.785"), FR_RATE),
        "parts_under_billed": (1, 1, FR_RATE, Decimal(0)),
        "encoding_mismatch": (1, None, FR_RATE, None),
        "above_rate": (1, 1, Decimal("1.785"), FR_RATE),
        "unknown_network": (1, None, FR_RATE, None),
        "invalid_number": (1, None, FR_RATE, None),
        "country_mismatch": (1, None, FR_RATE, None),
        "smart_punctuation": (2, 1, FR_RATE + Decimal("1.785"), FR_RATE),
    }
    for check, (messages, parts, cost, stake) in expected.items():
        row = s[check]
        got_parts = None if row["parts"] is None or row["parts"] != row["parts"] else row["parts"]
        assert (row["messages"], got_parts, row["cost_cents"]) == (messages, parts, cost), check
        assert (row["at_stake_cents"] if stake is not None else None) == stake, check
    assert not result.clean


def test_mismatches(result: AuditResult) -> None:
    m = result.mismatches.set_index("sid")
    assert set(m.index) == {"d1", "d2", "d3"}
    assert m.loc["d1", "finding"] == "parts_over_billed"
    assert (m.loc["d1", "parts"], m.loc["d1", "computed_parts"]) == (2, 1)
    assert m.loc["d1", "cost_at_stake_cents"] == Decimal("1.785") / 2
    assert m.loc["d2", "finding"] == "encoding_mismatch"
    assert (m.loc["d2", "encoding"], m.loc["d2", "computed_encoding"]) == ("gsm", "unicode")
    assert m.loc["d2", "unicode_chars"] == "\u2019 U+2019"
    assert (m.loc["d2", "lookalike_encoding"], m.loc["d2", "lookalike_parts"]) == ("gsm", 1)
    assert m.loc["d2", "cost_at_stake_cents"] == 0
    assert m.loc["d3", "finding"] == "parts_under_billed"
    assert m.loc["d3", "parts_difference"] == -1
    assert m.loc["d3", "cost_at_stake_cents"] == 0


def test_rates_by_month_country_and_network(result: AuditResult) -> None:
    r = result.rates.set_index(["month", "country", "network"])
    orange = r.loc[("2025-03", "FR", "20801")]
    # c1-c5, d1-d4, d6, d8: 13 parts for 12.495 cents.
    assert (orange["messages"], orange["parts"]) == (11, 13)
    assert orange["cost_cents"] == Decimal("12.495")
    exact = Fraction(Decimal("12.495")) / 13
    assert orange["rate_cents"] == Decimal(exact.numerator / Decimal(exact.denominator)
                                           ).quantize(Decimal("1e-10"))
    assert orange["network_operator"] == "Orange"  # looked up: the fixture has no operator
    assert orange["usual_rate_cents"] == FR_RATE
    assert r.loc[("2025-04", "FR", "20801"), "usual_rate_cents"] == Decimal("0.945")
    # BE in March: 0.8925 (d7, declared BE) and 1.05: the lower median.
    assert r.loc[("2025-03", "BE", "20601"), "usual_rate_cents"] == FR_RATE
    assert sum(result.rates["cost_cents"], Decimal(0)) == sum(
        (x["cost_cents"] for x in rows()), Decimal(0))


def test_above_rate(result: AuditResult) -> None:
    a = result.above_rate
    assert list(a["sid"]) == ["d4"]
    row = a.iloc[0]
    assert (row["month"], row["country"]) == ("2025-03", "FR")
    assert row["rate_cents"] == Decimal("1.785")
    assert row["usual_rate_cents"] == FR_RATE
    assert row["excess_cents"] == FR_RATE


def test_rate_margin_is_strict() -> None:
    # d4 is exactly twice the usual rate: a margin of 100 % does not flag it.
    assert above_rate(table(), rate_margin=Decimal(1)).empty
    assert list(above_rate(table(), rate_margin="0.99")["sid"]) == ["d4"]
    with pytest.raises(ValueError, match="rate_margin"):
        audit(table(), rate_margin=Decimal(-1))


def test_unknown_networks_invalid_numbers_and_country_mismatch(result: AuditResult) -> None:
    n = result.unknown_networks
    assert list(n["network"]) == ["99999"] and n["messages"].tolist() == [1]
    assert n["network_country"].isna().all()
    inv = result.invalid_numbers
    assert list(inv["from_number"]) == ["+33639980042"]
    assert (inv["type"].iloc[0], inv["country"].iloc[0], inv["valid"].iloc[0]) == (
        "UNKNOWN", "FR", False)
    c = result.country_mismatch
    assert c[["from_number", "declared_country", "number_country"]].values.tolist() == [
        ["+33612345611", "BE", "FR"]]
    assert c["cost_cents"].tolist() == [FR_RATE]


def test_smart_punctuation(result: AuditResult) -> None:
    s = result.smart_punctuation.set_index("sid")
    assert set(s.index) == {"d2", "d8"}  # c5's emoji stays unicode
    assert (s.loc["d8", "computed_parts"], s.loc["d8", "lookalike_parts"]) == (2, 1)
    assert s.loc["d8", "parts_saved"] == 1
    assert s.loc["d8", "cost_saved_cents"] == FR_RATE
    assert s.loc["d2", "parts_saved"] == 0 and s.loc["d2", "cost_saved_cents"] == 0
    assert "\u2014 U+2014" in s.loc["d8", "unicode_chars"]


# -- inputs and options --------------------------------------------------------------------


def test_stored_computed_columns_give_the_same_findings(result: AuditResult) -> None:
    stored = audit(enriched(), currency="EUR")
    assert stored.summary.equals(result.summary)
    assert list(stored.mismatches["sid"]) == list(result.mismatches["sid"])


def test_stored_computed_columns_are_trusted() -> None:
    t = enriched()
    i = t.schema.get_field_index("computed_parts")
    parts = t.column(i).to_pylist()
    parts[0] = 3  # c1 ("Bonjour", billed 1): a stored value says it needed 3
    t = t.set_column(i, t.schema.field(i), pa.array(parts, pa.int32()))
    assert set(billing_mismatches(t)["sid"]) == {"c1", "d1", "d2", "d3"}


def test_period_and_time_zone() -> None:
    april = audit(table(), start="2025-04-01", end="2025-05-01")
    assert april.mismatches.empty and april.above_rate.empty
    assert april.rates["month"].tolist() == ["2025-04"]
    assert int(april.summary["messages"].sum()) == 0 and april.clean
    # c7, 2025-04-02 09:00 UTC, is still April in Los Angeles; c1 (2025-03-02) March.
    la = audit(table(), tz="America/Los_Angeles")
    assert set(la.rates["month"]) == {"2025-03", "2025-04"}


def test_a_connection_is_left_as_it_was() -> None:
    con = queries.connect(table(), currency="EUR")
    before = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                         "ORDER BY 1").fetchall()
    a = audit(con)
    assert a.currency == "EUR"
    assert len(a.mismatches) == 3
    after = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                        "ORDER BY 1").fetchall()
    assert after == before
    assert con.execute("SELECT count(*) FROM messages").fetchall() == [(len(_ROWS),)]


def test_empty_source() -> None:
    a = audit(MESSAGE_SCHEMA.empty_table())
    assert a.clean and all(df.empty for n, df in a.tables().items() if n != "summary")
    assert len(a.summary) == len(CHECKS)


# -- outputs -------------------------------------------------------------------------------


def test_to_dict_is_json_and_exact(result: AuditResult) -> None:
    d = json.loads(json.dumps(result.to_dict()))
    assert d["currency"] == "EUR" and d["rate_margin"] == "0.25"
    over = next(r for r in d["tables"]["summary"] if r["check"] == "parts_over_billed")
    assert over["at_stake_cents"] == "0.8925" and over["messages"] == 1
    assert set(d["tables"]) == set(result.tables())
    assert d["tables"]["mismatches"][0]["created_at"].startswith("2025-03-10T09:00:00")


def test_html_is_escaped(result: AuditResult) -> None:
    page = result.to_html()
    assert XSS not in page and "&lt;script&gt;" in page
    assert result._repr_html_() == page
    assert "above rate (1)" in page


def test_csv_neutralises_formulas(result: AuditResult, tmp_path: Path) -> None:
    files = result.to_csv(tmp_path)
    assert {p.name for p in files} == {f"{n}.csv" for n in result.tables()}
    with (tmp_path / "mismatches.csv").open(encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert {r["from_number"] for r in got} == {"'+33612345606", "'+33612345607",
                                                "'+33612345608"}
    assert next(r for r in got if r["sid"] == "d1")["cost_at_stake_cents"] == "0.8925"


# -- the shipped sample --------------------------------------------------------------------


def test_sample_discrepancies_are_exactly_the_planted_ones(
    full_sample_dataset: Path, sample_manifest: SampleManifest
) -> None:
    a = audit(full_sample_dataset, currency="EUR")
    assert set(a.mismatches["sid"]) == set(sample_manifest.discrepancies)
    assert len(a.mismatches) == len(sample_manifest.discrepancies)
    # Everything else in the sample is clean: valid senders, known networks, one price
    # per country and month (France's price change on 2025-04-01 is not an anomaly).
    assert a.above_rate.empty and a.unknown_networks.empty
    assert a.invalid_numbers.empty and a.country_mismatch.empty
    fr = a.rates[a.rates["country"] == "FR"].drop_duplicates("month").set_index("month")
    assert fr.loc["2025-03", "usual_rate_cents"] == FR_RATE
    assert fr.loc["2025-04", "usual_rate_cents"] == Decimal("0.945")


def test_sample_without_computed_columns(full_sample_dataset: Path) -> None:
    t = queries.run_sql(full_sample_dataset, "SELECT * EXCLUDE (computed_parts, computed_encoding,"
                        " unicode_chars) FROM messages")
    stored = audit(full_sample_dataset)
    fly = audit(t)
    assert set(fly.mismatches["sid"]) == set(stored.mismatches["sid"])
    assert fly.summary.equals(stored.summary)


# -- the command ---------------------------------------------------------------------------


def test_cli_prints_the_summary(full_sample_dataset: Path, tmp_path: Path) -> None:
    r = run("audit", str(full_sample_dataset), "--currency", "EUR", "--csv", str(tmp_path / "csv"))
    assert r.exit_code == 0, r.output
    for check in CHECKS:
        assert check in r.stdout
    assert "mismatches (" in r.stdout
    assert (tmp_path / "csv" / "summary.csv").exists()
    stored = audit(full_sample_dataset)
    over = stored.summary.set_index("check").loc["parts_over_billed"]
    assert f"{over['at_stake_cents']:f}" in r.stdout


def test_cli_json(full_sample_dataset: Path) -> None:
    r = run("audit", str(full_sample_dataset), "--json", "--start", "2025-03-01",
            "--end", "2025-04-01", "--tz", "Europe/Paris")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["period"]["tz"] == "Europe/Paris"
    assert {row["Month (Europe/Paris)"] for row in d["tables"]["rates"]} == {"2025-03"}


def test_cli_json_and_csv_columns_read_in_words(full_sample_dataset: Path, tmp_path: Path) -> None:
    r = run("audit", str(full_sample_dataset), "--json", "--currency", "EUR",
            "--csv", str(tmp_path / "csv"))
    assert r.exit_code == 0, r.output
    tables = json.loads(r.stdout)["tables"]
    summary = {row["Check"]: row for row in tables["summary"]}
    over = summary["parts over-billed"]
    stored = audit(full_sample_dataset).summary.set_index("check").loc["parts_over_billed"]
    # Amounts in major units of the currency, exact: 16.3175 cents is 0.163175 EUR.
    assert Decimal(over["At stake (EUR)"]) == stored["at_stake_cents"] / 100
    assert "smart punctuation" in summary
    assert "Parts saved" in tables["smart_punctuation"][0]
    assert "Parts billed" in tables["mismatches"][0]
    with open(tmp_path / "csv" / "smart_punctuation.csv", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert {"Parts billed", "Parts saved", "Cost saved (EUR)", "Created (UTC)"} <= set(header)
    for name in ("summary", "mismatches", "rates"):
        with open(tmp_path / "csv" / f"{name}.csv", encoding="utf-8") as fh:
            header = next(csv.reader(fh))
        assert not [h for h in header if "_" in h], header  # no stored column names


def test_cli_table_shows_each_meaning_whole(full_sample_dataset: Path) -> None:
    r = run("audit", str(full_sample_dataset))
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())  # the meanings are wrapped over lines
    for meaning in CHECKS.values():
        assert " ".join(meaning.split()) in text
    assert "…" not in r.stdout.split("what each check means:")[1].split("\n\n")[0]


def test_cli_errors_exit_2(tmp_path: Path, full_sample_dataset: Path) -> None:
    r = run("audit", str(tmp_path / "missing"))
    assert r.exit_code == 2
    assert "missing" in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1
    r = run("audit", str(full_sample_dataset), "--tz", "Mars/Olympus")
    assert r.exit_code == 2 and "time zone" in r.stderr
    r = run("audit", str(full_sample_dataset), "--margin", "lots")
    assert r.exit_code == 2


def test_a_bad_zone_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="tz 'Mars/Olympus': unknown time zone"):
        audit(tmp_path / "missing", tz="Mars/Olympus")
    with pytest.raises(ArgumentError, match="tz 'UTC\\+1'"):
        above_rate(tmp_path / "missing", tz="UTC+1")
    with pytest.raises(ArgumentError, match="time zone"):
        billing_mismatches(tmp_path / "missing", tz="../../etc")


# -- a pseudonymised dataset: tokens are not numbers ---------------------------------------


@pytest.fixture(scope="module")
def pseudonymised(full_sample_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from smsanalytics.privacy import pseudonymize_dataset

    out = tmp_path_factory.mktemp("audit-anon") / "ds"
    key = bytes.fromhex("6d2f9a41c08e73b5e1947c2ad35f086b9c14e7a2508bd36f1ce49a7305b28d61")
    pseudonymize_dataset(full_sample_dataset, out, key=key)
    return out


def test_audit_of_a_pseudonymised_dataset_skips_the_number_checks(
        full_sample_dataset: Path, pseudonymised: Path) -> None:
    plain = audit(full_sample_dataset)
    a = audit(pseudonymised)
    senders = queries.run_sql(pseudonymised, "SELECT count(*) AS n FROM messages "
                              "WHERE from_number LIKE 'anon:%'")["n"].iloc[0]
    assert senders > 0 and a.pseudonymised_senders == senders
    assert a.invalid_numbers.empty and a.country_mismatch.empty
    summary = a.summary.set_index("check")
    for check in ("invalid_number", "country_mismatch"):
        assert summary.loc[check, "messages"] == 0
        assert f"not checked for the {senders:,} messages" in summary.loc[check, "meaning"]
    # The other checks find what they found on the plain data.
    assert set(a.mismatches["sid"]) == set(plain.mismatches["sid"])
    assert plain.pseudonymised_senders == 0
    assert "not checked" not in " ".join(plain.summary["meaning"])
    assert a.to_dict()["pseudonymised_senders"] == senders


def test_audit_command_says_the_number_checks_were_skipped(pseudonymised: Path) -> None:
    r = run("audit", str(pseudonymised))
    assert r.exit_code == 0, r.output
    assert "number checks skipped" in r.stdout and "pseudonymised" in r.stdout
    assert "invalid numbers (" not in r.stdout


# -- at scale: usual rates in SQL, detail rows capped ---------------------------------------


@given(st.lists(st.tuples(st.integers(1, 10**8), st.integers(1, 12), st.integers(1, 4)),
                min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_usual_rate_in_sql_is_the_lower_median_of_usual_rate(
        points: list[tuple[int, int, int]]) -> None:
    # (cost in millionths of a cent, parts, messages at that price point)
    from smsanalytics._analysis import select
    from smsanalytics.audit import usual_rates

    rows = [(Decimal(c).scaleb(-6), p) for c, p, n in points for _ in range(n)]
    con = duckdb.connect()
    con.register("r", pa.table({
        "from_country": pa.array(["FR"] * len(rows)),
        "cost_cents": pa.array([c for c, _ in rows], pa.decimal128(18, 6)),
        "parts": pa.array([p for _, p in rows], pa.int32())}))
    got = usual_rates(con, "r", select("UTC"), by_month=False)
    expected = usual_rate([(Fraction(Decimal(c).scaleb(-6)) / p, n) for c, p, n in points])
    assert got == {(None, "FR"): expected}


def test_detail_rows_are_capped_and_the_summary_counts_all(result: AuditResult) -> None:
    capped = audit(table(), currency="EUR", max_rows=1)
    assert capped.summary.equals(result.summary)
    for name, df in capped.tables().items():
        if name not in ("summary", "rates"):
            assert len(df) <= 1
            assert capped.found[name] == len(getattr(result, name))
            if "sid" in df.columns:  # the first rows by time, the same as uncapped
                assert list(df["sid"]) == list(getattr(result, name)["sid"].head(1))
    html = capped.to_html()
    n = len(result.mismatches)
    assert f"mismatches ({n:,})" in html
    assert f"kept the first 1 of these {n:,} rows" in html
    with pytest.raises(ArgumentError):
        audit(table(), max_rows=0)


@pytest.mark.parametrize("kept", ["4", "all"])
def test_cli_detail_rows_sets_the_rows_each_csv_table_keeps(full_sample_dataset: Path,
                                                            tmp_path: Path, kept: str) -> None:
    every = audit(full_sample_dataset, max_rows=None)
    total = len(every.mismatches)
    assert total > 4  # the sample's 30 planted discrepancies
    r = run("audit", str(full_sample_dataset), "--csv", str(tmp_path / "csv"),
            "--detail-rows", kept)
    assert r.exit_code == 0, r.output
    with open(tmp_path / "csv" / "mismatches.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == (total if kept == "all" else 4)
    note = f"mismatches: the first 4 of {total} rows"
    assert (note in r.stderr) == (kept == "4"), r.stderr


def test_cli_json_says_which_tables_were_cut(full_sample_dataset: Path) -> None:
    r = run("audit", str(full_sample_dataset), "--json", "--detail-rows", "3")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)  # the note goes to stderr: stdout stays one JSON object
    assert len(data["tables"]["mismatches"]) == 3
    assert "the first 3 of" in r.stderr


@pytest.mark.parametrize("value", ["0", "-1", "every", "lots", "1e3", ""])
def test_cli_detail_rows_refuses_what_is_not_a_count_or_all(full_sample_dataset: Path,
                                                            value: str) -> None:
    r = run("audit", str(full_sample_dataset), "--detail-rows", value)
    assert_one_line_error(r, "--detail-rows")


@pytest.mark.parametrize(("kept", "shown", "more", "hint"), [
    ("10", "3", 27, "--csv or --json write the first 10; --detail-rows all writes every one"),
    ("10", "20", 20, "--csv or --json write the first 10; --detail-rows all writes every one"),
    ("all", "3", 27, "use --csv or --json for all"),
    ("30", "3", 27, "use --csv or --json for all"),
])
def test_cli_table_counts_the_rows_not_shown_of_all_found(full_sample_dataset: Path, kept: str,
                                                          shown: str, more: int,
                                                          hint: str) -> None:
    # "mismatches (30)" then "... 7 more rows (use --csv or --json for all)": the count was
    # of the rows kept (10), not found (30), and --csv or --json would not write them all.
    r = run("audit", str(full_sample_dataset), "--max-rows", shown, "--detail-rows", kept)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    at = lines.index("mismatches (30)")
    line = next(x for x in lines[at:] if x.startswith("... "))
    assert line == f"... {more} more rows ({hint})", line


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(1, 70))
def test_the_rows_not_shown_are_counted_of_all_found(found: int, kept: int, shown: int) -> None:
    # The class of the finding above: whatever was found, kept (--detail-rows) and shown
    # (--max-rows), the table's last line counts what the terminal did not show of all found,
    # and says --csv/--json hold them all only when nothing was cut.
    import click.testing
    import pandas as pd

    from smsanalytics.cli import _print_table

    kept = min(kept, found)
    df = pd.DataFrame({"n": range(kept)})

    @click.command()
    def show() -> None:
        _print_table(df, max_rows=shown, found=found)

    lines = click.testing.CliRunner().invoke(show, catch_exceptions=False).output.splitlines()
    rows = lines[2:]
    more = [x for x in rows if x.startswith("... ")]
    assert len(rows) - len(more) == min(kept, shown)
    if found <= min(kept, shown):
        assert more == []
    else:
        assert more and more[0].startswith(f"... {found - min(kept, shown):,} more rows (")
        assert ("for all" in more[0]) == (kept == found)


@pytest.mark.parametrize(("args", "loaded"), [
    ((), 20), (("--max-rows", "5"), 5), (("--detail-rows", "3"), 3),
    (("--detail-rows", "all", "--max-rows", "7"), 7),
    (("--json",), 10_000), (("--json", "--detail-rows", "all"), None),
])
def test_cli_loads_only_the_finding_rows_it_prints_or_writes(full_sample_dataset: Path,
                                                             monkeypatch, args, loaded) -> None:
    # On the terminal only --max-rows rows of each table are shown: loading 10,000 (or,
    # with --detail-rows all, every finding of millions) into memory was for nothing.
    import smsanalytics.audit as audit_module

    asked = []
    real = audit_module.audit

    def spy(*a, **k):
        asked.append(k["max_rows"])
        return real(*a, **k)

    monkeypatch.setattr(audit_module, "audit", spy)
    r = run("audit", str(full_sample_dataset), *args)
    assert r.exit_code == 0, r.output
    assert asked == [loaded]
