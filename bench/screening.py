"""``uv run python -m bench.screening``: how long one ``Screener.screen`` call takes on a
synthetic 20,000-entry list. It reports figures; it is not a pass/fail test.

The list imitates the real ones where it matters for speed: made-up surnames from syllables
(mostly distinct), given names drawn unevenly from a small pool (a few very common, like
"Mohammed" on real lists), an "al" particle on a fifth of the people, entities whose names share
common words ("trading", "llc"), one to four names per entry. The queries mix what screening
sees: a third listed names rewritten (order swapped, a letter changed, a name dropped), two
thirds names that are on no list, which is most payment traffic.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from policies import screening
from policies.sanctions import SanctionsEntry
from policies.screening import Screener

entries_count_default = 20_000
queries_count_default = 6_000
_syllables = ("ka", "ra", "mi", "to", "vel", "shi", "an", "dor", "ov", "ich", "al", "ham", "mo",
              "sa", "li", "ne", "ber", "gu", "ta", "zi", "ko", "ru", "de", "na", "fa", "hu", "sen",
              "pe", "tr", "ya", "lo", "vi", "ch", "ma", "ri", "bo")
_surname_endings = ("", "", "ov", "ova", "enko", "ski", "ez", "i", "yan", "uddin")
_entity_endings = ("llc", "ltd", "jsc", "co ltd", "sa", "gmbh", "")
_entity_words_common = ("trading", "shipping", "group", "international", "holding", "bank",
                        "industrial", "company", "logistics", "energy")


def _word(rng: random.Random, syllables_min: int, syllables_max: int) -> str:
    return "".join(rng.choice(_syllables) for _ in range(rng.randint(syllables_min,
                                                                      syllables_max)))


def synthetic_entries(count: int = entries_count_default, seed: int = 7) -> list[SanctionsEntry]:
    """``count`` made-up entries, three in four individuals, the same for the same seed."""
    rng = random.Random(seed)
    given_names = [_word(rng, 2, 3).capitalize() for _ in range(400)]
    given_weights = [1 / (rank + 1) for rank in range(len(given_names))]
    entity_words = [_word(rng, 2, 4) for _ in range(1_500)]
    entries = []
    for number in range(count):
        if rng.random() < 0.75:
            names, dobs = _person_names(rng, given_names, given_weights), _dobs(rng)
            kind = "individual"
        else:
            names, dobs, kind = _entity_names(rng, entity_words), (), "entity"
        entries.append(SanctionsEntry("ofac", str(100_000 + number), kind, names, dobs,
                                      ("SYNTHETIC",)))
    return entries


def _person_names(rng: random.Random, given: list[str], weights: list[float]) -> tuple[str, ...]:
    first, middle = rng.choices(given, weights, k=2)
    middle = middle if middle != first else rng.choice(given)
    surname = (_word(rng, 2, 3) + rng.choice(_surname_endings)).upper()
    surname = f"AL-{surname}" if rng.random() < 0.2 else surname
    names = [f"{surname}, {first} {middle}"]
    for _ in range(rng.randint(0, 3)):
        spelling = surname.replace(rng.choice(surname), rng.choice("AEIOUY"), 1)
        names.append(rng.choice((f"{spelling}, {first}", f"{first} {spelling}",
                                 _word(rng, 2, 3).upper())))
    return tuple(dict.fromkeys(names))


def _entity_names(rng: random.Random, words: list[str]) -> tuple[str, ...]:
    core = [rng.choice(words) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.6:
        core.append(rng.choice(_entity_words_common))
    name = " ".join([*core, rng.choice(_entity_endings)]).strip().upper()
    return (name, " ".join(core[:2]).upper()) if rng.random() < 0.5 else (name,)


def _dobs(rng: random.Random) -> tuple[str, ...]:
    year = rng.randint(1940, 2000)
    if rng.random() < 0.3:
        return (str(year),)
    return (f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",)


def queries(entries: list[SanctionsEntry], count: int, seed: int = 11) -> list[str]:
    """Listed names rewritten (a third) and unlisted names (the rest)."""
    rng = random.Random(seed)
    unlisted = synthetic_entries(count, seed=seed + 1)
    out = []
    for number in range(count):
        if number % 3 == 0:
            words = rng.choice(entries).names[0].replace(",", "").split()
            rng.shuffle(words)
            if len(words) > 2 and rng.random() < 0.5:
                words.pop()
            out.append(" ".join(words))
        else:
            out.append(unlisted[number].names[0])
    return out


def _timed(screener: Screener, names: list[str]) -> tuple[list[float], int]:
    latencies_us = []
    hits = 0
    for name in names:
        started = time.perf_counter()
        hits += bool(screener.screen(name, "1970-01-01"))
        latencies_us.append((time.perf_counter() - started) * 1e6)
    return sorted(latencies_us), hits


def _line(label: str, latencies_us: list[float], hits: int) -> str:
    count = len(latencies_us)
    return (f"screen() {label}: {count} calls, {hits} with a match; mean "
            f"{statistics.fmean(latencies_us):.0f} us, p50 {latencies_us[count // 2]:.0f} us, "
            f"p99 {latencies_us[count * 99 // 100]:.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=entries_count_default)
    parser.add_argument("--queries", type=int, default=queries_count_default)
    args = parser.parse_args()
    entries = synthetic_entries(args.entries)
    started = time.perf_counter()
    screener = Screener(entries)
    build_s = time.perf_counter() - started
    names = queries(entries, args.queries)
    print(f"entries {len(entries)}, names indexed {sum(len(e.names) for e in entries)}, "
          f"index built in {build_s:.2f} s")
    print(_line("token views cached", *_timed(screener, names)))
    views_max = screening.token_views_max
    screening.token_views_max = 1  # every new query token is looked up afresh
    try:
        print(_line("no token views cached", *_timed(Screener(entries), names)))
    finally:
        screening.token_views_max = views_max


if __name__ == "__main__":
    main()
