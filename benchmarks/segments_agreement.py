"""Check :mod:`smsanalytics.segments` against Twilio's segment calculator, and time it.

Generates random message bodies (GSM text, extension characters, French accents, smart
punctuation, emoji with skin tones, flags and ZWJ sequences, CJK, Cyrillic, Arabic, Hindi,
Korean, combining accents, line breaks, lengths around every part boundary), runs them through
the npm package ``sms-segments-calculator`` in Node and through :func:`analyze`, and prints the
share of texts on which encoding and part count agree. Then times :func:`analyze_array` on
a million mostly-distinct bodies of 20 to 300 characters.

The npm package is looked for in ``benchmarks/_work`` (git-ignored); install it with::

    cd benchmarks && mkdir -p _work && cd _work && npm install sms-segments-calculator

Without Node or the package, the agreement check is skipped with a message (exit status 0).

Usage: ``python benchmarks/segments_agreement.py [-n 5000] [--rows 1000000] [--seed 1]``
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa

from smsanalytics.segments import GSM_BASIC, GSM_EXTENSION, analyze, analyze_array

WORK = Path(__file__).resolve().parent / "_work"

# Reads a JSON array of texts on stdin, writes [encoding, parts] for each on stdout.
NODE_SCRIPT = """
const { SegmentedMessage } = require('sms-segments-calculator');
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((t) => {
    const m = new SegmentedMessage(t);
    return [m.encodingName === 'GSM-7' ? 'gsm' : 'unicode', m.segmentsCount];
  });
  process.stdout.write(JSON.stringify(out));
});
"""

ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?:;'\"-()+/=*&%#@"
FRENCH = "éèàùçêâôîûëïœÉÈÀÇ"
SMART = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a0\u00ab\u00bb\u2022"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТ"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
HARAKAT = "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652"
CJK = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"
HINDI = "नमस्तेभारतकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह\u093e\u093f\u0940\u0941\u0947\u094b\u094d"
KOREAN = "안녕하세요감사합니다한국어"
JAMO = "\u1100\u1161\u11a8\u1102\u1165\u11ab"
COMBINING = "\u0301\u0300\u0302\u0308\u0327\u0303"
EMOJI = ["😀", "😂", "❤", "❤️", "👍", "👍🏽", "🙏🏻", "🎉", "🔥", "☺️", "✌🏿", "💋",
         "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨", "🏳️‍🌈", "🇫🇷", "🇺🇸", "🇯🇵", "1️⃣", "👩🏽‍💻", "🤷‍♂️",
         "🧑🏾‍🚀", "😀\ufe0f", "🫶", "🥰"]  # fmt: skip
GSM_ALL = GSM_BASIC + GSM_EXTENSION
BOUNDARIES = [70, 134, 201, 268, 160, 306, 459, 612]


def _piece(rng: random.Random, kind: str) -> str:
    if kind == "gsm":
        return rng.choice(ASCII) if rng.random() < 0.9 else rng.choice(GSM_ALL)
    if kind == "ext":
        return (
            rng.choice(GSM_EXTENSION.replace("\f", "")) if rng.random() < 0.2 else rng.choice(ASCII)
        )
    if kind == "french":
        return rng.choice(FRENCH) if rng.random() < 0.1 else rng.choice(ASCII)
    if kind == "smart":
        return rng.choice(SMART) if rng.random() < 0.05 else rng.choice(ASCII)
    if kind == "emoji":
        return rng.choice(EMOJI) if rng.random() < 0.15 else rng.choice(ASCII)
    if kind == "cyrillic":
        return rng.choice(CYRILLIC + " ")
    if kind == "arabic":
        return rng.choice(ARABIC + " ") + (rng.choice(HARAKAT) if rng.random() < 0.3 else "")
    if kind == "cjk":
        return rng.choice(CJK)
    if kind == "hindi":
        return rng.choice(HINDI)
    if kind == "korean":
        return rng.choice(KOREAN) if rng.random() < 0.9 else rng.choice(JAMO)
    if kind == "combining":
        return rng.choice(ASCII) + (
            rng.choice(COMBINING) * rng.randint(1, 3) if rng.random() < 0.2 else ""
        )
    if kind == "lines":
        return rng.choice(["\n", "\r\n", "\r"]) if rng.random() < 0.1 else rng.choice(GSM_ALL)
    # "mixed": anything at all
    return _piece(rng, rng.choice(KINDS[:-1]))


KINDS = ["gsm", "ext", "french", "smart", "emoji", "cyrillic", "arabic", "cjk", "hindi",
         "korean", "combining", "lines", "mixed"]  # fmt: skip


def random_text(rng: random.Random) -> str:
    """One random body, often with a length at or around a part boundary."""
    kind = rng.choice(KINDS)
    target = (
        rng.choice(BOUNDARIES) + rng.randint(-3, 3) if rng.random() < 0.5 else rng.randint(0, 700)
    )
    text = ""
    while len(text.encode("utf-16-le")) // 2 < target:
        text += _piece(rng, kind)
    return text


def node_results(texts: list[str]) -> list[tuple[str, int]] | None:
    """Encoding and parts of each text according to the npm package, or None if unavailable."""
    node = shutil.which("node")
    if node is None:
        print("node not found: agreement check skipped")
        return None
    if not (WORK / "node_modules" / "sms-segments-calculator").is_dir():
        print(f"sms-segments-calculator not installed in {WORK}: agreement check skipped")
        print(
            "  (cd benchmarks && mkdir -p _work && cd _work && npm install sms-segments-calculator)"
        )
        return None
    proc = subprocess.run(
        [node, "-e", NODE_SCRIPT],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=WORK,
        check=True,
    )
    return [tuple(r) for r in json.loads(proc.stdout)]


def check_agreement(n: int, seed: int) -> None:
    rng = random.Random(seed)
    texts = [""] + [random_text(rng) for _ in range(n - 1)]
    expected = node_results(texts)
    if expected is None:
        return
    ours = [analyze(t) for t in texts]
    disagree = [
        (t, e, (o.encoding, o.parts))
        for t, e, o in zip(texts, expected, ours, strict=True)
        if e != (o.encoding, o.parts)
    ]
    agree = 100 * (n - len(disagree)) / n
    print(f"agreement with sms-segments-calculator: {agree:.2f}% of {n} texts")
    for text, theirs, mine in disagree[:10]:
        print(f"  differ: {text!r}: calculator {theirs}, analyze {mine}")
    vec = analyze_array(pa.array(texts))
    encodings = vec.column("computed_encoding").to_pylist()
    vec_rows = zip(encodings, vec.column("computed_parts").to_pylist(), strict=True)
    same = sum((e, p) == (o.encoding, o.parts) for (e, p), o in zip(vec_rows, ours, strict=True))
    print(f"analyze_array == analyze on {same} of {n} texts")


#: Shares of each kind of text: "heavy" is rich in what needs exact packing (escape pairs,
#: emoji, scripts with combining marks); "typical" looks more like French inbound SMS.
MIXES = {
    "heavy": {"gsm": 0.62, "ext": 0.08, "french": 0.12, "smart": 0.06, "emoji": 0.08,
              "cyrillic": 0.01, "arabic": 0.01, "cjk": 0.01, "korean": 0.01},
    "typical": {"gsm": 0.80, "french": 0.10, "smart": 0.05, "emoji": 0.04, "ext": 0.01},
}  # fmt: skip


def million(rows: int, seed: int, mix: str = "heavy") -> pa.Array:
    """`rows` mostly-distinct bodies of 20-300 characters, with the given mix of kinds."""
    rng = random.Random(seed)
    texts: list[str] = []
    for kind, share in MIXES[mix].items():
        corpus = "".join(_piece(rng, kind) for _ in range(400_000))
        for _ in range(int(rows * share)):
            length = rng.randint(20, 300)
            start = rng.randrange(len(corpus) - length)
            texts.append(corpus[start : start + length])
    texts += texts[: rows - len(texts)]
    rng.shuffle(texts)
    return pa.array(texts)


def time_array(rows: int, seed: int) -> None:
    for mix in MIXES:
        arr = million(rows, seed, mix)
        best = float("inf")
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            table = analyze_array(arr)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            best = min(best, wall)
        share = table.column("computed_encoding").to_pylist().count("unicode") / rows
        print(
            f"analyze_array, {mix} mix: {rows:,} rows in {best:.2f} s "
            f"(best of 3, CPU {cpu:.2f} s; {share:.0%} unicode)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="random texts to compare")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to time")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    check_agreement(args.n, args.seed)
    if args.rows:
        time_array(args.rows, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
