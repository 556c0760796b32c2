"""Policy parameters: declared once per jurisdiction with a type, bounds, a default and the
source the default comes from; validated on every proposed change.

A parameter's value lives in Python as an ``int`` (amounts in minor units of the parameter's
currency, counts, basis points, seconds, scores), a ``frozenset`` of codes, a mapping of region
to field names, a ``bool``, or ``None`` where the parameter is optional (no limit). In the store
and on the API it is JSON: amounts as decimal strings in major units ("15000.00"), sets as sorted
lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from payments.currency import currency as lookup_currency
from payments.errors import InvalidInput
from payments.money import format_amount, parse_amount

codes_max = 300
"""The most members a set parameter may hold (there are 249 ISO 3166 countries)."""

_country = re.compile(r"[A-Z]{2}")
_region = re.compile(r"[a-z]+(-[a-z0-9]+)+")
_field = re.compile(r"[a-z][a-z_]{0,39}")


class Kind(StrEnum):
    AMOUNT = "AMOUNT"
    """Minor units of ``Param.currency``."""
    COUNT = "COUNT"
    BPS = "BPS"
    SECONDS = "SECONDS"
    SCORE = "SCORE"
    """A name-match score, 0 to 100."""
    COUNTRIES = "COUNTRIES"
    CURRENCIES = "CURRENCIES"
    REGIONS = "REGIONS"
    LISTS = "LISTS"
    """Sanctions lists: ofac, eu, uk."""
    FIELDS = "FIELDS"
    """Names of data fields."""
    FIELD_MAP = "FIELD_MAP"
    """Region -> the fields that may be sent there."""
    FLAG = "FLAG"


Value = int | frozenset[str] | Mapping[str, frozenset[str]] | bool | None
sanctions_lists = frozenset({"ofac", "eu", "uk"})
_code_names = {Kind.COUNTRIES: "country", Kind.CURRENCIES: "currency", Kind.REGIONS: "region",
               Kind.LISTS: "sanctions list", Kind.FIELDS: "field"}
_integer_kinds = frozenset({Kind.COUNT, Kind.BPS, Kind.SECONDS, Kind.SCORE})
_set_kinds = frozenset({Kind.COUNTRIES, Kind.CURRENCIES, Kind.REGIONS, Kind.LISTS, Kind.FIELDS})


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    default: Value
    description: str
    source: str
    """Where the default comes from: regulation and article, official guidance, or, for a
    commercial or risk figure, saying so."""
    currency: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    optional: bool = False
    """None is a valid value: the limit is off."""
    uncertain: str | None = None
    """What is not certain about the default, when something is."""

    def __post_init__(self) -> None:
        assert (self.kind is Kind.AMOUNT) == (self.currency is not None), self.name
        assert self.optional or self.default is not None, self.name
        if self.default is not None:
            assert from_json(self, to_json(self, self.default)) == self.default, self.name


def to_json(param: Param, value: Value) -> Any:
    if value is None:
        return None
    if param.kind is Kind.AMOUNT:
        assert isinstance(value, int)
        assert param.currency is not None
        return format_amount(value, lookup_currency(param.currency))
    if param.kind in _set_kinds:
        assert isinstance(value, frozenset)
        return sorted(value)
    if param.kind is Kind.FIELD_MAP:
        assert isinstance(value, Mapping)
        return {region: sorted(fields) for region, fields in sorted(value.items())}
    return value


def from_json(param: Param, raw: Any, field: str | None = None) -> Value:
    """The parameter's value from its JSON form, or ``InvalidInput`` naming ``field``."""
    where = field or param.name
    if raw is None:
        if not param.optional:
            raise InvalidInput(f"{param.name} may not be null", where)
        return None
    if param.kind is Kind.AMOUNT:
        assert param.currency is not None
        minor = parse_amount(raw, lookup_currency(param.currency), where)
        return _bounded(param, minor, where)
    if param.kind in _integer_kinds:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise InvalidInput(f"{param.name} must be a whole number", where)
        return _bounded(param, raw, where)
    if param.kind is Kind.FLAG:
        if not isinstance(raw, bool):
            raise InvalidInput(f"{param.name} must be true or false", where)
        return raw
    if param.kind is Kind.FIELD_MAP:
        return _field_map(param, raw, where)
    return _codes(param, raw, where)


def _bounded(param: Param, value: int, where: str) -> int:
    if param.minimum is not None and value < param.minimum:
        raise InvalidInput(f"{param.name} must be at least {_shown(param, param.minimum)}", where)
    if param.maximum is not None and value > param.maximum:
        raise InvalidInput(f"{param.name} must be at most {_shown(param, param.maximum)}", where)
    return value


def _shown(param: Param, value: int) -> str:
    if param.currency is None:
        return str(value)
    return f"{format_amount(value, lookup_currency(param.currency))} {param.currency}"


def _codes(param: Param, raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise InvalidInput(f"{param.name} must be a list of codes", where)
    if len(raw) > codes_max:
        raise InvalidInput(f"{param.name} may hold at most {codes_max} codes", where)
    for code in raw:
        if not _valid_code(param.kind, code):
            raise InvalidInput(f"{code!r} is not a valid {_code_names[param.kind]} code "
                               f"in {param.name}", where)
    codes = frozenset(raw)
    if len(codes) != len(raw):
        raise InvalidInput(f"{param.name} lists a code twice", where)
    return codes


def _valid_code(kind: Kind, code: str) -> bool:
    if kind is Kind.COUNTRIES:
        return _country.fullmatch(code) is not None
    if kind is Kind.CURRENCIES:
        try:
            lookup_currency(code)
        except InvalidInput:
            return False
        return True
    if kind is Kind.REGIONS:
        return _region.fullmatch(code) is not None
    if kind is Kind.LISTS:
        return code in sanctions_lists
    return _field.fullmatch(code) is not None


def _field_map(param: Param, raw: Any, where: str) -> Mapping[str, frozenset[str]]:
    if not isinstance(raw, dict) or len(raw) > codes_max:
        raise InvalidInput(f"{param.name} must map regions to lists of field names", where)
    fields = Param(param.name, Kind.FIELDS, frozenset(), "", "")
    out: dict[str, frozenset[str]] = {}
    for region, names in raw.items():
        if _region.fullmatch(region) is None:
            raise InvalidInput(f"{region!r} is not a region code in {param.name}", where)
        out[region] = _codes(fields, names, where)
    return out


def parse_changes(declared: Mapping[str, Param], changes: Mapping[str, Any],
                  field: str = "changes") -> dict[str, Value]:
    """Validate a proposal: every name declared, every value of its type and in bounds."""
    if not changes:
        raise InvalidInput("a change must set at least one parameter", field)
    parsed: dict[str, Value] = {}
    for name, raw in changes.items():
        param = declared.get(name)
        if param is None:
            raise InvalidInput(f"{name!r} is not a parameter of this jurisdiction", field)
        parsed[name] = from_json(param, raw, f"{field}.{name}")
    return parsed
