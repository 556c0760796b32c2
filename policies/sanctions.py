"""Sanctions lists as plain data: ``parse`` turns a list file, exactly as its publisher ships it,
into ``SanctionsEntry`` values, or refuses the whole file with ``SanctionsFileError``. It never
returns part of a list: a list that loads half-way would screen payments against half the names.

Formats followed (checked against the publishers' specifications and files as of 2026):

- OFAC SDN, ``sdn.csv``: the legacy flat file of OFAC's SDN data specification (updated
  09/25/2023). No header; 12 fields (ent_num, SDN_Name, SDN_Type, Program, Title, Call_Sign,
  Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks); ``-0-`` (often followed by a space)
  for null; several programs written ``SDGT] [SDT``; an empty SDN_Type means an entity; dates of
  birth and the *weak* aliases sit in Remarks (``DOB 12 Jan 1960; alt. DOB 1961; a.k.a.
  'FOO'.``); a trailing SUB byte (0x1A) ends the file. OFAC ships the *strong* aliases in
  ``alt.csv`` and remarks over 1,000 characters in ``sdn_comments.csv``, so ``sdn.csv`` alone
  misses names: prefer ``sdn.xml``. The specification calls the files ASCII, and Treasury files
  have carried Windows-1252 bytes, so a file that is not UTF-8 is read as Windows-1252; one that
  holds UTF-8 sequences but does not decode as UTF-8 is refused (it is broken, not legacy).
- OFAC SDN, ``sdn.xml``: ``sdnList`` / ``publshInformation`` (Record_Count is checked) /
  ``sdnEntry`` (uid, firstName, lastName, sdnType, programList/program, akaList/aka,
  dateOfBirthList/dateOfBirthItem/dateOfBirth), in the Sanctions List Service namespace
  (``https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/XML``, since
  2024) or the earlier ``http://tempuri.org/sdnList.xsd``. Names are written ``LAST, First`` as
  in ``sdn.csv``, so both files give the same primary names.
- EU consolidated financial sanctions list, XML 1.1 (``xmlFullSanctionsList_1_1``): ``export``
  in namespace ``http://eu.europa.ec/fpi/fsd/export`` / ``sanctionEntity@logicalId`` with
  ``subjectType@code`` (person, enterprise), ``nameAlias`` (wholeName, else first/middle/last
  name; the first is the primary name; names in other scripts included), ``birthdate``
  (birthdate, else year, else yearRangeFrom..yearRangeTo) and ``regulation@programme``.
- UK Sanctions List (FCDO), XML (``UK-Sanctions-List.xml``, the format in force since February
  2022; OFSI's Consolidated List closed on 28 January 2026, so it is not read): ``Designations``
  (no namespace) / ``Designation`` with UniqueID, Names/Name (Name1..Name6, NameType, whose
  casing varies), NonLatinNames (NameNonLatinScript), RegimeName, IndividualEntityShip and
  IndividualDetails/Individual/DOBs/DOB (``dd/mm/yyyy``, with the literal ``dd``/``mm`` when
  only the year is known). The UK CSV is not read: one row per name, and its header was not
  established with confidence.

Dates of birth come out as ISO ``YYYY-MM-DD``, or ``YYYY`` when only the year is known (also for
"circa" dates and ranges, which give one year each). A date of birth in a form not listed here
is left out rather than refusing the list: the entry still screens by name, without the DOB.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

ListName = Literal["ofac", "eu", "uk"]
Kind = Literal["individual", "entity", "vessel", "aircraft", "other"]

file_bytes_max = 200 * 1024 * 1024
dob_range_years_max = 10  # "DOB 1960 to 1962" gives each year; wider ranges carry no signal
ofac_csv_fields_count = 12

_ofac_namespaces = frozenset({
    "https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/XML",
    "http://tempuri.org/sdnList.xsd",
})
_eu_namespace = "http://eu.europa.ec/fpi/fsd/export"
_months = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_ofac_kinds: dict[str | None, Kind] = {
    None: "entity", "individual": "individual", "entity": "entity", "vessel": "vessel",
    "aircraft": "aircraft"}
_eu_kinds: dict[str | None, Kind] = {"person": "individual", "enterprise": "entity"}
_uk_kinds: dict[str | None, Kind] = {"individual": "individual", "entity": "entity",
                                     "ship": "vessel"}
_control_chars = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_utf8_sequence = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_remark_alias = re.compile(r"^[afn]\.k\.a\.\s+(?:'(?P<quoted>.+)'|(?P<bare>.+))$")
_remark_dob = re.compile(r"^(?:alt\.\s+)?DOB\s+(?P<value>.+)$")
_day_month_year = re.compile(r"^(\d{1,2}) ([A-Za-z]{3}) (\d{4})$")
_month_year = re.compile(r"^[A-Za-z]{3} (\d{4})$")
_year = re.compile(r"^(\d{4})$")
_uk_date = re.compile(r"^(\d{1,2}|dd)/(\d{1,2}|mm)/(\d{4})$", re.IGNORECASE)


class SanctionsFileError(ValueError):
    """The file is not a well-formed list of this kind; the message says where (line, entry)."""


@dataclass(frozen=True, slots=True)
class SanctionsEntry:
    list_name: str
    """``ofac``, ``eu`` or ``uk``."""
    entry_id: str
    """The list's own id: ent_num / uid (OFAC), logicalId (EU), UniqueID (UK)."""
    kind: str
    """``individual``, ``entity``, ``vessel``, ``aircraft`` or ``other``."""
    names: tuple[str, ...]
    """Primary name first, then aliases, as written in the list (original script kept)."""
    dates_of_birth: tuple[str, ...]
    """ISO ``YYYY-MM-DD``, or ``YYYY`` when only the year is known."""
    programs: tuple[str, ...]


