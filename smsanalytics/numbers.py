"""Phone number metadata, offline: country, type, location and allocated carrier.

This module owns what the project says about a phone number, as Callr's Actions ``sms``
object does (``fromType``, ``fromCountry``, ``fromLocation``) for the webhook records that
lack it. Everything comes from the metadata shipped with the ``phonenumbers`` package (a port
of Google's libphonenumber); nothing is looked up on the network.

Decisions, made here:

* Only international (E.164) numbers, with a leading ``+``, are read; anything else (a short
  code, an alphanumeric sender, a national number without its country) is not guessed and
  gets nulls.
* ``type`` is libphonenumber's type name (``MOBILE``, ``FIXED_LINE``, ...), ``UNKNOWN`` for a
  number libphonenumber does not call valid. Such numbers still load: Callr's own documented
  examples (``+33639980042``) are in ranges libphonenumber rejects.
* ``country`` (ISO 3166-1 alpha-2) is the region libphonenumber assigns to a valid number. For
  a number it does not call valid, it is the region of the calling code only when that code
  belongs to a single region (+33 is France); a code shared by several regions (+1, +7, +44,
  +212, ...) leaves it null rather than guessing. Non-geographic codes (+800, +882, ...)
  have no country.
* ``location`` is the English description of libphonenumber's geocoder (a city such as
  ``Paris`` or a region, for fixed lines); when it has none (most mobiles), the English name
  of the country, as Callr's ``fromLocation`` says ``France`` for a French mobile.
* ``carrier`` is the operator the number's *range was allocated to*; numbers are portable, so
  it is not necessarily the operator serving the number today. Null when unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import phonenumbers
import pyarrow as pa
from phonenumbers import PhoneNumberType, carrier, geocoder
from phonenumbers.geodata.locale import LOCALE_DATA

__all__ = ["NUMBER_SCHEMA", "NUMBER_TYPES", "describe_number", "describe_numbers"]

#: libphonenumber's type names, as Callr writes them in ``fromType`` / ``toType``.
NUMBER_TYPES: tuple[str, ...] = (
    "MOBILE",
    "FIXED_LINE",
    "FIXED_LINE_OR_MOBILE",
    "TOLL_FREE",
    "PREMIUM_RATE",
    "SHARED_COST",
    "VOIP",
    "PERSONAL_NUMBER",
    "PAGER",
    "UAN",
    "VOICEMAIL",
    "UNKNOWN",
)

#: One row per distinct number.
NUMBER_SCHEMA = pa.schema(
    [
        pa.field("number", pa.string(), metadata={"description": "The number as given."}),
        pa.field("country", pa.string(), metadata={"description": "ISO 3166-1 alpha-2."}),
        pa.field("type", pa.string(), metadata={"description": "libphonenumber type name."}),
        pa.field("location", pa.string(), metadata={"description": "Geocoder text, English."}),
        pa.field(
            "carrier",
            pa.string(),
            metadata={"description": "Operator the range was allocated to (not ported)."},
        ),
        pa.field("valid", pa.bool_(), metadata={"description": "libphonenumber calls it valid."}),
    ]
)

_NON_GEOGRAPHIC = "001"
# number_type() finds the region again; its helper takes the metadata we already have
_type_helper = getattr(phonenumbers.phonenumberutil, "_number_type_helper", None)
_Row = tuple[str | None, str | None, str | None, str | None, bool | None]
_NOTHING: _Row = (None, None, None, None, None)
# types whose ranges libphonenumber knows the allocated carrier of
_MOBILE_TYPES = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER}
)


@lru_cache(maxsize=512)
def _country_name(region: str) -> str | None:
    """English name of a region, from the locale data shipped with phonenumbers."""
    names = LOCALE_DATA.get(region, {})
    name = names.get("en", "")
    if name.startswith("*"):  # the data shares a name between languages: "*aa" points to "aa"
        name = names.get(name[1:], "")
    return name or None


@lru_cache(maxsize=1024)
def _single_region(calling_code: int) -> str | None:
    regions = phonenumbers.region_codes_for_country_code(calling_code)
    return regions[0] if len(regions) == 1 and regions[0] != _NON_GEOGRAPHIC else None


def _number_type(parsed: phonenumbers.PhoneNumber, region: str | None) -> int:
    """``phonenumbers.number_type`` for a number whose region is already known."""
    if region is None or _type_helper is None:
        return phonenumbers.number_type(parsed) if region is not None else PhoneNumberType.UNKNOWN
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        parsed.country_code, region
    )
    if metadata is None:
        return PhoneNumberType.UNKNOWN
    return _type_helper(phonenumbers.national_significant_number(parsed), metadata)


def describe_number(number: str | None) -> _Row:
    """Return ``(country, type, location, carrier, valid)`` for one number.

    Parameters
    ----------
    number : str or None
        A phone number in E.164 form, e.g. ``"+33612345678"``.

    Returns
    -------
    tuple
        Country (ISO alpha-2), libphonenumber type name, location, carrier and validity;
        all None when `number` is not an international number that can be parsed.

    Examples
    --------
    >>> describe_number("+33639980042")
    ('FR', 'UNKNOWN', 'France', None, False)
    """
    if not number:
        return _NOTHING
    text = number.strip()
    if not text.startswith("+"):
        return _NOTHING
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return _NOTHING
    # number_type is the costly call (a dozen patterns); make it once and derive the rest:
    # a number is valid exactly when its type is known
    region = phonenumbers.region_code_for_number(parsed)
    ntype = _number_type(parsed, region)
    valid = ntype != PhoneNumberType.UNKNOWN
    if not valid:
        region = _single_region(parsed.country_code)
    country = region if region and region != _NON_GEOGRAPHIC else None
    location = ""
    if valid and phonenumbers.is_number_type_geographical(ntype, parsed.country_code):
        location = geocoder.description_for_valid_number(parsed, "en")
    if not location and country:
        location = _country_name(country) or ""
    operator = ""
    if ntype in _MOBILE_TYPES:
        operator = carrier.name_for_valid_number(parsed, "en")
    kind = PhoneNumberType.to_string(ntype)
    return country, kind, location or None, operator or None, valid


def describe_numbers(numbers: Iterable[str | None]) -> pa.Table:
    """Describe each distinct number once.

    Parameters
    ----------
    numbers : iterable of str or None
        Phone numbers in E.164 form (``+`` and digits), e.g. a column's values. Nulls and
        duplicates are allowed.

    Returns
    -------
    pyarrow.Table
        :data:`NUMBER_SCHEMA`: one row per distinct non-null input (``number``, in order of
        first appearance) with ``country``, ``type``, ``location``, ``carrier`` and ``valid``.
        Input that cannot be parsed gets nulls; nothing raises.

    Examples
    --------
    >>> t = describe_numbers(["+33612345678", "+33612345678", None, "junk"])
    >>> t.to_pylist()[0]
    {'number': '+33612345678', 'country': 'FR', 'type': 'MOBILE', 'location': 'France', \
'carrier': 'SFR', 'valid': True}
    >>> t.num_rows
    2
    """
    distinct = list(dict.fromkeys(n for n in numbers if n is not None))
    rows = [describe_number(n) for n in distinct]
    columns = [distinct] + [list(c) for c in zip(*rows, strict=True)] if rows else []
    if not columns:
        return NUMBER_SCHEMA.empty_table()
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, NUMBER_SCHEMA, strict=True)],
        schema=NUMBER_SCHEMA,
    )
