"""Screening names against list entries: what must match (exact, misspelt, reordered, short a
middle name, an alias, another script), what must not (other people, single words), and how
dates of birth and the threshold move the outcome. Mostly on the sample lists."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.screening import synthetic_entries
from policies import sanctions, screening
from policies.sanctions import SanctionsEntry, parse
from policies.screening import Match, Screener, normalise

samples = Path(sanctions.__file__).parent / "samples"
entries = [
    *parse("ofac", (samples / "ofac_sdn.xml").read_bytes()),
    *parse("eu", (samples / "eu_consolidated.xml").read_bytes()),
    *parse("uk", (samples / "uk_sanctions_list.xml").read_bytes()),
]
screener = Screener(entries)
threshold = screening.threshold_default


def hits(matches: list[Match]) -> dict[tuple[str, str], Match]:
    return {(m.entry.list_name, m.entry.entry_id): m for m in matches}


def one(name: str, dob: str | None = None) -> Screener:
    return Screener([SanctionsEntry("ofac", "1", "individual", (name,),
                                    (dob,) if dob else (), ("TEST",))])


def test_the_same_name_and_date_is_an_exact_match_on_every_list() -> None:
    matches = screener.screen("Pavel Ivanovich Testovskiy", "1960-01-12")
    assert [(m.entry.list_name, m.entry.entry_id, m.score, m.exact) for m in matches] == [
        ("eu", "190001", 100, True), ("ofac", "90001", 100, True), ("uk", "RUS9001", 100, True)]
    assert matches[1].reason == ("'Pavel Ivanovich Testovskiy' matches primary name "
                                 "'TESTOVSKIY, Pavel Ivanovich' of OFAC 90001 "
                                 "(score 100, DOB 1960-01-12 agrees)")


@pytest.mark.parametrize(("query", "matched_name", "score"), [
    ("TESTOVSKIY Pavel Ivanovich", "TESTOVSKIY, Pavel Ivanovich", 100),  # swapped order
    ("Pavel Ivanovich Testovski", "TESTOVSKIY, Pavel Ivanovich", 98),  # misspelt
    ("Pavel Ivanovitch Testovskiy", "TESTOVSKIY, Pavel Ivanovich", 98),  # transliteration
    ("Pavel Testovskiy", "TESTOVSKY, Pavel", 97),  # missing middle name, alias nearest
    ("Khalid Al-Mithali", "AL-MITHALI, Khalid Omar", 95),  # missing middle name
    ("Marta Quillfeather", "QUILLFEATHER, Marta Elena", 95),
    ("Mrs. Marta Elena Quillfeather", "QUILLFEATHER, Marta Elena", 100),  # honorific dropped
    ("Blue Heron Fictitious Shipping", "BLUE HERON FICTITIOUS SHIPPING CO., LTD.", 90),
])
def test_close_names_match_over_the_threshold(query: str, matched_name: str, score: int) -> None:
    match = hits(screener.screen(query))["ofac", matches_id(matched_name)]
    assert (match.matched_name, match.score) == (matched_name, score)
    assert match.exact == (score == 100)


def matches_id(name: str) -> str:
    return next(e.entry_id for e in entries if e.list_name == "ofac" and name in e.names)


def test_aliases_are_names() -> None:
    match = hits(screener.screen("Khaled Al Mithaly"))["ofac", "90002"]
    assert (match.matched_name, match.score, match.exact) == ("AL-MITHALY, Khaled", 100, True)
    assert "matches alias 'AL-MITHALY, Khaled' of OFAC 90002" in match.reason
    entity = hits(screener.screen("Northwind Trading"))
    assert {key: m.matched_name for key, m in entity.items()} == {
        ("eu", "190002"): "Northwind Trading", ("ofac", "90003"): "NORTHWIND TRADING",
        ("uk", "RUS9003"): "NORTHWIND TRADING"}


def test_entities_vessels_and_individuals_are_screened_alike() -> None:
    kinds = {m.entry.kind for name in ("Sample Star", "UR-XMPL", "Northwind Example Trading LLC",
                                       "Marta Elena Quillfeather")
             for m in screener.screen(name) if m.exact}
    assert kinds == {"vessel", "aircraft", "entity", "individual"}


def test_cyrillic_matches_its_latin_spelling_both_ways() -> None:
    latin = hits(screener.screen("Павел Иванович Тестовский"))
    assert latin["ofac", "90001"].exact
    only_cyrillic = one("Павел Иванович Тестовский")
    assert only_cyrillic.screen("Pavel Ivanovich Testovskiy")[0].exact
    assert only_cyrillic.screen("Pavel Testovskiy")[0].score == 95
    assert normalise("Пётр Иванов") == "petr ivanov"


def test_chinese_matches_its_pinyin_in_either_order() -> None:
    assert normalise("桓试验") == "huan shiyan"
    assert normalise("习近平") == "xi jinping"
    only_chinese = one("桓试验")
    assert only_chinese.screen("HUAN Shiyan")[0].exact
    assert only_chinese.screen("Shiyan Huan")[0].exact
    uk = hits(screener.screen("桓试验", "1985-03-03"))["uk", "CHN9005"]
    assert (uk.score, uk.exact) == (100, True)


def test_known_limits() -> None:
    """Written down in the module docstring; a change here should change the docstring."""
    # An abjad loses its vowels, and Omar (عمر) even becomes "mr", an honorific.
    assert normalise("خالد عمر المثالي") == "khld lmthly"
    arabic = hits(screener.screen("خالد عمر المثالي"))
    assert arabic["uk", "AQD9002"].exact  # the UK list's own Arabic-script alias
    assert ("ofac", "90002") not in arabic  # not OFAC's Latin "AL-MITHALI, Khalid Omar"
    assert screener.screen("Pyotr Testovskiy") == []  # Pyotr and Pavel are not a typo apart
    # Tokens are not weighted by rarity: generic words match longer names holding them.
    generic = hits(screener.screen("Trading LLC"))["ofac", "90003"]
    assert (generic.matched_name, generic.score) == ("NORTHWIND EXAMPLE TRADING LLC", 90)


@pytest.mark.parametrize("query", [
    "Pavel Ivanov",  # two of the three names, another surname
    "Maxim Testovskiy",  # the surname, another given name
    "Marina Elena Quillfeather-Smith",
    "Testovskiy",  # one word is not a name
    "Pavel",
    "Northwind",
])
def test_other_people_and_single_words_do_not_match(query: str) -> None:
    assert screener.screen(query) == []


def test_a_single_word_scores_at_most_the_cap_against_longer_names() -> None:
    alis = Screener([SanctionsEntry("ofac", str(i), "individual", (name,), (), ())
                     for i, name in enumerate(["ALI, Hassan", "ALI, Reza Mohammed", "ALI",
                                               "Ali Khan", "BIN ALI, Omar"])])
    assert [(m.entry.entry_id, m.score) for m in alis.screen("Ali", threshold=0, limit=10)] == [
        ("2", 100), ("0", 70), ("1", 70), ("3", 70), ("4", 70)]
    assert [m.entry.entry_id for m in alis.screen("Ali")] == ["2"]
    different_surname = Screener([SanctionsEntry("ofac", "1", "individual",
                                                 ("RAHMAN, Mohammed Ali",), (), ())])
    assert different_surname.screen("Mohammed Ali Hassan") == []
    assert different_surname.screen("Mohammed Ali Hassan", threshold=0)[0].score == 80


def test_dates_of_birth() -> None:
    quill = ("ofac", "90006")  # DOB circa 1965
    assert hits(screener.screen("Marta Quillfeather"))[quill].score == 95
    agreeing = hits(screener.screen("Marta Quillfeather", "1965-04-02"))[quill]
    assert (agreeing.score, agreeing.exact) == (99, False)  # only the same name reaches 100
    assert "DOB 1965 agrees" in agreeing.reason
    near = hits(screener.screen("Marta Elena Quillfeather", "1966"))[quill]
    assert (near.score, near.exact) == (100, False)
    assert "DOB 1965 close to 1966" in near.reason
    assert quill not in hits(screener.screen("Marta Elena Quillfeather", "1980-01-01"))
    differing = hits(screener.screen("Marta Elena Quillfeather", "1980-01-01", threshold=80))
    assert (differing[quill].score, differing[quill].exact) == (85, False)
    assert "DOB differs: 1965 vs 1980-01-01" in differing[quill].reason
    entity = hits(screener.screen("Sample Star", "1980-01-01"))["ofac", "90004"]
    assert (entity.score, entity.exact) == (100, True)  # no date on one side: no change


def test_several_dates_any_agreeing_one_counts() -> None:
    huan = hits(screener.screen("Huan Shiyan", "1984-07-01"))["ofac", "90005"]  # alt. DOB 1984
    assert (huan.score, huan.exact) == (100, True)
    huan_uk = hits(screener.screen("Huan Shiyan", "1984-07-01"))["uk", "CHN9005"]  # 1985-03-03
    assert (huan_uk.score, huan_uk.exact) == (100, False)  # near: a year apart


def test_the_threshold_is_inclusive() -> None:
    (match,) = one("QUILLFEATHER, Marta Elena").screen("Maria Quillfeather", threshold=0)
    assert match.score == 89
    assert one("QUILLFEATHER, Marta Elena").screen("Maria Quillfeather", threshold=89)
    assert not one("QUILLFEATHER, Marta Elena").screen("Maria Quillfeather", threshold=90)
    (at,) = one("TESTOVSKAYA, Mariya").screen("Marija Testovskaja")
    assert at.score == threshold
    (under,) = one("QUILLFEATHER, Marta Elena").screen("Marla Quilfeather", threshold=0)
    assert under.score == threshold - 2
    assert one("QUILLFEATHER, Marta Elena").screen("Marla Quilfeather") == []


def test_best_first_and_limited() -> None:
    matches = screener.screen("Pavel Testovskiy", threshold=0, limit=2)
    assert [m.score for m in matches] == [97, 95]
    assert len(screener.screen("Testovskiy Northwind Quillfeather Sample", threshold=0,
                               limit=100)) <= 100


@pytest.mark.parametrize(("name", "dob", "options"), [
    ("", None, {}), ("  .,- ", None, {}), ("x" * 401, None, {}),
    ("Pavel", "12/01/1960", {}), ("Pavel", "1960-02-30", {}), ("Pavel", "60", {}),
    ("Pavel", None, {"threshold": 101}), ("Pavel", None, {"limit": 0}),
    ("Pavel", None, {"limit": 101}),
])
def test_unscreenable_input_is_refused(name: str, dob: str | None,
                                       options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"name|date of birth|threshold"):
        screener.screen(name, dob, **options)


@pytest.mark.parametrize(("name", "normalised"), [
    ("AL ZAWAHIRI, Dr. Ayman", "al zawahiri ayman"),
    ("Jürgen Beispiel-Müller", "jurgen beispiel muller"),
    ("O'Brien-Smith", "obrien smith"),
    ("  MR   Dr ", "mr dr"),  # only honorifics: kept, something must be screened
    ("Ελευθέριος", "eleytherios"),  # anyascii's Greek, not ELOT
    ("SAMPLE STAR 2", "sample star 2"),
])
def test_normalise(name: str, normalised: str) -> None:
    assert normalise(name) == normalised


@given(st.text(max_size=60))
def test_normalise_is_idempotent_plain_ascii_and_single_spaced(name: str) -> None:
    once = normalise(name)
    assert normalise(once) == once
    assert set(once) <= set(string.ascii_lowercase + string.digits + " ")
    assert once == " ".join(once.split())


@given(st.text(alphabet=string.ascii_letters + " .,-'", max_size=40))
def test_normalise_ignores_case_and_punctuation(name: str) -> None:
    assert normalise(name.upper()) == normalise(name.lower())
    assert normalise(name.replace(",", " ").replace(".", " ")) == normalise(name)


tokens_st = st.lists(st.sampled_from(["petr", "pavel", "ivanov", "ivanova", "sergeevich", "al",
                                      "hassan", "husain", "omar", "umar", "li"]),
                     min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(tokens_st, tokens_st, st.randoms())
def test_score_is_100_exactly_for_the_same_tokens_in_any_order(
        listed: list[str], queried: list[str], rng: random.Random) -> None:
    matches = one(" ".join(listed)).screen(" ".join(queried), threshold=0)
    same = sorted(listed) == sorted(queried)
    assert same <= bool(matches)
    if matches:
        assert (matches[0].score == 100) == same == matches[0].exact
    rng.shuffle(queried)
    shuffled = one(" ".join(listed)).screen(" ".join(queried), threshold=0)
    assert [(m.score, m.exact) for m in shuffled] == [(m.score, m.exact) for m in matches]


@pytest.fixture(scope="module")
def large() -> tuple[Screener, list[SanctionsEntry]]:
    listed = synthetic_entries(20_000)
    return Screener(listed), listed


def test_a_20000_entry_list_finds_rewritten_listed_names(
        large: tuple[Screener, list[SanctionsEntry]]) -> None:
    big, listed = large
    rng = random.Random(5)
    for entry in rng.sample(listed, 200):
        words = entry.names[0].replace(",", "").split()
        rng.shuffle(words)
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        if len(words[longest]) >= 7:
            word = words[longest]
            words[longest] = word[:3] + word[4:]  # a letter dropped
        matches = big.screen(" ".join(words), entry.dates_of_birth[0] if entry.dates_of_birth
                             else None, limit=screening.limit_max)
        assert entry.entry_id in {m.entry.entry_id for m in matches}, (words, entry.names)
