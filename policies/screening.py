"""Screening a name (and optionally a date of birth) against sanctions list entries.

``Screener(entries).screen(name, date_of_birth)`` returns the entries whose names come close
enough, best first. Every alias counts as a name, and entities and individuals are screened
alike (the caller does not know which the counterparty is).

Normalising (``normalise``). Names are transliterated to ASCII with anyascii (Cyrillic, Greek,
Latin diacritics: "Пётр" gives "Petr", "Müller" "Muller"), casefolded, apostrophes dropped and
other punctuation made a space, then split into tokens. The Western honorifics MR, MRS, MS, MISS,
MX, DR and PROF are left out: lists write them into names ("AL ZAWAHIRI, Dr. Ayman") and payers
into references, and they never identify anyone. Religious and traditional titles (Haji,
Sheikh, Mullah) stay, because lists use them as parts of names and aliases. Han characters are
romanised by syllable, the first syllable (the family name, in Chinese order) kept apart and the
rest joined, as pinyin writes personal names: 习近平 gives "xi jinping".

Scoring. The stock rapidfuzz scores each fail a requirement: ``token_sort_ratio`` punishes a
missing middle name hard ("Petr Ivanov" against "IVANOV, Petr Sergeevich" gives 67), and
``token_set_ratio`` gives any subset 100, so "Ali" would hit every "ALI ..." entry at 100. So
tokens are aligned: each query token pairs with at most one name token, greedily by rapidfuzz's
Indel similarity (``fuzz.ratio``, which forgives a typo or a transliteration variant:
Sergeevich/Sergeyevich gives 95); under ``token_pair_similarity_min`` two tokens do not pair.
The score is the length-weighted mean similarity of the pairs, less a penalty for what is left:

- a token on one side only (a missing middle name, "LLC") costs ``extra_token_penalty`` (5);
- a token left on *both* sides is a conflict (Hassan against Rahman: another person), and costs
  ``conflict_token_penalty`` (20);
- a partial match on fewer than two pairs is capped at ``partial_single_token_cap`` (70), under
  any sensible threshold: one shared token ("Ali", "Ivanov") is not a name.

Only equal token multisets score 100.

Dates of birth. When both sides have one, a date that agrees (the same date, or the same year
where one side knows only the year) adds ``dob_agree_bonus``; years within ``dob_near_years``
leave the score alone (lists carry circa and conflicting dates); any other disagreement takes
off ``dob_mismatch_penalty`` (15), so an exact name (100) with another date scores 85, under the
default threshold of 88: a different date of birth is the usual sign of another person, and a
reviewer who wants those still sees them with a lower threshold. A date on one side only
changes nothing. ``exact`` means equal token sets and, when both sides have dates, an agreeing
one; the score never reaches 100 through a date alone.

Speed. Fuzzy matching happens on the vocabulary (the distinct tokens of all names), not on the
names. Each vocabulary token is filed under its first five letters and each way of dropping one
of them (so two tokens one edit apart share a key wherever the edit is) and under its last three
letters ("Mukhammad" and "Muhammad" share the end); keys shared by more than ``key_tokens_max``
tokens are not used. A query token fetches the tokens under its keys, rapidfuzz scores them in
one C call, and the result (a *view*: the similar tokens and, by name shape, the names holding
one) is kept for the next calls, up to ``token_views_max`` tokens: payment traffic repeats given
names and company words. For each name shape (how many tokens, how many short), the penalties
give how many query tokens must pair for the threshold to be reachable, and only names holding
tokens similar to that many query tokens (set intersections, in C) are scored in Python. On a
synthetic 20,000-entry list (2 cores), ``bench/screening.py`` measures 0.35-0.5 ms a call on
average (median about 0.2 ms), 0.6-0.8 ms with no view kept; queries made only of common tokens
("Al" and a top given name) take a few ms.

Limits. Token pairs are found only through the keys: two edits in a token's first five letters
and a different ending ("Iouri" against "Yuriy") do not pair. The index is built once: rebuild
the ``Screener`` when a list changes. A ``Screener`` may be shared between threads (the view
cache tolerates races) but holds ``token_views_max`` views at most.
anyascii romanises abjads without vowels (Arabic محمد gives "mhmd"), so Arabic- or Hebrew-script
queries do not match the Latin spellings lists carry; Korean and Japanese follow anyascii's
romanisation, not the lists'; a name split differently ("Al Zawahiri" against "Alzawahiri")
scores below 90; translated names (a Russian legal name against its English form) do not match.
Tokens are not weighted by rarity, so generic words match longer names holding them ("Trading
LLC" scores 90 against "NORTHWIND EXAMPLE TRADING LLC"), and a Western honorific that a
transliteration happens to produce is dropped too (Arabic عمر gives "mr").
Weak aliases (OFAC's "weak", the UK's "low quality") count like any name.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from anyascii import anyascii
from rapidfuzz import fuzz, process

from policies.sanctions import SanctionsEntry

threshold_default = 88
limit_default = 5
limit_max = 100
query_chars_max = 400
token_pair_similarity_min = 75
extra_token_penalty = 5
conflict_token_penalty = 20
partial_single_token_cap = 70
dob_agree_bonus = 5
dob_near_years = 1
dob_mismatch_penalty = 15
short_token_chars_max = 2  # particles and initials ("al", "el", "j"): unpaired, not a conflict
block_key_prefix_chars = 5
block_key_suffix_chars = 3
key_tokens_max = 1000
token_views_max = 50_000  # query tokens whose vocabulary view is kept between calls

_honorifics = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof"})
_han = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_not_alphanumeric = re.compile("[^a-z0-9]+")
_query_date = re.compile(r"\d{4}(-\d{2}-\d{2})?")


@dataclass(frozen=True, slots=True)
class Match:
    entry: SanctionsEntry
    matched_name: str
    """Which of the entry's names matched, as written in the list."""
    score: int
    """0..100; 100 only for the same normalised tokens."""
    exact: bool
    """Equal normalised token sets and, when both sides have a date of birth, an agreeing one."""
    reason: str


