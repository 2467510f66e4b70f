"""SMS segment counting: the encoding and number of parts a message body needs.

This module owns the rules that turn a text into what a GSM network bills for it:

* **Encoding.** A text is ``"gsm"`` (GSM 03.38 7-bit default alphabet) when every character is
  in the GSM basic table or its extension table, otherwise ``"unicode"`` (UCS-2). The labels
  are Callr's. The extension characters ``^ { } \\ [ ~ ] |``, ``€`` and form feed are sent as
  an escape pair and cost two septets. ``\\r`` and ``\\n`` are basic characters (one septet).
  ``Ç`` is basic; ``ç`` is not, so a French ``ç`` forces unicode.
* **Parts.** A single GSM part holds 160 septets; a concatenated part holds 153 (the user data
  header takes 6 octets). UCS-2 counts UTF-16 code units: 70 in a single part, 67 per
  concatenated part, so a character outside the Basic Multilingual Plane (most emoji) costs
  two units. An escape pair is never split across two parts, nor is a *user-perceived
  character* (an extended grapheme cluster: an emoji with its skin tone or its zero-width-joiner
  sequence, a letter with its combining accents, a flag); such a part holds fewer units.
* **Empty text** is one GSM part, as Twilio's calculator says: an empty SMS is still one SMS.

The rules reproduce Twilio's public segment calculator (npm ``sms-segments-calculator``
1.3.0, smart encoding off, its default): Callr does not publish its own counting, and the
calculator is the public reference. Keeping grapheme clusters whole is the calculator's
choice (a handset may split at any UTF-16 unit but a surrogate pair). Clusters follow the
Unicode 10.0 rules (UAX #29) as implemented by the ``grapheme-splitter`` package the
calculator uses, quirks included; the break-property table below is Unicode Character
Database data. A grapheme cluster larger than a whole part
is handled as the calculator does (it occupies a part of its own, even overflowing it).

:func:`analyze` measures one text. :func:`analyze_array` gives the same answers for an Arrow
array of texts, vectorised: Arrow kernels tell gsm from unicode, and NumPy, working on the
UTF-8 bytes and code points, counts units and packs parts exactly; a closed formula
(``ceil(units / 153)`` or ``ceil(units / 67)``) serves the rows where no escape pair, surrogate
pair or grapheme cluster can sit on a part boundary. :func:`gsm_lookalike` replaces smart
punctuation by GSM look-alikes, to tell how many parts a text would need had its author's
keyboard not typeset it.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeAlias, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import column

__all__ = [
    "GSM_BASIC",
    "GSM_EXTENSION",
    "SINGLE_GSM_SEPTETS",
    "MULTI_GSM_SEPTETS",
    "SINGLE_UCS2_UNITS",
    "MULTI_UCS2_UNITS",
    "SegmentInfo",
    "analyze",
    "analyze_array",
    "gsm_lookalike",
    "format_unicode_chars",
]

#: GSM 03.38 basic character set in code order (0x00-0x7F), without 0x1B (the escape).
GSM_BASIC = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9"
    " !\"#\u00a4%&'()*+,-./0123456789:;<=>?"
    "\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    "\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)
#: GSM 03.38 extension table: each character is sent as ESC + code, two septets.
GSM_EXTENSION = "\f^{}\\[~]|\u20ac"

#: Septets in a single GSM-7 message.
SINGLE_GSM_SEPTETS = 160
#: Septets in each part of a concatenated GSM-7 message.
MULTI_GSM_SEPTETS = 153
#: UTF-16 code units in a single UCS-2 message.
SINGLE_UCS2_UNITS = 70
#: UTF-16 code units in each part of a concatenated UCS-2 message.
MULTI_UCS2_UNITS = 67

_SEGMENT_BITS = 1120  # 140 octets of user data
_UDH_BITS = 48  # the concatenation header, 6 octets
_GSM_SET = frozenset(GSM_BASIC + GSM_EXTENSION)
_SMALL_CLUSTER_UNITS = 32  # clusters of up to 32 units cannot upset greedy packing


@dataclass(frozen=True)
class SegmentInfo:
    """What the network does with one message body.

    Parameters
    ----------
    encoding : str
        ``"gsm"`` or ``"unicode"`` (Callr's labels for GSM-7 and UCS-2).
    parts : int
        Number of SMS segments (parts) [segments].
    units : int
        Length in the encoding's units: septets for gsm (an extension character counts 2),
        UTF-16 code units for unicode.
    unicode_chars : tuple of str
        The distinct characters, in order of first appearance, that are in neither GSM
        table and so forced unicode; empty for gsm.
    lookalike_parts : int
        Parts the text would need after :func:`gsm_lookalike` [segments].
    lookalike_encoding : str
        Encoding the text would need after :func:`gsm_lookalike`.
    """

    encoding: str
    parts: int
    units: int
    unicode_chars: tuple[str, ...]
    lookalike_parts: int
    lookalike_encoding: str


# --- GSM look-alikes --------------------------------------------------------------------

_LOOKALIKE_GROUPS: dict[str, str] = {
    # single quotes, primes, apostrophes, grave and acute accents used as quotes
    "'": "\u2018\u2019\u201b\u2032\u2035\u02b9\u02bb\u02bc\u02bd\u02c8\u02ca\u02cb"
    "\u00b4`\uff07\u275b\u275c",
    # double quotes, guillemets, double primes
    '"': "\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u02ba\u02ee\u275d\u275e"
    "\u301d\u301e\uff02",
    # hyphens, dashes, minus sign, bullets
    "-": "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d\u2022",
    # spaces: no-break, en/em and the other typographic spaces, ideographic space, tab
    " ": "\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u202f\u205f\u3000",
    "\n": "\u2028\u2029\u0085",
    "<": "\u2039",
    ">": "\u203a",
    ",": "\u201a\uff0c",
    "/": "\u2044\u2215\uff0f",
}
_LOOKALIKE: dict[int, str | None] = {
    ord(c): gsm for gsm, chars in _LOOKALIKE_GROUPS.items() for c in chars
}
_LOOKALIKE[ord("\u2026")] = "..."  # horizontal ellipsis
# invisible characters that only get in the way: zero width space, word joiner, BOM, soft hyphen
for _c in "\u200b\u2060\ufeff\u00ad":
    _LOOKALIKE[ord(_c)] = None


def gsm_lookalike(text: str) -> str:
    """Replace smart punctuation by its GSM look-alike.

    Curly and low quotes, primes and guillemets become ``'`` or ``"``; hyphens, en and em
    dashes, the minus sign and bullets become ``-``; the ellipsis becomes ``...``; no-break
    and other typographic spaces (and tabs) become a space; line and paragraph separators
    become ``\\n``; zero-width spaces, word joiners, byte order marks and soft hyphens are
    removed. Letters (``ç``, ``ê``), emoji and other scripts are left alone: this tells what
    typesetting cost, not what transliteration would save.

    Parameters
    ----------
    text : str
        A message body.

    Returns
    -------
    str
        The text with look-alikes substituted.

    Examples
    --------
    >>> gsm_lookalike("C\u2019est \u00ab\u00a0top\u00a0\u00bb \u2014 \u00e0 demain\u2026")
    'C\\'est " top " - à demain...'
    """
    return text.translate(_LOOKALIKE)


# --- grapheme clusters (Unicode 10.0, as the calculator's grapheme-splitter) -------------

# Grapheme_Cluster_Break values, plus the Unicode 10 emoji classes of UAX #29 rules GB10/GB11.
_OT, _PP, _CR, _LF, _CN, _EX, _RI, _SM, _L = range(9)
_V, _T, _LV, _LVT, _EB, _EM, _ZWJ, _GAZ, _EBG = range(9, 18)
_PROP_CODES = {
    "PP": _PP, "CR": _CR, "LF": _LF, "CN": _CN, "EX": _EX, "RI": _RI, "SM": _SM, "L": _L,
    "V": _V, "T": _T, "EB": _EB, "EM": _EM, "ZWJ": _ZWJ, "GAZ": _GAZ, "EBG": _EBG,
}  # fmt: skip
# Code point ranges (hex) of each non-Other property: GraphemeBreakProperty-10.0.0.txt and
# emoji-data 5.0. Hangul syllables (LV, LVT) are computed below.
_GRAPHEME_BREAK_TABLE = """\
PP: 600-605 6DD 70F 8E2 D4E 110BD 111C2-111C3 11A3A 11A86-11A89 11D46
CR: D
LF: A
CN: 0-9 B-C E-1F 7F-9F AD 61C 180E 200B 200E-200F 2028-202E 2060-206F D800-DFFF FEFF
    FFF0-FFFB 1BCA0-1BCA3 1D173-1D17A E0000-E001F E0080-E00FF E01F0-E0FFF
EX: 300-36F 483-489 591-5BD 5BF 5C1-5C2 5C4-5C5 5C7 610-61A 64B-65F 670 6D6-6DC 6DF-6E4
    6E7-6E8 6EA-6ED 711 730-74A 7A6-7B0 7EB-7F3 816-819 81B-823 825-827 829-82D 859-85B
    8D4-8E1 8E3-902 93A 93C 941-948 94D 951-957 962-963 981 9BC 9BE 9C1-9C4 9CD 9D7 9E2-9E3
    A01-A02 A3C A41-A42 A47-A48 A4B-A4D A51 A70-A71 A75 A81-A82 ABC AC1-AC5 AC7-AC8 ACD
    AE2-AE3 AFA-AFF B01 B3C B3E-B3F B41-B44 B4D B56-B57 B62-B63 B82 BBE BC0 BCD BD7 C00
    C3E-C40 C46-C48 C4A-C4D C55-C56 C62-C63 C81 CBC CBF CC2 CC6 CCC-CCD CD5-CD6 CE2-CE3
    D00-D01 D3B-D3C D3E D41-D44 D4D D57 D62-D63 DCA DCF DD2-DD4 DD6 DDF E31 E34-E3A E47-E4E
    EB1 EB4-EB9 EBB-EBC EC8-ECD F18-F19 F35 F37 F39 F71-F7E F80-F84 F86-F87 F8D-F97 F99-FBC
    FC6 102D-1030 1032-1037 1039-103A 103D-103E 1058-1059 105E-1060 1071-1074 1082 1085-1086
    108D 109D 135D-135F 1712-1714 1732-1734 1752-1753 1772-1773 17B4-17B5 17B7-17BD 17C6
    17C9-17D3 17DD 180B-180D 1885-1886 18A9 1920-1922 1927-1928 1932 1939-193B 1A17-1A18
    1A1B 1A56 1A58-1A5E 1A60 1A62 1A65-1A6C 1A73-1A7C 1A7F 1AB0-1ABE 1B00-1B03 1B34
    1B36-1B3A 1B3C 1B42 1B6B-1B73 1B80-1B81 1BA2-1BA5 1BA8-1BA9 1BAB-1BAD 1BE6 1BE8-1BE9
    1BED 1BEF-1BF1 1C2C-1C33 1C36-1C37 1CD0-1CD2 1CD4-1CE0 1CE2-1CE8 1CED 1CF4 1CF8-1CF9
    1DC0-1DF9 1DFB-1DFF 200C 20D0-20F0 2CEF-2CF1 2D7F 2DE0-2DFF 302A-302F 3099-309A
    A66F-A672 A674-A67D A69E-A69F A6F0-A6F1 A802 A806 A80B A825-A826 A8C4-A8C5 A8E0-A8F1
    A926-A92D A947-A951 A980-A982 A9B3 A9B6-A9B9 A9BC A9E5 AA29-AA2E AA31-AA32 AA35-AA36
    AA43 AA4C AA7C AAB0 AAB2-AAB4 AAB7-AAB8 AABE-AABF AAC1 AAEC-AAED AAF6 ABE5 ABE8 ABED
    FB1E FE00-FE0F FE20-FE2F FF9E-FF9F 101FD 102E0 10376-1037A 10A01-10A03 10A05-10A06
    10A0C-10A0F 10A38-10A3A 10A3F 10AE5-10AE6 11001 11038-11046 1107F-11081 110B3-110B6
    110B9-110BA 11100-11102 11127-1112B 1112D-11134 11173 11180-11181 111B6-111BE
    111CA-111CC 1122F-11231 11234 11236-11237 1123E 112DF 112E3-112EA 11300-11301 1133C
    1133E 11340 11357 11366-1136C 11370-11374 11438-1143F 11442-11444 11446 114B0
    114B3-114B8 114BA 114BD 114BF-114C0 114C2-114C3 115AF 115B2-115B5 115BC-115BD
    115BF-115C0 115DC-115DD 11633-1163A 1163D 1163F-11640 116AB 116AD 116B0-116B5 116B7
    1171D-1171F 11722-11725 11727-1172B 11A01-11A06 11A09-11A0A 11A33-11A38 11A3B-11A3E
    11A47 11A51-11A56 11A59-11A5B 11A8A-11A96 11A98-11A99 11C30-11C36 11C38-11C3D 11C3F
    11C92-11CA7 11CAA-11CB0 11CB2-11CB3 11CB5-11CB6 11D31-11D36 11D3A 11D3C-11D3D
    11D3F-11D45 11D47 16AF0-16AF4 16B30-16B36 16F8F-16F92 1BC9D-1BC9E 1D165 1D167-1D169
    1D16E-1D172 1D17B-1D182 1D185-1D18B 1D1AA-1D1AD 1D242-1D244 1DA00-1DA36 1DA3B-1DA6C
    1DA75 1DA84 1DA9B-1DA9F 1DAA1-1DAAF 1E000-1E006 1E008-1E018 1E01B-1E021 1E023-1E024
    1E026-1E02A 1E8D0-1E8D6 1E944-1E94A E0020-E007F E0100-E01EF
RI: 1F1E6-1F1FF
SM: 903 93B 93E-940 949-94C 94E-94F 982-983 9BF-9C0 9C7-9C8 9CB-9CC A03 A3E-A40 A83 ABE-AC0
    AC9 ACB-ACC B02-B03 B40 B47-B48 B4B-B4C BBF BC1-BC2 BC6-BC8 BCA-BCC C01-C03 C41-C44
    C82-C83 CBE CC0-CC1 CC3-CC4 CC7-CC8 CCA-CCB D02-D03 D3F-D40 D46-D48 D4A-D4C D82-D83
    DD0-DD1 DD8-DDE DF2-DF3 E33 EB3 F3E-F3F F7F 1031 103B-103C 1056-1057 1084 17B6 17BE-17C5
    17C7-17C8 1923-1926 1929-192B 1930-1931 1933-1938 1A19-1A1A 1A55 1A57 1A6D-1A72 1B04
    1B35 1B3B 1B3D-1B41 1B43-1B44 1B82 1BA1 1BA6-1BA7 1BAA 1BE7 1BEA-1BEC 1BEE 1BF2-1BF3
    1C24-1C2B 1C34-1C35 1CE1 1CF2-1CF3 1CF7 A823-A824 A827 A880-A881 A8B4-A8C3 A952-A953
    A983 A9B4-A9B5 A9BA-A9BB A9BD-A9C0 AA2F-AA30 AA33-AA34 AA4D AAEB AAEE-AAEF AAF5
    ABE3-ABE4 ABE6-ABE7 ABE9-ABEA ABEC 11000 11002 11082 110B0-110B2 110B7-110B8 1112C 11182
    111B3-111B5 111BF-111C0 1122C-1122E 11232-11233 11235 112E0-112E2 11302-11303 1133F
    11341-11344 11347-11348 1134B-1134D 11362-11363 11435-11437 11440-11441 11445
    114B1-114B2 114B9 114BB-114BC 114BE 114C1 115B0-115B1 115B8-115BB 115BE 11630-11632
    1163B-1163C 1163E 116AC 116AE-116AF 116B6 11720-11721 11726 11A07-11A08 11A39
    11A57-11A58 11A97 11C2F 11C3E 11CA9 11CB1 11CB4 16F51-16F7E 1D166 1D16D
L: 1100-115F A960-A97C
V: 1160-11A7 D7B0-D7C6
T: 11A8-11FF D7CB-D7FB
EB: 261D 26F9 270A-270D 1F385 1F3C2-1F3C4 1F3C7 1F3CA-1F3CC 1F442-1F443 1F446-1F450 1F46E
    1F470-1F478 1F47C 1F481-1F483 1F485-1F487 1F4AA 1F574-1F575 1F57A 1F590 1F595-1F596
    1F645-1F647 1F64B-1F64F 1F6A3 1F6B4-1F6B6 1F6C0 1F6CC 1F918-1F91C 1F91E-1F91F 1F926
    1F930-1F939 1F93D-1F93E 1F9D1-1F9DD
EM: 1F3FB-1F3FF
ZWJ: 200D
GAZ: 2640 2642 2695-2696 2708 2764 1F308 1F33E 1F373 1F393 1F3A4 1F3A8 1F3EB 1F3ED 1F48B
    1F4BB-1F4BC 1F527 1F52C 1F5E8 1F680 1F692
EBG: 1F466-1F469
"""

_HANGUL_FIRST, _HANGUL_LAST, _HANGUL_T_COUNT = 0xAC00, 0xD7A3, 28


def _build_props() -> tuple[bytearray, list[tuple[int, int]]]:
    """Return the property of every code point, and the ranges of the "complex" ones."""
    props = bytearray(0x110000)
    ranges: list[tuple[int, int, int]] = []
    for entry in _GRAPHEME_BREAK_TABLE.replace("\n    ", " ").splitlines():
        name, _, spans = entry.partition(": ")
        for span in spans.split():
            first, _, last = span.partition("-")
            a = int(first, 16)
            b = int(last, 16) if last else a
            ranges.append((a, b, _PROP_CODES[name]))
    for a, b, p in ranges:
        props[a : b + 1] = bytes([p]) * (b - a + 1)
    props[_HANGUL_FIRST : _HANGUL_LAST + 1] = bytes([_LVT]) * (_HANGUL_LAST - _HANGUL_FIRST + 1)
    props[_HANGUL_FIRST : _HANGUL_LAST + 1 : _HANGUL_T_COUNT] = bytes([_LV]) * len(
        range(_HANGUL_FIRST, _HANGUL_LAST + 1, _HANGUL_T_COUNT)
    )
    complex_ranges = sorted((a, b) for a, b, p in ranges if p in _COMPLEX)
    return props, complex_ranges


# "Simple" properties never join their neighbour when the neighbour is simple too, so
# clusters only need the state machine around runs of "complex" code points.
_COMPLEX = frozenset({_PP, _EX, _RI, _SM, _L, _V, _T, _EM, _ZWJ, _GAZ, _EBG})
_PROPS, _COMPLEX_RANGES = _build_props()


def _should_break(start: int, mid: list[int], nxt: int) -> bool:
    """Whether grapheme-splitter breaks before `nxt` in a cluster ``start, *mid``.

    A faithful port of its decision, including two departures from later Unicode
    versions: ``E_Base Extend Extend × E_Modifier`` breaks, and so does
    ``Prepend RI × RI``.
    """
    seq = [start, *mid, nxt]
    previous = seq[-2]
    if _EM in seq:
        k = len(seq) - 1 - seq[::-1].index(_EM)
        if k > 1 and all(c == _EX for c in seq[1:k]) and start not in (_EX, _EB, _EBG):
            return True
    if _RI in seq:
        k = len(seq) - 1 - seq[::-1].index(_RI)
        if k > 0 and all(c == _RI for c in seq[1:k]) and previous not in (_PP, _RI):
            return True
    if previous == _CR and nxt == _LF:
        return False
    if previous in (_CN, _CR, _LF) or nxt in (_CN, _CR, _LF):
        return True
    if previous == _L and nxt in (_L, _V, _LV, _LVT):
        return False
    if previous in (_LV, _V) and nxt in (_V, _T):
        return False
    if previous in (_LVT, _T) and nxt == _T:
        return False
    if nxt in (_EX, _ZWJ, _SM) or previous == _PP:
        return False
    if nxt == _EM:
        j = len(seq) - 2 - seq[::-1].index(_EX) if _EX in seq else len(seq) - 2
        if j >= 0 and seq[j] in (_EB, _EBG) and all(c == _EX for c in seq[j + 1 : -1]):
            return False
    if previous == _ZWJ and nxt in (_GAZ, _EBG):
        return False
    if _RI in mid:
        return True
    return not (previous == _RI and nxt == _RI)


def _joined_in_chunk(props: Sequence[int]) -> list[int]:
    """Indices ``i > 0`` of a chunk (starting a cluster) that continue the cluster before."""
    joined = []
    start = props[0]
    mid: list[int] = []
    for i in range(1, len(props)):
        nxt = props[i]
        if _should_break(start, mid, nxt):
            start, mid = nxt, []
        else:
            mid.append(nxt)
            # the calculator splits the cluster "\r\n" into two characters again
            if not (nxt == _LF and props[i - 1] == _CR):
                joined.append(i)
    return joined


def _continuations(text: str) -> list[int]:
    """Code point indices of `text` that do not start a grapheme cluster, ascending."""
    n = len(text)
    chunks: list[list[int]] = []
    for m in _COMPLEX_RUN.finditer(text):
        s, e = max(m.start() - 1, 0), m.end()
        # Prepend and Hangul L also join the simple character after them
        if e < n and _PROPS[ord(text[e - 1])] in (_PP, _L):
            e += 1
        if chunks and s < chunks[-1][1]:
            chunks[-1][1] = max(chunks[-1][1], e)
        else:
            chunks.append([s, e])
    out: list[int] = []
    for s, e in chunks:
        out.extend(s + i for i in _joined_in_chunk([_PROPS[ord(c)] for c in text[s:e]]))
    return out


def _graphemes(text: str) -> list[str]:
    """Split `text` into the calculator's characters (grapheme clusters, CR LF apart)."""
    cont = set(_continuations(text))
    starts = [i for i in range(len(text)) if i not in cont] + [len(text)]
    return [text[a:b] for a, b in zip(starts, starts[1:], strict=False)]


# --- counting -----------------------------------------------------------------------------


def _re_class(chars_or_ranges: Sequence[tuple[int, int]], *, re2: bool) -> str:
    """Body of a regex character class matching the code point ranges given."""
    if re2:
        return "".join(
            f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in chars_or_ranges
        )
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in chars_or_ranges
    )


