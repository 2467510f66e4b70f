"""Phone number metadata: Callr's documented numbers, numbering plans, junk, duplicates.

Types and places follow from the national numbering plans (a French 06 number is a mobile,
01 is Paris and its region, 08 9x is premium rate, a UK 07 4xx number a mobile, US 800 toll
free), not from running the code.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest

from smsanalytics.numbers import NUMBER_SCHEMA, NUMBER_TYPES, describe_number, describe_numbers


def row(number):
    return dict(zip(("country", "type", "location", "carrier", "valid"), describe_number(number),
                    strict=True))  # fmt: skip


@pytest.mark.parametrize("number", ["+33639980042", "+33639980044", "+33639983040"])
def test_callr_documentation_numbers(number):
    # outside the ranges libphonenumber knows, so not valid, but +33 is France alone
    r = row(number)
    assert r == {
        "country": "FR",
        "type": "UNKNOWN",
        "location": "France",  # what Callr puts in fromLocation
        "carrier": None,
        "valid": False,
    }


@pytest.mark.parametrize(
    ("number", "country", "kind", "location"),
    [
        ("+33612345678", "FR", "MOBILE", "France"),  # 06: mobile, located by country only
        ("+33142685300", "FR", "FIXED_LINE", "Paris"),  # 01 42: Paris
        ("+33899123456", "FR", "PREMIUM_RATE", "France"),  # 08 9x: premium rate
        ("+447400123456", "GB", "MOBILE", "United Kingdom"),  # 07 4xx: mobile
        ("+4915112345678", "DE", "MOBILE", "Germany"),  # 0151: mobile
        ("+32470123456", "BE", "MOBILE", "Belgium"),  # 047x: mobile
        ("+3225551234", "BE", "FIXED_LINE", "Brussels"),  # 02: Brussels
        ("+18005551234", "US", "TOLL_FREE", "United States"),  # 800: toll free
        ("+81312345678", "JP", "FIXED_LINE", "Tokyo"),  # 03: Tokyo
        ("+212612345678", "MA", "MOBILE", "Morocco"),  # 06: mobile (+212 shared with EH)
    ],
)
def test_valid_numbers(number, country, kind, location):
    r = row(number)
    assert (r["country"], r["type"], r["location"], r["valid"]) == (country, kind, location, True)


def test_mobile_numbers_have_their_allocated_carrier():
    assert row("+33612345678")["carrier"]  # a French mobile range is allocated to someone
    assert row("+33142685300")["carrier"] is None  # fixed lines have no carrier data


def test_invalid_number_in_a_shared_calling_code_gets_no_country():
    # +44 is shared by GB, GG, IM and JE: not guessed for a number no region accepts
    r = row("+447700900123")  # Ofcom's range reserved for drama
    assert (r["country"], r["type"], r["valid"]) == (None, "UNKNOWN", False)


def test_non_geographic_numbers_have_no_country():
    r = row("+80012345678")  # international freephone
    assert r["country"] is None and r["location"] is None


@pytest.mark.parametrize(
    "junk", ["", "abc", "+", "+33", "0612345678", "33612345678", "+999123456", "  ", "+33 6x"]
)
def test_junk_gives_nulls(junk):
    assert describe_number(junk) == (None, None, None, None, None)


def test_describe_numbers_one_row_per_distinct_number():
    table = describe_numbers(["+33612345678", None, "junk", "+33612345678", "+33639980042"])
    assert table.schema == NUMBER_SCHEMA
    assert table.column("number").to_pylist() == ["+33612345678", "junk", "+33639980042"]
    assert table.column("type").to_pylist() == ["MOBILE", None, "UNKNOWN"]
    assert table.column("valid").to_pylist() == [True, None, False]


def test_describe_numbers_accepts_empty_input():
    assert describe_numbers([]).num_rows == 0
    assert describe_numbers([None]).schema == NUMBER_SCHEMA


def test_type_names_are_libphonenumbers():
    assert set(NUMBER_TYPES) == {
        phonenumbers.PhoneNumberType.to_string(v) for v in phonenumbers.PhoneNumberType.values()
    }


def test_type_and_validity_agree_with_phonenumbers():
    # describe_number avoids repeating libphonenumber's work; the answers must not change
    rng = random.Random(2)
    stems = ["+331", "+336", "+337", "+338", "+4475", "+4420", "+1212", "+1800", "+7916",
             "+7495", "+4915", "+9198", "+2126", "+2217", "+5511"]  # fmt: skip
    for _ in range(400):
        number = rng.choice(stems) + "".join(rng.choice("0123456789") for _ in range(8))
        parsed = phonenumbers.parse(number)
        _, kind, _, _, valid = describe_number(number)
        assert valid == phonenumbers.is_valid_number(parsed)
        assert kind == phonenumbers.PhoneNumberType.to_string(phonenumbers.number_type(parsed))
        if valid:
            assert describe_number(number)[0] == phonenumbers.region_code_for_number(parsed)