def normalise(name: str) -> str:
    """The form names are compared in: ASCII lowercase words separated by single spaces."""
    return " ".join(_tokens(name))


def _tokens(name: str) -> tuple[str, ...]:
    romanised = anyascii(_han.sub(_romanise_han, name)).casefold()
    words = _not_alphanumeric.sub(" ", romanised.replace("'", "").replace("`", "")).split()
    kept = [w for w in words if w not in _honorifics]
    return tuple(kept or words)


def _romanise_han(run: re.Match[str]) -> str:
    syllables = [anyascii(char) for char in run.group()]
    return f" {syllables[0]} {''.join(syllables[1:])} "


def _block_keys(token: str) -> set[str]:
    """The token's first letters and each way of dropping one of them (two tokens one edit
    apart share one of these), and its last letters."""
    head = token[:block_key_prefix_chars]
    return {head, *(head[:i] + head[i + 1:] for i in range(len(head))),
            ">" + token[-block_key_suffix_chars:]}


def _penalised(similarity: float, left: int, conflicts: int, pairs: int) -> float:
    """The score of an alignment: the mean pair ``similarity`` less the penalties for the
    ``left`` tokens unpaired (``conflicts`` of them counted on both sides). Fewer tokens left
    never lower it, so it also bounds a name's score from how many tokens can pair."""
    score = (similarity - conflict_token_penalty * conflicts
             - extra_token_penalty * (left - 2 * conflicts))
    if left and pairs < 2:
        score = min(score, partial_single_token_cap)
    return score


@dataclass(frozen=True, slots=True)
class _Name:
    entry_index: int
    written: str
    tokens: tuple[str, ...]
    sorted_tokens: tuple[str, ...]
    shape: tuple[int, int]
    """How many tokens, how many of them short: all the bound needs to know of a name."""


def _name(entry_index: int, written: str, tokens: tuple[str, ...]) -> _Name:
    short = sum(len(token) <= short_token_chars_max for token in tokens)
    return _Name(entry_index, written, tokens, tuple(sorted(tokens)), (len(tokens), short))


@dataclass(frozen=True, slots=True)
class _TokenView:
    """What the index knows of one query token: the vocabulary tokens it pairs with, and the
    names holding one, by name shape."""

    similar: dict[str, float]
    names_by_shape: dict[tuple[int, int], frozenset[int]]