def formats(list_name: str) -> tuple[str, ...]:
    """The file formats ``parse`` reads for a list: ofac ("csv", "xml"), eu and uk ("xml",)."""
    return tuple(_parsers_for(list_name))


def detect_format(data: bytes) -> str:
    """``xml`` when the file starts (after a BOM and blanks) with ``<``, else ``csv``."""
    head = data[:1024].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise SanctionsFileError("the file is empty")
    return "xml" if head.startswith(b"<") else "csv"


def parse(list_name: str, data: bytes, fmt: str | None = None) -> list[SanctionsEntry]:
    """Every entry of the list in ``data``, in file order, or ``SanctionsFileError``."""
    parsers = _parsers_for(list_name)
    if len(data) > file_bytes_max:
        raise SanctionsFileError(
            f"{list_name}: the file has {len(data)} bytes, over the {file_bytes_max} limit")
    fmt = fmt or detect_format(data)
    if fmt not in parsers:
        raise SanctionsFileError(
            f"{list_name}: no {fmt!r} format; this list is read from {', '.join(parsers)}")
    entries = list(parsers[fmt](data))
    if not entries:
        raise SanctionsFileError(f"{list_name} {fmt}: the list has no entries")
    for entry in entries:
        assert entry.list_name == list_name, entry
        assert entry.entry_id, entry
        assert entry.names, entry
        assert all(re.fullmatch(r"\d{4}(-\d{2}-\d{2})?", d) for d in entry.dates_of_birth), entry
    return entries


def _parsers_for(list_name: str) -> dict[str, Callable[[bytes], Iterator[SanctionsEntry]]]:
    parsers = _parsers.get(list_name)
    if parsers is None:
        raise SanctionsFileError(f"unknown list {list_name!r}; lists: {', '.join(_parsers)}")
    return parsers


