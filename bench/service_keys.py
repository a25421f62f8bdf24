"""Service-key matching's time by which key is presented: the first, the last, none, a near miss.

``config.service_keys.matching`` compares the presented key's SHA-256 with
every key's, whichever matches: the time should not tell which key matched,
whether one did, or how long the keys are. Each figure is its best round (the
least disturbed by other work, as timeit advises); the rounds alternate
between the cases. ``python bench/service_keys.py``
prints the table; ``make bench`` does not run it.
"""

from __future__ import annotations

import argparse
import secrets
import timeit

from sessionsvc.config.service_keys import SCOPES, ServiceKey, matching


def keys(count: int) -> list[ServiceKey]:
    """Return ``count`` keys of assorted lengths (32 to 96 bytes)."""
    return [
        ServiceKey(f"caller-{n}", frozenset(SCOPES), secrets.token_urlsafe(24 + 8 * (n % 9)))
        for n in range(count)
    ]


def main() -> None:
    """Print microseconds per match for each case, by the number of keys."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000)
    options = parser.parse_args()
    print("| keys | case | µs per match |")
    print("| ---: | --- | ---: |")
    for count in (1, 3, 10):
        ring = keys(count)
        cases = {
            "the first key": ring[0].key,
            "the last key": ring[-1].key,
            "no key (empty)": "",
            "a near miss (the first key but its last byte)": ring[0].key[:-1],
            "a long wrong key (4 KiB)": "x" * 4096,
        }
        # The rounds alternate between the cases: a busy spell of the machine
        # slows one round of each, not every round of one case.
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(options.rounds):
            for case, presented in cases.items():
                took = timeit.timeit(
                    lambda ring=ring, presented=presented: matching(ring, presented),
                    number=options.number,
                )
                best[case] = min(best[case], took)
        for case, took in best.items():
            print(f"| {count} | {case} | {took / options.number * 1e6:.2f} |")


if __name__ == "__main__":
    main()