class Screener:
    """An index over list entries, built once per list version, read by many ``screen`` calls."""

    def __init__(self, entries: Sequence[SanctionsEntry]) -> None:
        self._entries = tuple(entries)
        self._names: list[_Name] = []
        token_names: dict[str, list[int]] = {}
        for entry_index, entry in enumerate(self._entries):
            seen: set[tuple[str, ...]] = set()
            for written in entry.names:
                name = _name(entry_index, written, _tokens(written))
                if name.tokens and name.sorted_tokens not in seen:
                    seen.add(name.sorted_tokens)
                    for token in set(name.tokens):
                        token_names.setdefault(token, []).append(len(self._names))
                    self._names.append(name)
        self._token_shapes: dict[str, dict[tuple[int, int], tuple[int, ...]]] = {}
        for token, name_ids in token_names.items():
            by_shape: dict[tuple[int, int], list[int]] = {}
            for name_id in name_ids:
                by_shape.setdefault(self._names[name_id].shape, []).append(name_id)
            self._token_shapes[token] = {shape: tuple(ids) for shape, ids in by_shape.items()}
        key_tokens: dict[str, list[str]] = {}
        for token in token_names:
            for key in _block_keys(token):
                key_tokens.setdefault(key, []).append(token)
        self._key_tokens = {key: tuple(tokens) for key, tokens in key_tokens.items()
                            if len(tokens) <= key_tokens_max}
        self._views: dict[str, _TokenView] = {}

    def screen(self, name: str, date_of_birth: str | None = None, *,
               threshold: int = threshold_default, limit: int = limit_default) -> list[Match]:
        """Entries whose best name scores ``threshold`` or more, best first, at most ``limit``.

        Raises ``ValueError`` for a name with nothing to compare (empty once normalised) or over
        ``query_chars_max``, a date of birth that is not ``YYYY-MM-DD`` or ``YYYY``, or a
        threshold or limit out of range: screening garbage must not look like a clean result.
        """
        query = _query_name(name)
        query_dob = _query_dob(date_of_birth)
        if not 0 <= threshold <= 100 or not 1 <= limit <= limit_max:
            raise ValueError(f"threshold must be 0..100 and limit 1..{limit_max}")
        views = {token: self._view(token) for token in set(query.tokens)}
        pairs = {token: view.similar for token, view in views.items()}
        dob_adjustments: dict[int, int] = {}
        best: dict[int, tuple[int, int, _Name]] = {}
        bonus = dob_agree_bonus if query_dob else 0
        for name_id in self._candidates(query, views, threshold - bonus):
            candidate = self._names[name_id]
            entry_index = candidate.entry_index
            if entry_index not in dob_adjustments:
                dob_adjustments[entry_index] = _dob_adjustment(
                    query_dob, self._entries[entry_index].dates_of_birth)
            name_score = _name_score(query, candidate, pairs)
            score = _with_dob(name_score, dob_adjustments[entry_index])
            held = best.get(entry_index)
            if score >= threshold and (held is None or (score, name_score) > held[:2]):
                best[entry_index] = (score, name_score, candidate)
        ranked = sorted(best.values(), key=lambda b: (-b[0], -b[1], self._sort_key(b[2])))
        return [self._match(name, query_dob, *b) for b in ranked[:limit]]

    def _view(self, token: str) -> _TokenView:
        view = self._views.get(token)
        if view is None:
            view = self._new_view(token)
            if len(self._views) >= token_views_max:
                self._views.clear()
            self._views[token] = view
        return view

    def _new_view(self, token: str) -> _TokenView:
        keyed = set().union(*(self._key_tokens.get(key, ()) for key in _block_keys(token)))
        if token in self._token_shapes:
            keyed.add(token)
        found = process.extract(token, list(keyed), scorer=fuzz.ratio, limit=None,
                                score_cutoff=token_pair_similarity_min)
        similar = {choice: similarity for choice, similarity, _ in found}
        names_by_shape: dict[tuple[int, int], list[tuple[int, ...]]] = {}
        for vocabulary_token in similar:
            for shape, name_ids in self._token_shapes[vocabulary_token].items():
                names_by_shape.setdefault(shape, []).append(name_ids)
        return _TokenView(similar, {shape: frozenset().union(*ids)
                                    for shape, ids in names_by_shape.items()})

    def _candidates(self, query: _Name, views: dict[str, _TokenView],
                    threshold: float) -> set[int]:
        """Names that may score ``threshold`` on their name: for each name shape (tokens, short
        tokens) the bound says how many query tokens must pair, and the names holding a token
        similar to that many query tokens (a repeated token counting as often as it repeats)
        are unions of intersections, computed smallest set first."""
        per_token = [(view, query.tokens.count(token)) for token, view in views.items()]
        kept: set[int] = set()
        for shape in set().union(*(view.names_by_shape for view, _ in per_token)):
            needed = _pairs_needed(query, shape, threshold)
            if needed is None:
                continue
            sets = [view.names_by_shape[shape] for view, repeats in per_token
                    if shape in view.names_by_shape for _ in range(repeats)]
            kept.update(_in_at_least(sets, needed))
        return kept

    def _sort_key(self, name: _Name) -> tuple[str, str]:
        entry = self._entries[name.entry_index]
        return entry.list_name, entry.entry_id

    def _match(self, query: str, query_dob: str | None, score: int, name_score: int,
               name: _Name) -> Match:
        entry = self._entries[name.entry_index]
        verdict, dob = _dob_verdict(query_dob, entry.dates_of_birth)
        role = "primary name" if name.written == entry.names[0] else "alias"
        dob_text = {"agree": f", DOB {dob} agrees", "near": f", DOB {dob} close to {query_dob}",
                    "differ": f", DOB differs: {', '.join(entry.dates_of_birth)} vs {query_dob}",
                    "unknown": ""}[verdict]
        return Match(
            entry=entry, matched_name=name.written, score=score,
            exact=name_score == 100 and verdict in ("agree", "unknown"),
            reason=(f"'{query}' matches {role} '{name.written}' of {entry.list_name.upper()} "
                    f"{entry.entry_id} (score {score}{dob_text})"))


