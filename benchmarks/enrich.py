"""Time :func:`smsanalytics.numbers.describe_numbers` on distinct plausible numbers.

Numbers are libphonenumber's example mobile and fixed-line numbers of a dozen countries with
their last five digits drawn at random, so most are valid and all are distinct.

Usage: ``python benchmarks/enrich.py [--numbers 50000] [--seed 1]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import phonenumbers
from phonenumbers import PhoneNumberType

from smsanalytics.numbers import describe_numbers

COUNTRIES = ["FR", "DE", "GB", "ES", "IT", "BE", "US", "CA", "BR", "IN", "MA", "SN", "RU", "JP"]


def plausible_numbers(count: int, seed: int) -> list[str]:
    """`count` distinct E.164 numbers shaped like real ones."""
    rng = random.Random(seed)
    stems = []
    for region in COUNTRIES:
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                stems.append(e164[:-5])
    out: set[str] = set()
    while len(out) < count:
        out.add(rng.choice(stems) + f"{rng.randrange(100_000):05d}")
    return sorted(out, key=lambda _: rng.random())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    numbers = plausible_numbers(args.numbers, args.seed)
    t0 = time.perf_counter()
    table = describe_numbers(numbers + numbers[: len(numbers) // 10])  # some repeats too
    elapsed = time.perf_counter() - t0
    valid = sum(table.column("valid").to_pylist())
    print(
        f"describe_numbers: {table.num_rows:,} distinct numbers in {elapsed:.2f} s "
        f"({1e6 * elapsed / table.num_rows:.0f} µs each; {valid:,} valid)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
