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

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import phonenumbers
import pyarrow as pa
from phonenumbers import PhoneNumberType, carrier, geocoder
from phonenumbers.carrierdata import CARRIER_DATA, CARRIER_LONGEST_PREFIX
from phonenumbers.geodata import GEOCODE_DATA, GEOCODE_LONGEST_PREFIX
from phonenumbers.geodata.locale import LOCALE_DATA

from .schema import Column

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
        Column("number", pa.string(), "The number as given.").field(),
        Column("country", pa.string(), "ISO 3166-1 alpha-2.").field(),
        Column("type", pa.string(), "libphonenumber type name.").field(),
        Column("location", pa.string(), "Geocoder text, English.").field(),
        Column("carrier", pa.string(), "Operator the range was allocated to (not ported).").field(),
        Column("valid", pa.bool_(), "libphonenumber calls it valid.").field(),
    ]
)

_NON_GEOGRAPHIC = "001"
# number_type() finds the region again; its helper takes the metadata we already have
_type_helper: Callable[[str, phonenumbers.PhoneMetadata], int] | None = getattr(
    phonenumbers.phonenumberutil, "_number_type_helper", None
)
_Row = tuple[str | None, str | None, str | None, str | None, bool | None]
_NOTHING: _Row = (None, None, None, None, None)
# types whose ranges libphonenumber knows the allocated carrier of
_MOBILE_TYPES = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER}
)
_UNKNOWN = PhoneNumberType.UNKNOWN
_TYPE_NAMES: dict[int, str] = {v: PhoneNumberType.to_string(v) for v in PhoneNumberType.values()}
# libphonenumber's bounds on a national significant number, and on a calling code's digits
_MIN_NSN, _MAX_NSN, _MAX_CODE_DIGITS = 2, 17, 3
# the special types, tried in this order before fixed line and mobile (_number_type_helper)
_SPECIAL_TYPES: tuple[tuple[str, int], ...] = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
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


def _number_type(parsed: phonenumbers.PhoneNumber, code: int, region: str | None) -> int:
    """``phonenumbers.number_type`` for a number whose calling code and region are known."""
    if region is None or _type_helper is None:
        return phonenumbers.number_type(parsed) if region is not None else PhoneNumberType.UNKNOWN
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return PhoneNumberType.UNKNOWN
    return _type_helper(phonenumbers.national_significant_number(parsed), metadata)


# --- fast path for canonical E.164 strings -------------------------------------------------
#
# phonenumbers.parse() on "+" followed by ASCII digits only strips the "+", takes the first
# 1-3 digits that are a known calling code, and keeps the rest as the national significant
# number, unless the region's national prefix for parsing matches at its start (then it may
# strip or transform digits) or the rest starts with 0 (Italian leading zeros). Those cases,
# bad lengths and anything else that is not plain digits go through parse() itself; the rest
# is read directly. Type, region, geocoder and carrier lookups then use patterns compiled
# once per region instead of going through re's cache for every pattern of every number.

_Desc = tuple[frozenset[int], re.Pattern[str]] | None
_TypeOf = Callable[[str], int]
# for one length of national number: general, special types, fixed line and mobile patterns
_Plan = tuple[
    re.Pattern[str] | None,
    list[tuple[re.Pattern[str], int]],
    re.Pattern[str] | None,
    re.Pattern[str] | None,
]


def _desc(number_desc: phonenumbers.PhoneNumberDesc | None) -> _Desc:
    """A ``PhoneNumberDesc``'s possible lengths and compiled pattern; None never matches."""
    if number_desc is None or not number_desc.national_number_pattern:
        return None
    pattern = re.compile(number_desc.national_number_pattern)
    return frozenset(number_desc.possible_length), pattern


def _for_length(desc: _Desc, length: int) -> re.Pattern[str] | None:
    """`desc`'s pattern if a number of `length` digits can match it, else None."""
    if desc is None:
        return None
    lengths, pattern = desc
    return pattern if not lengths or length in lengths else None