def _query_name(name: str) -> _Name:
    if len(name) > query_chars_max:
        raise ValueError(f"name is over {query_chars_max} characters")
    tokens = _tokens(name)
    if not tokens:
        raise ValueError(f"name {name!r} has nothing to screen once normalised")
    return _name(-1, name, tokens)


def _query_dob(date_of_birth: str | None) -> str | None:
    if date_of_birth is None:
        return None
    if _query_date.fullmatch(date_of_birth):
        try:
            date.fromisoformat(date_of_birth if len(date_of_birth) == 10 else "2000-01-01")
            return date_of_birth
        except ValueError:
            pass
    raise ValueError(f"date of birth {date_of_birth!r} is not YYYY-MM-DD or YYYY")


def _name_score(query: _Name, name: _Name, pairs: dict[str, dict[str, float]]) -> int:
    if query.sorted_tokens == name.sorted_tokens:
        return 100
    # Ties break on the tokens, not their places, so the score ignores token order.
    candidates = [(similarity, q, n, i, j) for i, q in enumerate(query.tokens)
                  for j, n in enumerate(name.tokens) if (similarity := pairs[q].get(n))]
    candidates.sort(reverse=True)
    used_query: set[int] = set()
    used_name: set[int] = set()
    total = weight = 0.0
    for similarity, _, _, i, j in candidates:
        if i not in used_query and j not in used_name:
            used_query.add(i)
            used_name.add(j)
            total += similarity * (len(query.tokens[i]) + len(name.tokens[j]))
            weight += len(query.tokens[i]) + len(name.tokens[j])
    if not weight:
        return 0
    query_long = sum(len(t) > short_token_chars_max
                     for i, t in enumerate(query.tokens) if i not in used_query)
    name_long = sum(len(t) > short_token_chars_max
                    for j, t in enumerate(name.tokens) if j not in used_name)
    paired = len(used_query)
    left = len(query.tokens) + len(name.tokens) - 2 * paired
    score = _penalised(total / weight, left, min(query_long, name_long), paired)
    return max(0, min(99, math.floor(score + 0.5)))


def _in_at_least(sets: list[frozenset[int]], needed: int) -> set[int]:
    """The members of at least ``needed`` of ``sets``."""
    if needed > len(sets):
        return set()
    if needed == 1:
        return set().union(*sets)
    if needed == len(sets):
        smallest, *others = sorted(sets, key=len)
        return set(smallest.intersection(*others))
    found: set[int] = set()
    for group in itertools.combinations(sorted(sets, key=len), needed):
        found |= group[0].intersection(*group[1:])
    return found


def _pairs_needed(query: _Name, shape: tuple[int, int], threshold: float) -> int | None:
    """How many query tokens must pair for a name of ``shape`` to reach ``threshold``, or None
    if it cannot. The bound is generous: pairs are exact, and leftover tokens count as short
    (no conflict) as far as the short tokens on each side allow."""
    name_tokens, name_short = shape
    for paired in range(1, min(len(query.tokens), name_tokens) + 1):
        query_left, name_left = len(query.tokens) - paired, name_tokens - paired
        conflicts = max(0, min(query_left - query.shape[1], name_left - name_short))
        if _penalised(100, query_left + name_left, conflicts, paired) >= threshold:
            return paired
    return None


def _dob_adjustment(query_dob: str | None, entry_dobs: tuple[str, ...]) -> int:
    verdict, _ = _dob_verdict(query_dob, entry_dobs)
    return {"agree": dob_agree_bonus, "differ": -dob_mismatch_penalty}.get(verdict, 0)


def _with_dob(name_score: int, adjustment: int) -> int:
    """The name score moved by the date of birth; only the same name reaches 100."""
    return max(0, min(name_score + adjustment, 100 if name_score == 100 else 99))


def _dob_verdict(query_dob: str | None, entry_dobs: tuple[str, ...]) -> tuple[str, str | None]:
    """``agree``, ``near``, ``differ`` or ``unknown`` (a side has none), with the entry's date."""
    if query_dob is None or not entry_dobs:
        return "unknown", None
    for dob in entry_dobs:
        if dob == query_dob or (min(len(dob), len(query_dob)) == 4 and dob[:4] == query_dob[:4]):
            return "agree", dob
    for dob in entry_dobs:
        if abs(int(dob[:4]) - int(query_dob[:4])) <= dob_near_years:
            return "near", dob
    return "differ", None