def _ranges_of(chars: str) -> list[tuple[int, int]]:
    return [(ord(c), ord(c)) for c in sorted(set(chars))]


_GSM_RANGES = _ranges_of(GSM_BASIC + GSM_EXTENSION)
# sre tests the ranges of a class one by one: keep the long non-BMP list behind a cheap test
_BMP_CLASS = _re_class([r for r in _COMPLEX_RANGES if r[1] < 0x10000], re2=False)
_ASTRAL_CLASS = _re_class([r for r in _COMPLEX_RANGES if r[0] > 0xFFFF], re2=False)
_COMPLEX_RUN = re.compile(f"(?:[{_BMP_CLASS}]|(?=[\U00010000-\U0010ffff])[{_ASTRAL_CLASS}])+")
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_EXTENSION = re.compile(f"[{_re_class(_ranges_of(GSM_EXTENSION), re2=False)}]")

_RE2_NON_GSM = f"[^{_re_class(_GSM_RANGES, re2=True)}]"
_RE2_EXTENSION = f"[{_re_class(_ranges_of(GSM_EXTENSION), re2=True)}]"


def _gsm_parts(text: str) -> tuple[int, int]:
    """Return (septets, parts) of a text known to be all GSM."""
    # septet offsets of the escapes; a part may not end between an escape and its character
    escapes = {i + k for k, i in enumerate(m.start() for m in _EXTENSION.finditer(text))}
    septets = len(text) + len(escapes)
    if septets <= SINGLE_GSM_SEPTETS:
        return septets, 1
    pos, parts = 0, 1
    while septets - pos > MULTI_GSM_SEPTETS:
        end = pos + MULTI_GSM_SEPTETS
        if end - 1 in escapes:
            end -= 1
        pos, parts = end, parts + 1
    return septets, parts


