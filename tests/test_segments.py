"""Segment counting: GSM 03.38 table, part boundaries, grapheme clusters, vectorised path.

Expected values are worked out from the rules (160/153 septets, 70/67 UTF-16 units, an
escape pair, a surrogate pair or a grapheme cluster never split), not read off the code.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from smsanalytics.schema import column
from smsanalytics.segments import (
    GSM_BASIC,
    GSM_EXTENSION,
    _simulate,
    analyze,
    analyze_array,
    format_unicode_chars,
    gsm_lookalike,
)

# GSM 03.38 default alphabet, 0x00-0x7F, 0x1B (escape) left out.
SPEC_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
SPEC_EXTENSION = "\f^{}\\[~]|€"


def parts(text: str) -> int:
    return analyze(text).parts


# --- the GSM table ---------------------------------------------------------------------


def test_gsm_tables_match_the_spec():
    assert len(SPEC_BASIC) == 127 and len(SPEC_EXTENSION) == 10
    assert sorted(GSM_BASIC) == sorted(SPEC_BASIC)
    assert sorted(GSM_EXTENSION) == sorted(SPEC_EXTENSION)


@pytest.mark.parametrize("char", list(SPEC_BASIC))
def test_every_basic_character_is_one_septet(char):
    info = analyze(char)
    assert (info.encoding, info.units, info.parts, info.unicode_chars) == ("gsm", 1, 1, ())


@pytest.mark.parametrize("char", list(SPEC_EXTENSION))
def test_every_extension_character_is_two_septets(char):
    info = analyze(char)
    assert (info.encoding, info.units, info.parts) == ("gsm", 2, 1)


@pytest.mark.parametrize(
    "char",
    [
        "ç",  # only the capital Ç is in GSM 03.38
        "ê", "â", "ô", "î", "û", "ë", "ï", "œ", "È", "À",  # French letters outside it
        "\u2019", "\u2018", "\u201c", "\u201d",  # curly quotes
        "\u2013", "\u2014", "\u2026", "\u00a0",  # dashes, ellipsis, no-break space
        "`", "\t", "\x1b", "\x00",  # ASCII outside it
        "\u2206", "\u2126",  # increment and ohm signs, not the Greek Δ and Ω
        "\U0001f600", "ж", "中", "ب",
    ],
)  # fmt: skip
def test_characters_outside_the_table_force_unicode(char):
    info = analyze("Hello " + char)
    assert info.encoding == "unicode"
    assert info.unicode_chars == (char,)


def test_empty_text_is_one_gsm_part():
    # Twilio's calculator: an empty message is still one (empty) segment
    info = analyze("")
    assert (info.encoding, info.parts, info.units, info.unicode_chars) == ("gsm", 1, 0, ())


# --- GSM boundaries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm_part_boundaries(length, expected):
    assert parts("a" * length) == expected


def test_extension_characters_count_two_septets():
    assert parts("€" * 80) == 1  # 160 septets
    assert parts("€" * 80 + "a") == 2  # 161
    assert analyze("a{b}").units == 6


def test_escape_pair_is_never_split_across_parts():
    # 306 septets either way; ceil(306 / 153) = 2 parts only if no pair straddles septet 153
    assert parts("a" * 153 + "€" + "a" * 151) == 2  # 153 | € + 151 = 153
    # the € would take septets 153-154: part 1 stops at 152, leaving 154 septets for later
    assert parts("a" * 152 + "€" + "a" * 152) == 3


def test_extension_at_the_single_part_limit():
    assert parts("a" * 158 + "€") == 1  # 160 septets
    assert parts("a" * 159 + "€") == 2  # 161: the pair does not fit in one SMS


def test_cr_and_lf_are_one_septet_each():
    assert analyze("a\r\nb").units == 4
    assert analyze("a\r\nb").encoding == "gsm"
    assert parts("a" * 158 + "\r\n") == 1
    assert parts("a" * 159 + "\r\n") == 2


# --- UCS-2 boundaries ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_unicode_part_boundaries(length, expected):
    info = analyze("ç" * length)
    assert (info.encoding, info.units, info.parts) == ("unicode", length, expected)


def test_gsm_characters_in_a_unicode_text_are_one_unit():
    # in UCS-2, the extension characters are plain 16-bit characters
    assert analyze("ç" + "€" * 69).units == 70
    assert parts("ç" + "€" * 69) == 1


def test_non_bmp_characters_take_two_units():
    assert analyze("\U0001f600").units == 2
    assert parts("ç" * 68 + "\U0001f600") == 1  # 70 units
    assert parts("ç" * 69 + "\U0001f600") == 2  # 71 units


def test_surrogate_pair_is_never_split_across_parts():
    # 134 units either way
    assert parts("ç" * 65 + "\U0001f600" + "ç" * 67) == 2  # 65 + 2 = 67 | 67
    # the emoji would take units 67-68: part 1 stops at 66, part 2 = 2 + 65, one unit left
    assert parts("ç" * 66 + "\U0001f600" + "ç" * 66) == 3


def test_grapheme_cluster_is_never_split_across_parts():
    thumbs = "\U0001f44d\U0001f3fd"  # thumbs up + skin tone: one character, 4 units
    assert analyze(thumbs).units == 4
    # cut per code point, part 1 would be 65 + 2 = 67 units; the cluster keeps 4 together:
    # part 1 = 65, part 2 = 4 + 63, 2 units left
    assert parts("ç" * 65 + thumbs + "ç" * 65) == 3
    accent = "e\u0301"  # e + combining acute: one character
    assert parts("ç" * 66 + accent + "ç" * 66) == 3  # part 1 = 66, part 2 = 2 + 65, 1 left
    flag = "\U0001f1eb\U0001f1f7"
    assert parts("ç" * 65 + flag + "ç" * 65) == 3


def test_a_cluster_longer_than_a_part_gets_parts_of_its_own():
    # the calculator opens a new part for a character that does not fit, even if it never
    # will: an 80-unit cluster leaves the first part empty and overflows the second
    zalgo = "e" + "\u0301" * 79
    assert analyze(zalgo).units == 80
    assert parts(zalgo) == 2
    assert parts(zalgo + "ç") == 3


def test_simulation_equals_greedy_packing_for_small_characters():
    rng = random.Random(5)
    for _ in range(300):
        sizes = [rng.choice([1, 1, 1, 2, 4, 7, 32]) for _ in range(rng.randint(1, 300))]
        greedy, used = 1, 0
        if sum(sizes) > 70:
            for s in sizes:
                if used + s > 67:
                    greedy, used = greedy + 1, 0
                used += s
        assert _simulate([16 * s for s in sizes]) == greedy


# --- unicode_chars and look-alikes -----------------------------------------------------


def test_unicode_chars_are_distinct_in_order_of_first_appearance():
    info = analyze("A\u2019b\U0001f600c\u2019\U0001f600ç")
    assert info.unicode_chars == ("\u2019", "\U0001f600", "ç")
    assert format_unicode_chars(info.unicode_chars) == "\u2019 U+2019, \U0001f600 U+1F600, ç U+00E7"
    assert format_unicode_chars(()) is None


def test_gsm_lookalike_replaces_smart_punctuation():
    text = "\u2018a\u2019 \u201cb\u201d \u201ec\u201f x\u2013y\u2014z\u2026\u00a0!\u202f?"
    assert gsm_lookalike(text) == '\'a\' "b" "c" x-y-z... ! ?'
    assert gsm_lookalike("ça 😀") == "ça 😀"  # letters and emoji are not punctuation


def test_lookalike_parts():
    info = analyze("\u2019" + "a" * 100)
    assert (info.encoding, info.parts) == ("unicode", 2)  # 101 units
    assert (info.lookalike_encoding, info.lookalike_parts) == ("gsm", 1)  # 101 septets
    still = analyze("C\u2019est ça")
    assert still.lookalike_encoding == "unicode"  # ç stays
    plain = analyze("plain")
    assert (plain.lookalike_encoding, plain.lookalike_parts) == ("gsm", 1)
    # the ellipsis is one unit in UCS-2 but three septets in GSM
    assert analyze("a" * 158 + "\u2026").lookalike_parts == 2


# --- vectorised ------------------------------------------------------------------------

PIECES = (
    list("abcdefghijklmnopqrstuvwxyz ABC.,!?0123456789")
    + list(SPEC_BASIC)
    + list(SPEC_EXTENSION) * 3
    + ["ç", "ê", "\u2019", "\u2026", "\u00a0", "ж", "中", "ب\u064e", "\r\n", "\n"]
    + ["\U0001f600", "\u2764\ufe0f", "\U0001f44d\U0001f3fd", "\U0001f1eb\U0001f1f7"]
    + ["\U0001f468\u200d\U0001f469\u200d\U0001f467", "1\ufe0f\u20e3", "e\u0301", "\u1100\u1161"]
)


def random_texts(count: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = [None, "", "e" + "\u0301" * 79, "x" + "\u0301" * 40 + "ç" * 60]
    while len(texts) < count:
        mode = rng.random()
        if mode < 0.05:
            texts.append(None)
            continue
        if mode < 0.3:
            alphabet = list("abc de") + list(SPEC_EXTENSION)
        elif mode < 0.5:
            alphabet = list("abc de") + ["ç", "\U0001f600", "\U0001f44d\U0001f3fd"]
        else:
            alphabet = PIECES
        target = rng.choice([70, 134, 160, 201, 306, rng.randint(1, 500)]) + rng.randint(-3, 3)
        text = ""
        while len(text) < target:
            text += rng.choice(alphabet)
        texts.append(text)
    return texts


def expected_rows(texts: list[str | None]) -> list[tuple]:
    rows = []
    for t in texts:
        if t is None:
            rows.append((None, None, None))
        else:
            info = analyze(t)
            rows.append((info.encoding, info.parts, format_unicode_chars(info.unicode_chars)))
    return rows


def table_rows(table: pa.Table) -> list[tuple]:
    cols = ("computed_encoding", "computed_parts", "unicode_chars")
    return list(zip(*(table.column(c).to_pylist() for c in cols), strict=True))


def test_analyze_array_equals_analyze_row_by_row():
    texts = random_texts(600, seed=3)
    table = analyze_array(pa.array(texts))
    assert table.num_rows == len(texts)
    assert table_rows(table) == expected_rows(texts)


def test_analyze_array_types_come_from_the_schema():
    table = analyze_array(pa.array(["a", None]))
    for name in ("computed_encoding", "computed_parts", "unicode_chars"):
        assert table.schema.field(name).type == column(name).type


def test_analyze_array_handles_chunks_large_strings_dictionaries_and_slices():
    texts = random_texts(300, seed=8)
    expected = expected_rows(texts)
    chunked = pa.chunked_array([pa.array(texts[:100]), pa.array(texts[100:])])
    assert table_rows(analyze_array(chunked)) == expected
    assert table_rows(analyze_array(pa.array(texts, pa.large_string()))) == expected
    assert table_rows(analyze_array(pa.array(texts).dictionary_encode())) == expected
    assert table_rows(analyze_array(pa.array(texts).slice(50, 100))) == expected[50:150]
    assert analyze_array(pa.array([], pa.string())).num_rows == 0
    assert analyze_array(pa.chunked_array([], pa.string())).num_rows == 0
    assert table_rows(analyze_array(pa.nulls(2))) == [(None, None, None)] * 2


def test_analyze_array_examples():
    table = analyze_array(pa.array(["Hello", "J\u2019arrive \U0001f600", None]))
    assert table_rows(table) == [
        ("gsm", 1, None),
        ("unicode", 1, "\u2019 U+2019, \U0001f600 U+1F600"),
        (None, None, None),
    ]


# --- against the calculator itself, when it is installed -------------------------------

WORK = Path(__file__).resolve().parents[1] / "benchmarks" / "_work"
NODE = shutil.which("node")
CALCULATOR = WORK / "node_modules" / "sms-segments-calculator"


@pytest.mark.skipif(
    NODE is None or not CALCULATOR.is_dir(),
    reason="node and benchmarks/_work/node_modules/sms-segments-calculator needed",
)
def test_agrees_with_twilio_calculator():
    texts = [t for t in random_texts(400, seed=11) if t is not None]
    script = (
        "const {SegmentedMessage} = require('sms-segments-calculator');"
        "let s = ''; process.stdin.on('data', d => s += d).on('end', () => {"
        "process.stdout.write(JSON.stringify(JSON.parse(s).map(t => {"
        "const m = new SegmentedMessage(t);"
        "return [m.encodingName === 'GSM-7' ? 'gsm' : 'unicode', m.segmentsCount]; })));});"
    )
    out = subprocess.run(
        [NODE, "-e", script], input=json.dumps(texts), capture_output=True, text=True,
        cwd=WORK, check=True,
    )  # fmt: skip
    theirs = [tuple(r) for r in json.loads(out.stdout)]
    ours = [(analyze(t).encoding, analyze(t).parts) for t in texts]
    assert ours == theirs