class _Ids:
    """Refuses a second entry with the same id, naming both places."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._seen: dict[str, str] = {}

    def add(self, entry_id: str, where: str) -> None:
        first = self._seen.setdefault(entry_id, where)
        if first != where:
            raise SanctionsFileError(
                f"{self._source}: {where}: duplicate id {entry_id} (first at {first})")


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


# OFAC sdn.csv


def _parse_ofac_csv(data: bytes) -> Iterator[SanctionsEntry]:
    text = _decode_ofac_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    ids = _Ids("ofac csv")
    try:
        for row in reader:
            if row:
                where = f"line {reader.line_num}"
                entry = _ofac_csv_entry(row, where)
                ids.add(entry.entry_id, where)
                yield entry
    except csv.Error as error:
        raise SanctionsFileError(f"ofac csv: line {reader.line_num}: {error}") from error


def _decode_ofac_csv(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        if _utf8_sequence.search(data):
            raise SanctionsFileError(f"ofac csv: line {line}: invalid UTF-8") from error
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as legacy_error:
            line = data.count(b"\n", 0, legacy_error.start) + 1
            raise SanctionsFileError(
                f"ofac csv: line {line}: neither UTF-8 nor Windows-1252") from legacy_error
    text = re.sub(r"\x1a\s*\Z", "", text)  # the SUB byte that ends OFAC's legacy files
    if control := _control_chars.search(text):
        line = text.count("\n", 0, control.start()) + 1
        raise SanctionsFileError(f"ofac csv: line {line}: control character in the text")
    return text


def _ofac_csv_entry(row: list[str], where: str) -> SanctionsEntry:
    if len(row) != ofac_csv_fields_count:
        raise SanctionsFileError(
            f"ofac csv: {where}: {len(row)} fields, expected {ofac_csv_fields_count}")
    ent_num, name, sdn_type, program, *_, remarks = (_ofac_value(v) for v in row)
    if ent_num is None or not ent_num.isdigit():
        raise SanctionsFileError(f"ofac csv: {where}: ent_num {ent_num!r} is not a number")
    if name is None:
        raise SanctionsFileError(f"ofac csv: {where}: ent_num {ent_num} has no SDN_Name")
    items = [item.strip() for item in (remarks or "").removesuffix(".").split(";")]
    aliases = (m["quoted"] or m["bare"] for i in items if (m := _remark_alias.match(i)))
    dobs = (d for i in items if (m := _remark_dob.match(i)) for d in _ofac_dates(m["value"]))
    return SanctionsEntry(
        list_name="ofac", entry_id=ent_num,
        kind=_ofac_kinds.get(sdn_type.casefold() if sdn_type else None, "other"),
        names=_unique([name, *aliases]), dates_of_birth=_unique(dobs),
        programs=_unique(p.strip("[] ") for p in (program or "").split("] [")))


def _ofac_value(field: str) -> str | None:
    value = field.strip()
    return None if value in ("", "-0-") else value


def _ofac_dates(text: str) -> Iterator[str]:
    """OFAC writes ``12 Jan 1960``, ``Jan 1960``, ``1960``, ``circa 1960``, ``1960 to 1962``."""
    value = text.strip().removesuffix(".")
    if " to " in value:
        first, _, last = value.partition(" to ")
        years = [int(d[:4]) for d in (*_ofac_dates(first), *_ofac_dates(last))]
        if len(years) == 2 and 0 <= years[1] - years[0] < dob_range_years_max:
            yield from (str(y) for y in range(years[0], years[1] + 1))
        return
    circa = value.casefold().startswith("circa ")
    value = value[len("circa "):] if circa else value
    if m := _day_month_year.match(value):
        month = _months.get(m[2].casefold())
        yield _iso_date(int(m[3]), month, int(m[1])) if month and not circa else m[3]
    elif m := _month_year.match(value) or _year.match(value):
        yield m[1]


def _iso_date(year: int, month: int, day: int) -> str:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return f"{year:04d}"


# XML (OFAC sdn.xml, EU, UK)


def _xml_root(data: bytes, source: str, root_tag: str, namespaces: frozenset[str]) -> Element:
    try:
        root = fromstring(data, forbid_dtd=True)
    except ParseError as error:
        line, column = error.position
        raise SanctionsFileError(
            f"{source}: not well-formed XML at line {line}, column {column}") from error
    except DefusedXmlException as error:
        raise SanctionsFileError(
            f"{source}: refused a DTD or entity declaration ({type(error).__name__})") from error
    namespace, _, tag = root.tag.rpartition("}")
    namespace = namespace.removeprefix("{")
    if tag != root_tag or namespace not in namespaces:
        raise SanctionsFileError(
            f"{source}: root element is {root.tag}, expected {root_tag} in namespace "
            f"{' or '.join(sorted(namespaces)) or '(none)'}")
    return root


def _text(element: Element, path: str) -> str | None:
    found = element.find(path)
    text = found.text.strip() if found is not None and found.text else ""
    return text or None


def _texts(element: Element, path: str) -> Iterator[str]:
    return (found.text.strip() for found in element.iterfind(path) if found.text)


def _parse_ofac_xml(data: bytes) -> Iterator[SanctionsEntry]:
    root = _xml_root(data, "ofac xml", "sdnList", _ofac_namespaces)
    ns = root.tag.partition("}")[0] + "}"
    ids = _Ids("ofac xml")
    position = 0
    for position, element in enumerate(root.iterfind(f"{ns}sdnEntry"), 1):
        uid = _text(element, f"{ns}uid")
        if uid is None or not uid.isdigit():
            raise SanctionsFileError(f"ofac xml: sdnEntry #{position}: uid {uid!r} is not a number")
        where = f"sdnEntry #{position} (uid {uid})"
        akas = element.iterfind(f"{ns}akaList/{ns}aka")
        ids.add(uid, where)
        yield SanctionsEntry(
            list_name="ofac", entry_id=uid,
            kind=_ofac_kinds.get((_text(element, f"{ns}sdnType") or "?").casefold(), "other"),
            names=_unique(_ofac_xml_name(e, ns, where) for e in (element, *akas)),
            dates_of_birth=_unique(d for v in _texts(
                element, f"{ns}dateOfBirthList/{ns}dateOfBirthItem/{ns}dateOfBirth")
                for d in _ofac_dates(v)),
            programs=_unique(_texts(element, f"{ns}programList/{ns}program")))
    count = _text(root, f"{ns}publshInformation/{ns}Record_Count")
    if count is not None and count != str(position):
        raise SanctionsFileError(
            f"ofac xml: publshInformation/Record_Count is {count} but the file has {position} "
            f"sdnEntry elements")


def _ofac_xml_name(element: Element, ns: str, where: str) -> str:
    last, first = _text(element, f"{ns}lastName"), _text(element, f"{ns}firstName")
    if last is None:
        raise SanctionsFileError(f"ofac xml: {where}: a name without lastName")
    return f"{last}, {first}" if first else last


def _parse_eu_xml(data: bytes) -> Iterator[SanctionsEntry]:
    root = _xml_root(data, "eu xml", "export", frozenset({_eu_namespace}))
    ns = f"{{{_eu_namespace}}}"
    ids = _Ids("eu xml")
    for position, element in enumerate(root.iterfind(f"{ns}sanctionEntity"), 1):
        logical_id = (element.get("logicalId") or "").strip()
        if not logical_id:
            raise SanctionsFileError(f"eu xml: sanctionEntity #{position} has no logicalId")
        where = f"sanctionEntity #{position} (logicalId {logical_id})"
        names = _unique(_eu_name(alias) for alias in element.iterfind(f"{ns}nameAlias"))
        if not names:
            raise SanctionsFileError(f"eu xml: {where} has no nameAlias with a name")
        subject = element.find(f"{ns}subjectType")
        code = subject.get("code") if subject is not None else None
        ids.add(logical_id, where)
        yield SanctionsEntry(
            list_name="eu", entry_id=logical_id, kind=_eu_kinds.get(code, "other"), names=names,
            dates_of_birth=_unique(d for b in element.iterfind(f"{ns}birthdate")
                                   for d in _eu_dates(b)),
            programs=_unique((r.get("programme") or "").strip()
                             for r in element.iterfind(f"{ns}regulation")))


def _eu_name(alias: Element) -> str:
    whole = (alias.get("wholeName") or "").strip()
    parts = (alias.get(a, "").strip() for a in ("firstName", "middleName", "lastName"))
    return whole or " ".join(p for p in parts if p)


def _eu_dates(birthdate: Element) -> Iterator[str]:
    circa = birthdate.get("circa") == "true"
    full, year = birthdate.get("birthdate", ""), birthdate.get("year", "")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", full):
        yield full[:4] if circa else _iso_date(int(full[:4]), int(full[5:7]), int(full[8:]))
    elif _year.match(year):
        yield year
    else:
        low, high = birthdate.get("yearRangeFrom", ""), birthdate.get("yearRangeTo", "")
        if _year.match(low) and _year.match(high) and 0 <= int(high) - int(low) < (
                dob_range_years_max):
            yield from (str(y) for y in range(int(low), int(high) + 1))


def _parse_uk_xml(data: bytes) -> Iterator[SanctionsEntry]:
    root = _xml_root(data, "uk xml", "Designations", frozenset({""}))
    ids = _Ids("uk xml")
    for position, element in enumerate(root.iterfind("Designation"), 1):
        unique_id = _text(element, "UniqueID")
        if unique_id is None:
            raise SanctionsFileError(f"uk xml: Designation #{position} has no UniqueID")
        where = f"Designation #{position} (UniqueID {unique_id})"
        names = _uk_names(element)
        if not names:
            raise SanctionsFileError(f"uk xml: {where} has no name")
        kind = (_text(element, "IndividualEntityShip") or "").casefold()
        ids.add(unique_id, where)
        yield SanctionsEntry(
            list_name="uk", entry_id=unique_id, kind=_uk_kinds.get(kind, "other"), names=names,
            dates_of_birth=_unique(d for v in _texts(element, "IndividualDetails//DOB")
                                   for d in _uk_dates(v)),
            programs=_unique(_texts(element, "RegimeName")))


def _uk_names(designation: Element) -> tuple[str, ...]:
    """Primary name first, then variations and aliases in file order, then non-Latin names."""
    written = []
    for name in designation.iterfind("Names/Name"):
        parts = (_text(name, f"Name{i}") for i in range(1, 7))
        primary = (_text(name, "NameType") or "").casefold() == "primary name"
        written.append((not primary, " ".join(p for p in parts if p)))
    latin = (text for _, text in sorted(written, key=lambda w: w[0]))
    return _unique([*latin, *_texts(designation, "NonLatinNames//NameNonLatinScript")])


def _uk_dates(value: str) -> Iterator[str]:
    if m := _uk_date.match(value):
        day, month, year = m.groups()
        known = day.isdigit() and month.isdigit() and int(day) and int(month)
        yield _iso_date(int(year), int(month), int(day)) if known else year


_parsers: dict[str, dict[str, Callable[[bytes], Iterator[SanctionsEntry]]]] = {
    "ofac": {"csv": _parse_ofac_csv, "xml": _parse_ofac_xml},
    "eu": {"xml": _parse_eu_xml},
    "uk": {"xml": _parse_uk_xml},
}