def _ucs2_parts(text: str, units: int) -> int:
    """Return the parts of a unicode text of `units` UTF-16 code units."""
    if units <= SINGLE_UCS2_UNITS:
        return 1
    cont = _continuations(text)
    if not cont and units == len(text):
        return -(-units // MULTI_UCS2_UNITS)
    # UTF-16 offsets where a part may not end: inside a surrogate pair or a cluster.
    wide = [m.start() for m in _NON_BMP.finditer(text)] if units != len(text) else []
    inside = {i + k + 1 for k, i in enumerate(wide)}
    inside.update(j + bisect_left(wide, j) for j in cont)
    if _longest_run(inside) >= _SMALL_CLUSTER_UNITS:
        sizes = [16 * len(g.encode("utf-16-le", "surrogatepass")) // 2 for g in _graphemes(text)]
        return _simulate(sizes)
    pos, parts = 0, 1
    while units - pos > MULTI_UCS2_UNITS:
        end = pos + MULTI_UCS2_UNITS
        while end in inside:
            end -= 1
        pos, parts = end, parts + 1
    return parts


def _longest_run(offsets: set[int]) -> int:
    """Length of the longest run of consecutive integers in `offsets`."""
    best = 0
    for o in offsets:
        if o - 1 not in offsets:
            n = 1
            while o + n in offsets:
                n += 1
            best = max(best, n)
    return best


def _simulate(sizes: Sequence[int]) -> int:
    """Count parts the way the calculator fills them, for characters of `sizes` bits.

    The first part is filled up to 140 octets; when a character no longer fits, the first
    part gets its 6-octet header and gives back the characters that no longer fit, which open
    the second part together with the new character (without checking that they fit).
    Every later part starts with its header and takes characters while they fit. Only texts
    with very long grapheme clusters need this; otherwise it equals greedy packing.
    """
    bits = [0]
    contents: list[list[int]] = [[]]
    for size in sizes:
        if _SEGMENT_BITS - bits[-1] < size:
            moved: list[int] = []
            if len(bits) == 1:
                bits[0] += _UDH_BITS
                while bits[0] > _SEGMENT_BITS:
                    last = contents[0].pop()
                    bits[0] -= last
                    moved.insert(0, last)
            bits.append(_UDH_BITS + sum(moved))
            contents.append(moved)
        bits[-1] += size
        contents[-1].append(size)
    return len(bits)


def _measure(text: str) -> tuple[str, int, int, tuple[str, ...]]:
    """Return (encoding, parts, units, unicode_chars) of one text."""
    forcing = [c for c in dict.fromkeys(text) if c not in _GSM_SET]
    if not forcing:
        septets, parts = _gsm_parts(text)
        return "gsm", parts, septets, ()
    if _SURROGATE.search(text):
        # two halves of a pair arriving separately are one character to UTF-16
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        forcing = [c for c in dict.fromkeys(text) if c not in _GSM_SET]
    units = len(text) + len(_NON_BMP.findall(text))
    return "unicode", _ucs2_parts(text, units), units, tuple(forcing)


def analyze(text: str) -> SegmentInfo:
    """Measure one message body: encoding, parts, units and what forced unicode.

    Parameters
    ----------
    text : str
        The message body (``""`` is one empty GSM part).

    Returns
    -------
    SegmentInfo
        The encoding and parts a GSM network needs for `text`, and the same for its
        :func:`gsm_lookalike` version.

    Examples
    --------
    >>> analyze("Hello").parts
    1
    >>> info = analyze("J\u2019arrive \U0001f600")
    >>> info.encoding, info.units, info.unicode_chars
    ('unicode', 11, ('\u2019', '\U0001f600'))
    >>> info.lookalike_encoding
    'unicode'
    """
    encoding, parts, units, forcing = _measure(text)
    la_encoding, la_parts = encoding, parts
    if forcing:
        lookalike = gsm_lookalike(text)
        if lookalike != text:
            la_encoding, la_parts, _, _ = _measure(lookalike)
    return SegmentInfo(encoding, parts, units, forcing, la_parts, la_encoding)


def format_unicode_chars(chars: Sequence[str]) -> str | None:
    """Format characters as ``"’ U+2019, 😀 U+1F600"`` (None when there are none).

    Parameters
    ----------
    chars : sequence of str
        Characters, e.g. :attr:`SegmentInfo.unicode_chars`.

    Returns
    -------
    str or None
        Each character followed by its code point, comma-separated.
    """
    if not chars:
        return None
    return ", ".join(f"{c} U+{ord(c):04X}" for c in chars)


# --- vectorised ---------------------------------------------------------------------------

_ENCODINGS = pa.array(["gsm", "unicode"])
_PROPS_NP = np.frombuffer(bytes(_PROPS), dtype=np.uint8)
_IS_COMPLEX_NP = np.zeros(256, dtype=bool)
_IS_COMPLEX_NP[sorted(_COMPLEX)] = True
_IS_GSM_NP = np.zeros(0x110000, dtype=bool)
_IS_GSM_NP[[ord(c) for c in _GSM_SET]] = True
# In the UTF-8 of an all-GSM text these bytes only occur in extension characters (0xE2: €).
_EXT_BYTE = np.zeros(256, dtype=bool)
_EXT_BYTE[[c.encode()[0] for c in GSM_EXTENSION]] = True
_MAX_CHUNK = 12  # chunks up to this many code points are classified by their properties
_PROP_BITS = 5
_THREADS = min(4, os.cpu_count() or 1)
_THREAD_MIN_ROWS = 50_000
_Strings: TypeAlias = pa.StringArray | pa.LargeStringArray


def analyze_array(texts: pa.Array[Any] | pa.ChunkedArray[Any]) -> pa.Table:
    """Measure many message bodies at once; the same answers as :func:`analyze`.

    Arrow kernels tell gsm from unicode; NumPy works on the UTF-8 bytes and code points to
    count units, and the part count is ``1`` or ``ceil(units / 153)`` (gsm) or
    ``ceil(units / 67)`` (unicode). That formula is exact unless a part boundary can fall
    inside an escape pair, a surrogate pair or a grapheme cluster; for those rows (multi-part
    texts that contain such characters) the parts are packed exactly, still vectorised.
    Only texts with grapheme clusters of more than 32 units go through :func:`analyze`.

    Parameters
    ----------
    texts : pyarrow.Array or pyarrow.ChunkedArray
        Message bodies (string, large_string or dictionary of strings); nulls allowed.

    Returns
    -------
    pyarrow.Table
        One row per input row, in order, with the columns ``computed_encoding``,
        ``computed_parts`` and ``unicode_chars`` of :data:`~smsanalytics.schema.MESSAGE_SCHEMA`
        (``unicode_chars`` as :func:`format_unicode_chars` writes it). All three are null
        where the text is null; ``unicode_chars`` is also null for gsm texts.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = analyze_array(pa.array(["Hi", "Caf\\u00e9 \\u2615", None]))
    >>> t.column("computed_parts").to_pylist()
    [1, 1, None]
    >>> t.column("unicode_chars").to_pylist()
    [None, '\\u2615 U+2615', None]
    """
    chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
    names = ("computed_encoding", "computed_parts", "unicode_chars")
    schema = pa.schema([column(name).field() for name in names])
    pieces = [p for chunk in chunks for p in _split(_as_strings(chunk))]
    if len(pieces) > 1:
        # Arrow and NumPy release the GIL: two halves run on two cores
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            tables = list(pool.map(lambda p: _analyze_chunk(p, schema), pieces))
    else:
        tables = [_analyze_chunk(p, schema) for p in pieces]
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _split(arr: _Strings) -> list[_Strings]:
    """Cut a large array into one slice per thread (zero-copy)."""
    if len(arr) < _THREAD_MIN_ROWS:
        return [arr] if len(arr) else []
    step = -(-len(arr) // _THREADS)
    return [arr.slice(i, step) for i in range(0, len(arr), step)]


def _as_strings(arr: pa.Array[Any]) -> _Strings:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    # the arrays of the string and large_string types, and of no other
    if not isinstance(arr, pa.StringArray | pa.LargeStringArray):
        raise TypeError(f"analyze_array needs strings, not {arr.type}")
    return arr


def _analyze_chunk(arr: _Strings, schema: pa.Schema) -> pa.Table:
    n = len(arr)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    unicode = pc.match_substring_regex(arr, _RE2_NON_GSM).fill_null(False)
    unicode_np = unicode.to_numpy(zero_copy_only=False)
    parts = np.ones(n, dtype=np.int64)
    labels = pa.nulls(n, pa.string())

    # gsm: only texts of more than 80 characters can need more than 160 septets
    chars = pc.utf8_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid & ~unicode_np & (chars > SINGLE_GSM_SEPTETS // 2))
    if rows.size:
        parts[rows] = _gsm_parts_array(arr.take(rows), chars[rows])

    rows = np.flatnonzero(unicode_np)
    if rows.size:
        uparts, ulabels = _unicode_array(arr.take(rows), chars[rows])
        parts[rows] = uparts
        index = np.zeros(n, dtype=np.int64)
        index[rows] = np.arange(rows.size)
        labels = ulabels.take(pa.array(index, pa.int64(), mask=~unicode_np))

    encoding = pa.DictionaryArray.from_arrays(
        pa.array(unicode_np.astype(np.int32), pa.int32(), mask=~valid), _ENCODINGS
    )
    columns = [
        encoding.cast(schema.field("computed_encoding").type),
        pa.array(parts, mask=~valid).cast(schema.field("computed_parts").type),
        labels.cast(schema.field("unicode_chars").type),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _view(buf: pa.Buffer | None, dtype: type[np.integer[Any]]) -> np.ndarray:
    """An Arrow buffer as a NumPy array (zero-copy); empty when the array has none."""
    return np.frombuffer(memoryview(buf), dtype=dtype) if buf is not None else np.zeros(0, dtype)


def _buffers(arr: pa.Array[Any]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes and int64 offsets of a string array without nulls."""
    wide = pa.types.is_large_string(arr.type)
    bufs = arr.buffers()
    offsets = _view(bufs[1], np.int64 if wide else np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
    data = _view(bufs[2], np.uint8)
    return data[offsets[0] : offsets[-1]], offsets - offsets[0]


def _per_row(positions: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """How many of the sorted `positions` fall in each row ``[starts[i], starts[i+1])``."""
    return np.diff(np.searchsorted(positions, starts))


def _codepoints(arr: pa.Array[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Code points of all rows end to end, and where each row starts in them (n + 1)."""
    data, offsets = _buffers(arr)
    lead = np.flatnonzero((data & 0xC0) != 0x80)
    return _decode_at(data, lead), np.searchsorted(lead, offsets)


def _gsm_parts_array(arr: pa.Array[Any], chars: np.ndarray) -> np.ndarray:
    """Parts of all-GSM texts: ``ceil(chars / 153)`` unless there are escape pairs."""
    parts = np.where(chars <= SINGLE_GSM_SEPTETS, 1, -(-chars // MULTI_GSM_SEPTETS))
    escaped = np.flatnonzero(pc.match_substring_regex(arr, _RE2_EXTENSION).to_numpy(False))
    if not escaped.size:
        return parts
    data, offsets = _buffers(arr.take(escaped))
    # In the UTF-8 of an all-GSM text the extension characters are the bytes below (0xE2
    # starts €), and a character starts on every byte but the continuation bytes 0x80-0xBF.
    ext = np.flatnonzero((((data | 0x20) - 0x7B) < 4) | (data == ord("\f")) | (data == 0xE2))
    cont = np.flatnonzero((data & 0xC0) == 0x80)
    row = np.searchsorted(offsets, ext, side="right") - 1
    first_ext = np.searchsorted(ext, offsets)
    char_index = (
        ext - offsets[row] - (np.searchsorted(cont, ext) - np.searchsorted(cont, offsets)[row])
    )
    # septet offset of each escape: its character's index plus the escapes before it; the
    # septet after it (the character's code) may not start a part
    escape_at = row * (1 << 32) + char_index + (np.arange(ext.size) - first_ext[row])
    septets = chars[escaped] + np.diff(first_ext)
    parts[escaped] = _walk(septets, escape_at + 1, SINGLE_GSM_SEPTETS, MULTI_GSM_SEPTETS, 1)
    return parts


def _walk(
    total: np.ndarray, inside: np.ndarray, single: int, multi: int, longest: int
) -> np.ndarray:
    """Parts of rows of `total` units packed greedily, never cutting before an `inside` unit.

    `inside` holds ``row * 2**32 + offset`` (sorted) of the units that may not start a part:
    the character after an escape, the low half of a surrogate pair, a code point that
    continues a grapheme cluster. No run of them is longer than `longest`.
    """
    parts = np.ones(total.size, dtype=np.int64)
    active = np.flatnonzero(total > single)
    pos = np.zeros(active.size, dtype=np.int64)
    if not inside.size:
        return np.where(total <= single, 1, -(-total // multi))
    while active.size:
        more = total[active] - pos > multi
        active, pos = active[more], pos[more]
        end = pos + multi
        key = active * (1 << 32)
        for _ in range(longest):
            at = np.searchsorted(inside, key + end)
            hit = inside[np.minimum(at, inside.size - 1)] == key + end
            if not hit.any():
                break
            end -= hit
        parts[active] += 1
        pos = end
    return parts


def _unicode_array(arr: pa.Array[Any], chars: np.ndarray) -> tuple[np.ndarray, pa.StringArray]:
    """Parts and ``unicode_chars`` labels of texts that need unicode (no nulls).

    Only the multi-byte characters are decoded (few in Latin-script texts); whole texts are
    decoded only where a part boundary may fall inside a pair or a cluster.
    """
    data, offsets = _buffers(arr)
    at = np.flatnonzero(data >= 0xC0)  # where a multi-byte character starts
    cps = _decode_at(data, at)
    units = chars + _per_row(at[cps > 0xFFFF], offsets)
    parts = np.where(units <= SINGLE_UCS2_UNITS, 1, -(-units // MULTI_UCS2_UNITS))
    # joining characters and non-BMP ones are all multi-byte
    hard_at = at[(cps > 0xFFFF) | _IS_COMPLEX_NP[_PROPS_NP[cps]]]
    rows = np.flatnonzero((units > SINGLE_UCS2_UNITS) & (_per_row(hard_at, offsets) > 0))
    if rows.size:
        sub = arr.take(rows)
        hcps, hstarts = _codepoints(sub)
        parts[rows] = _unicode_walk(hcps, _PROPS_NP[hcps], hstarts, units[rows])
        # clusters over 32 units: the calculator's own filling (see _simulate)
        for r in np.flatnonzero(parts[rows] < 0).tolist():
            parts[rows[r]] = _ucs2_parts(sub[r].as_py(), int(units[rows[r]]))
    # characters outside GSM: multi-byte ones, and the few ASCII ones (controls, backtick)
    outside = ~_IS_GSM_NP[cps]
    ascii_at = np.flatnonzero(
        ((data < 0x20) & (data != 0x0A) & (data != 0x0D) & (data != 0x0C))
        | (data == 0x60)
        | (data == 0x7F)
    )
    where, found = at[outside], cps[outside]
    if ascii_at.size:
        where = np.concatenate([where, ascii_at])
        found = np.concatenate([found, data[ascii_at].astype(np.uint32)])
        order = np.argsort(where, kind="stable")
        where, found = where[order], found[order]
    return parts, _labels(found, np.searchsorted(where, offsets))


def _decode_at(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Code points of the UTF-8 characters starting at byte positions `at` of `data`."""
    padded = np.concatenate([data, np.zeros(3, dtype=np.uint8)])
    head: np.ndarray = data[at]
    cps = head.astype(np.uint32)
    for size, low, mask in ((2, 0xC0, 0x1F), (3, 0xE0, 0x0F), (4, 0xF0, 0x07)):
        these = np.flatnonzero((head >= low) & (head <= (low | mask)))
        if not these.size:
            continue
        where = at[these]
        shift = 6 * (size - 1)
        value = (cps[these] & mask) << shift
        for k in range(1, size):
            value |= (padded[where + k].astype(np.uint32) & 0x3F) << (shift - 6 * k)
        cps[these] = value
    return cps


def _unicode_walk(
    cps: np.ndarray, props: np.ndarray, starts: np.ndarray, units: np.ndarray
) -> np.ndarray:
    """Parts of unicode rows (end to end); -1 where a cluster exceeds 32 units."""
    row_of = np.repeat(np.arange(units.size), np.diff(starts))
    wide = np.flatnonzero(cps > 0xFFFF)
    first_wide = np.searchsorted(wide, starts)
    # UTF-16 offset of a code point: its index in the row plus the wide ones before it
    cont = np.flatnonzero(~_cluster_starts(props, starts))
    low_half = wide - starts[row_of[wide]] + (np.arange(wide.size) - first_wide[row_of[wide]]) + 1
    joined = cont - starts[row_of[cont]] + (np.searchsorted(wide, cont) - first_wide[row_of[cont]])
    inside = np.sort(
        np.concatenate([row_of[wide] * (1 << 32) + low_half, row_of[cont] * (1 << 32) + joined])
    )
    parts = _walk(units, inside, SINGLE_UCS2_UNITS, MULTI_UCS2_UNITS, _SMALL_CLUSTER_UNITS)
    if inside.size >= _SMALL_CLUSTER_UNITS:
        # a run of 32 consecutive inside offsets is a cluster of more than 32 units
        step = np.diff(inside) == 1
        window = np.convolve(step, np.ones(_SMALL_CLUSTER_UNITS - 1, dtype=int), "valid")
        long_run = np.flatnonzero(window == _SMALL_CLUSTER_UNITS - 1)
        parts[inside[long_run] >> 32] = -1
    return parts


def _cluster_starts(props: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Whether each code point starts a grapheme cluster (rows end to end, none empty)."""
    n = len(props)
    first = np.ones(n, dtype=bool)
    joiner = _IS_COMPLEX_NP[props]
    if not joiner.any():
        return first
    row_first = np.zeros(n, dtype=bool)
    row_first[starts[:-1]] = True
    row_last = np.zeros(n, dtype=bool)
    row_last[starts[1:] - 1] = True
    after_joiner = np.concatenate([[False], joiner[:-1]]) & ~row_first
    before_joiner = np.concatenate([joiner[1:], [False]]) & ~row_last
    run_start = np.flatnonzero(joiner & ~after_joiner)
    run_end = np.flatnonzero(joiner & ~before_joiner) + 1
    # a chunk starts one code point before its run (a cluster start), and takes one more after
    # a Prepend or a Hangul L, which join whatever follows them
    begin = np.where(row_first[run_start], run_start, run_start - 1)
    last = props[run_end - 1]
    end = run_end + (((last == _PP) | (last == _L)) & ~row_last[run_end - 1])
    fresh = np.concatenate([[True], begin[1:] >= end[:-1]])
    groups = np.flatnonzero(fresh)
    begin, end = begin[groups], np.maximum.reduceat(end, groups)
    length = end - begin
    short = length <= _MAX_CHUNK
    for b, e in zip(begin[~short].tolist(), end[~short].tolist(), strict=True):
        first[[b + j for j in _joined_in_chunk(props[b:e].tolist())]] = False
    begin, length = begin[short], length[short]
    key = np.zeros(begin.size, dtype=np.int64)
    for k in range(_MAX_CHUNK):
        inside = k < length
        p = props[np.minimum(begin + k, n - 1)].astype(np.int64) + 1
        key |= np.where(inside, p, 0) << (_PROP_BITS * k)
    kinds, which = np.unique(key, return_inverse=True)
    masks = np.array([_joined_mask(int(k)) for k in kinds], dtype=np.int64)[which]
    for k in range(1, _MAX_CHUNK):
        first[begin[(masks >> k) & 1 == 1] + k] = False
    return first


@lru_cache(maxsize=4096)
def _joined_mask(key: int) -> int:
    """Bit mask of the code points that join the cluster before, for a chunk's key."""
    props = []
    while key:
        props.append((key & ((1 << _PROP_BITS) - 1)) - 1)
        key >>= _PROP_BITS
    return sum(1 << j for j in _joined_in_chunk(props))


class _Labels(dict[str, str]):
    """``"’ U+2019"`` for each character, made once."""

    def __missing__(self, char: str) -> str:
        label = self[char] = f"{char} U+{ord(char):04X}"
        return label


_LABELS = _Labels()


def _labels(found: np.ndarray, bounds: np.ndarray) -> pa.StringArray:
    """``unicode_chars`` of each row, from its non-GSM code points (rows end to end)."""
    rows = bounds.size - 1
    if not found.size:
        return pa.array([""] * rows, pa.string())
    # keep the first occurrence of each (row, code point), in text order
    row = np.repeat(np.arange(rows, dtype=np.int64), np.diff(bounds))
    key = (row << 21) | found.astype(np.int64)
    order = np.argsort(key)
    ranked = key[order]
    starts = np.flatnonzero(np.concatenate([[True], ranked[1:] != ranked[:-1]]))
    keep = np.zeros(found.size, dtype=bool)
    keep[np.minimum.reduceat(order, starts)] = True
    distinct = found[keep]
    # label each distinct code point once, then join each row's labels in Arrow
    if distinct.size < 1 << 16:  # small batches: sorting beats a table of every code point
        chars, index = np.unique(distinct, return_inverse=True)
    else:
        present = np.zeros(0x110000, dtype=bool)
        present[distinct] = True
        chars = np.flatnonzero(present)
        index = (np.cumsum(present) - 1)[distinct]
    names = pa.array([_LABELS[chr(c)] for c in chars.tolist()], pa.string())
    offsets = np.concatenate([[0], np.cumsum(keep)])[bounds].astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(index, pa.int64())))
    # the stubs type the result for a scalar or an array: a list array gives an array
    return cast(pa.StringArray, pc.binary_join(lists, ", "))
