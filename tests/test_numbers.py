"""Phone number metadata: Callr's documented numbers, numbering plans, junk, duplicates.

Types and places follow from the national numbering plans (a French 06 number is a mobile,
01 is Paris and its region, 08 9x is premium rate, a UK 07 4xx number a mobile, US 800 toll
free), not from running the code.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, carrier, geocoder
from phonenumbers.geodata.locale import LOCALE_DATA

from smsanalytics.numbers import (
    NUMBER_SCHEMA,
    NUMBER_TYPES,
    _describe_e164,
    _describe_parsed,
    _split_e164,
    describe_number,
    describe_numbers,
)


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


# --- the fast path for canonical E.164 strings must say what phonenumbers.parse says ---------

# numbers where parse() does something beyond splitting off the calling code, or where the
# region, type, place or carrier take libphonenumber's less common routes
TRICKY = [
    "+390612345678", "+39061234567", "+3906698123456", "+393123456789", "+39312345678",
    "+5215512345678", "+525512345678", "+5218112345678", "+52155123456",
    "+5491123456789", "+541123456789", "+5411151234567", "+5493515123456", "+54935151234567",
    "+4402079460018", "+442079460018", "+447400123456", "+447624123456", "+441481123456",
    "+441534123456", "+447700900123", "+44180020123456", "+4418002012345",
    "+33061234567", "+3300612345678", "+330", "+3306", "+33612345678", "+33142685300",
    "+4901234", "+4930123456", "+4915112345678", "+86013812345678", "+8613812345678",
    "+36061234567", "+36301234567", "+3758029123456", "+375291234567", "+57112345678",
    "+55901234567890", "+5590211234567890", "+5511912345678", "+551133334444",
    "+378891234", "+37805491234567", "+67201234", "+6723012345", "+261201234567",
    "+2613312345", "+24106123456", "+2416123456", "+81000123456", "+810001234567",
    "+81312345678", "+819012345678", "+79161234567", "+77012345678", "+78123456789",
    "+78001234567", "+74951234567", "+12125550123", "+18005551234", "+12684601234",
    "+14165550123", "+11234567890", "+16845551234", "+18095551234", "+12425551234",
    "+212528123456", "+212612345678", "+4779123456", "+4791234567", "+358181234567",
    "+358401234567", "+5999123456", "+5997151234", "+262262123456", "+262269601234",
    "+80012345678", "+8001234567", "+882134567890", "+87012345678", "+979123456789",
    "+79004054670", "+358915553", "+2435735889",  # carrier / place only in Russian, Finnish...
    "+590590283535", "+590590295115", "+12684602544",  # valid in several regions / by leading

    "+999123456", "+0033612345678", "+3", "+33", "+336", "+3361", "+33612345678901234567",
    "+1" + "2" * 20, "+44" + "7" * 17, "+44" + "7" * 18, "+49" + "1" * 17,
    "+３３６１２３４５６７８", "+33 6 12 34 56 78", "+33-6-12-34-56-78", "++33612345678",
    " +33612345678 ", "+33612345678;ext=12", "+33612345678 x12", "+1 800 FLOWERS",
]  # fmt: skip


def english_name(region):
    names = LOCALE_DATA.get(region, {})
    name = names.get("en", "")
    if name.startswith("*"):
        name = names.get(name[1:], "")
    return name or None


def reference(number):
    """What describe_number must say, from phonenumbers' public API alone."""
    text = number.strip()
    if not text.startswith("+"):
        return (None, None, None, None, None)
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return (None, None, None, None, None)
    kind = phonenumbers.number_type(parsed)
    valid = phonenumbers.is_valid_number(parsed)
    regions = phonenumbers.region_codes_for_country_code(parsed.country_code)
    if valid:
        region = phonenumbers.region_code_for_number(parsed)
    else:
        region = regions[0] if len(regions) == 1 else None
    country = region if region not in (None, "001") else None
    location = ""
    if valid and phonenumbers.is_number_geographical(parsed):
        location = geocoder.description_for_valid_number(parsed, "en")
    if not location and country:
        location = english_name(country) or ""
    operator = ""
    if kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
                PhoneNumberType.PAGER):  # fmt: skip
        operator = carrier.name_for_valid_number(parsed, "en")
    name = PhoneNumberType.to_string(kind)
    return (country, name, location or None, operator or None, valid)


def many_numbers(count_per_code=12, seed=3):
    """Random numbers of every calling code, and libphonenumber's examples redrawn."""
    rng = random.Random(seed)
    digits = "0123456789"
    out = []
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(count_per_code):
            lead = rng.choice(["0", "1", "", "", ""])
            out.append(f"+{code}{lead}" + "".join(rng.choices(digits, k=rng.randint(1, 14))))
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                out.append(e164)
                out.append(e164[:-3] + "".join(rng.choices(digits, k=3)))
    return out


@pytest.mark.parametrize("number", TRICKY)
def test_tricky_numbers_match_phonenumbers(number):
    assert describe_number(number) == reference(number)


def test_many_numbers_match_phonenumbers():
    numbers = many_numbers()
    assert len(numbers) > 4000
    mismatches = [n for n in numbers if describe_number(n) != reference(n)]
    assert mismatches == []


def test_fast_split_is_what_parse_reads():
    # whenever the fast path reads a number itself, parse() must give that very number
    split_count = 0
    for number in TRICKY + many_numbers(count_per_code=8, seed=4):
        split = _split_e164(number.strip())
        if split is None:
            continue
        split_count += 1
        info, nsn = split
        parsed = phonenumbers.parse(number.strip(), None)
        expected = phonenumbers.PhoneNumber(country_code=info.code, national_number=int(nsn))
        assert parsed == expected, number
        assert phonenumbers.national_significant_number(parsed) == nsn, number
    assert split_count > 2000


@pytest.mark.parametrize(
    "number",
    [
        "+390612345678",  # Italian leading zero
        "+4402079460018",  # UK trunk 0 written after +44
        "+4901234",  # parse strips the 0
        "+5411151234567",  # Argentine 15 transformed to 9
        "+55901234567890",  # Brazilian carrier selection 90 stripped
        "+378891234",  # San Marino: 0549 put in front
        "+67201234",  # Norfolk Island: 3 put in front
        "+86013812345678",  # Chinese trunk 0
        "+0033612345678",  # no calling code starts with 0
        "+999123456",  # unknown calling code
        "+33612345678901234567",  # too long
        "+336",  # too short
        "+３３６１２３４５６７８",  # full-width digits
        "+33 6 12 34 56 78",
        "++33612345678",
    ],
)
def test_fast_path_leaves_what_parse_may_change_to_parse(number):
    assert _split_e164(number) is None
    assert _describe_e164(number) is None
    assert describe_number(number) == reference(number)


@pytest.mark.parametrize(
    "number",
    ["+33612345678", "+447400123456", "+12125550123", "+14165550123", "+5491123456789",
     "+79161234567", "+77012345678", "+80012345678", "+4779123456", "+393123456789"],
)  # fmt: skip
def test_fast_path_reads_canonical_numbers_and_agrees_with_parse(number):
    row = _describe_e164(number)
    assert row is not None  # the fast path is taken...
    assert row == _describe_parsed(number) == reference(number)  # ...and changes nothing


def test_fast_and_parse_paths_agree_on_random_digits():
    rng = random.Random(5)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    fast = 0
    for _ in range(3000):
        number = f"+{rng.choice(codes)}" + "".join(rng.choices("0123456789", k=rng.randint(1, 15)))
        row = _describe_e164(number)
        if row is not None:
            fast += 1
            assert row == _describe_parsed(number), number
    assert fast > 1000