def _type_function(metadata: phonenumbers.PhoneMetadata) -> _TypeOf:
    """``_number_type_helper(nsn, metadata)`` with the metadata's patterns compiled once.

    A number matches a description when its length is possible (or the description lists no
    lengths) and the pattern matches it whole: libphonenumber's ``match`` then ``fullmatch``
    succeed together exactly when ``fullmatch`` does. The descriptions a number's length
    rules out are dropped once per length.
    """
    general = _desc(metadata.general_desc)
    special = [(_desc(getattr(metadata, name)), kind) for name, kind in _SPECIAL_TYPES]
    fixed = _desc(metadata.fixed_line)
    mobile = _desc(metadata.mobile)
    same_pattern = bool(metadata.same_mobile_and_fixed_line_pattern)
    plans: dict[int, _Plan] = {}

    def plan_for(length: int) -> _Plan:
        checks = [(_for_length(d, length), kind) for d, kind in special]
        plans[length] = (
            _for_length(general, length),
            [(pattern, kind) for pattern, kind in checks if pattern is not None],
            _for_length(fixed, length),
            _for_length(mobile, length),
        )
        return plans[length]

    def type_of(nsn: str) -> int:
        length = len(nsn)
        plan = plans[length] if length in plans else plan_for(length)
        general_p, special_p, fixed_p, mobile_p = plan
        if general_p is None or general_p.fullmatch(nsn) is None:
            return _UNKNOWN
        for pattern, kind in special_p:
            if pattern.fullmatch(nsn) is not None:
                return kind
        if fixed_p is not None and fixed_p.fullmatch(nsn) is not None:
            if same_pattern or (mobile_p is not None and mobile_p.fullmatch(nsn) is not None):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not same_pattern and mobile_p is not None and mobile_p.fullmatch(nsn) is not None:
            return PhoneNumberType.MOBILE
        return _UNKNOWN

    return type_of


def _display_name(region: str) -> str:
    """``geocoder._region_display_name(region, "en")``."""
    return _country_name(region) or ""


class _CallingCode:
    """What reading numbers of one calling code needs, computed once.

    Parameters
    ----------
    code : int
        A calling code phonenumbers knows.
    metadata : phonenumbers.PhoneMetadata
        The metadata ``phonenumbers.parse`` uses for it (its main region's).
    regions : list of tuple
        ``(region, leading digits pattern or None, type function, same calling code)`` for
        each region of the code that has metadata, in libphonenumber's order.
    single : bool
        Whether the code belongs to one region (or is non-geographic) alone.
    """

    __slots__ = ("code", "national_prefix", "transform", "regions", "single", "fallback_region")

    def __init__(
        self,
        code: int,
        metadata: phonenumbers.PhoneMetadata,
        regions: list[tuple[str, re.Pattern[str] | None, _TypeOf, bool]],
        single: bool,
    ) -> None:
        self.code = code
        prefix = metadata.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        self.transform = bool(metadata.national_prefix_transform_rule)
        self.regions = regions
        self.single = single
        self.fallback_region = _single_region(code)


_CODES: dict[str, int] = {str(c): c for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
_CALLING_CODES: dict[int, _CallingCode | None] = {}


def _calling_code(code: int) -> _CallingCode | None:
    """The cached :class:`_CallingCode` of `code`; None when only ``parse`` can tell."""
    if code in _CALLING_CODES:
        return _CALLING_CODES[code]
    metadata_for = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code
    region_codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
    main = metadata_for(code, phonenumbers.region_code_for_country_code(code))
    info: _CallingCode | None = None
    if main is not None and (len(region_codes) == 1 or _NON_GEOGRAPHIC not in region_codes):
        regions: list[tuple[str, re.Pattern[str] | None, _TypeOf, bool]] = []
        if len(region_codes) == 1:
            regions.append((region_codes[0], None, _type_function(main), True))
        else:
            for region in region_codes:
                metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
                if metadata is None:
                    continue
                leading = metadata.leading_digits
                regions.append(
                    (
                        region,
                        re.compile(leading) if leading is not None else None,
                        _type_function(metadata),
                        metadata.country_code == code,
                    )
                )
        info = _CallingCode(code, main, regions, len(region_codes) == 1)
    _CALLING_CODES[code] = info
    return info


def _prefix_text(data: dict[str, dict[str, str]], longest: int, digits: str) -> str:
    """``prefix._prefix_description_for_number`` in English for the E.164 digits `digits`."""
    for size in range(min(longest, len(digits)), 0, -1):
        names = data.get(digits[:size])
        if names is not None:
            name = names.get("en")
            if name is not None:
                return name
    return ""


def _country_name_for(info: _CallingCode, nsn: str) -> str:
    """``geocoder.country_name_for_number`` in English for a number of `info`'s code."""
    if info.single:
        return _display_name(info.regions[0][0])
    found = "ZZ"
    for region, _, type_of, same_code in info.regions:
        if same_code and type_of(nsn) != _UNKNOWN:
            if found != "ZZ":
                return ""  # valid in several regions: libphonenumber does not choose
            found = region
    return _display_name(found)


def _split_e164(text: str) -> tuple[_CallingCode, str] | None:
    """Calling code and national significant number of ``+`` and digits, as ``parse`` reads them.

    Parameters
    ----------
    text : str
        A stripped string starting with ``+``.

    Returns
    -------
    tuple or None
        The calling code's :class:`_CallingCode` and the national number digits, when
        ``phonenumbers.parse(text)`` is certain to give exactly that number: text that is
        ``+`` and ASCII digits, a known calling code, a national number of a possible length
        without leading zero (Italian zeros) that the region's national prefix for parsing
        leaves alone. None otherwise: ``parse`` itself must be asked.
    """
    digits = text[1:]
    if not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
        return None
    for size in range(1, _MAX_CODE_DIGITS + 1):
        code = _CODES.get(digits[:size])
        if code is not None:
            break
    else:
        return None
    nsn = digits[size:]
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN or nsn[0] == "0":
        return None
    info = _CALLING_CODES[code] if code in _CALLING_CODES else _calling_code(code)
    if info is None:
        return None
    if info.national_prefix is not None:
        match = info.national_prefix.match(nsn)
        # an empty match that transforms nothing leaves the number as it is
        if match is not None and (
            match.end() != 0
            or (info.transform and (not match.groups() or match.groups()[-1] is not None))
        ):
            return None
    return info, nsn


def _describe_e164(text: str) -> _Row | None:
    """:func:`describe_number` for a ``+`` and digits string; None when ``parse`` must decide."""
    split = _split_e164(text)
    if split is None:
        return None
    info, nsn = split
    code = info.code
    digits = text[1:]
    # region_code_for_number, then the type for that region (found on the way when the
    # region was chosen by validating the number)
    region: str | None = None
    ntype = _UNKNOWN
    for candidate, leading, type_of, _ in info.regions:
        if leading is None:
            ntype = type_of(nsn)
            if info.single or ntype != _UNKNOWN:
                region = candidate
                break
        elif leading.match(nsn):
            region = candidate
            ntype = type_of(nsn)
            break
    valid = ntype != _UNKNOWN
    if not valid:
        region = info.fallback_region
    country = region if region and region != _NON_GEOGRAPHIC else None
    location = ""
    if valid and phonenumbers.is_number_type_geographical(ntype, code):
        token = phonenumbers.country_mobile_token(code)
        if token and nsn.startswith(token):  # Argentina's mobile 9: the geocoder parses again
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(nsn))
            location = geocoder.description_for_valid_number(number, "en")
        else:
            location = _prefix_text(GEOCODE_DATA, GEOCODE_LONGEST_PREFIX, digits)
            if location == "":
                location = _country_name_for(info, nsn)
    if not location and country:
        location = _country_name(country) or ""
    operator = ""
    if ntype in _MOBILE_TYPES:
        operator = _prefix_text(CARRIER_DATA, CARRIER_LONGEST_PREFIX, digits)
    return country, _TYPE_NAMES[ntype], location or None, operator or None, valid


def _describe_parsed(text: str) -> _Row:
    """:func:`describe_number` through ``phonenumbers.parse``, for any stripped ``+`` text."""
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return _NOTHING
    code = parsed.country_code
    if code is None:  # parse() sets it on every number it returns; the stubs allow None
        return _NOTHING
    # number_type is the costly call (a dozen patterns); make it once and derive the rest:
    # a number is valid exactly when its type is known
    region = phonenumbers.region_code_for_number(parsed)
    ntype = _number_type(parsed, code, region)
    valid = ntype != PhoneNumberType.UNKNOWN
    if not valid:
        region = _single_region(code)
    country = region if region and region != _NON_GEOGRAPHIC else None
    location = ""
    if valid and phonenumbers.is_number_type_geographical(ntype, code):
        location = geocoder.description_for_valid_number(parsed, "en")
    if not location and country:
        location = _country_name(country) or ""
    operator = ""
    if ntype in _MOBILE_TYPES:
        operator = carrier.name_for_valid_number(parsed, "en")
    kind = PhoneNumberType.to_string(ntype)
    return country, kind, location or None, operator or None, valid


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
    row = _describe_e164(text)
    return row if row is not None else _describe_parsed(text)


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
