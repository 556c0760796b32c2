"""Bank statements: the booked credits on our accounts, from camt.053 XML or Corridor's CSV.

Both parsers are pure: a file in, a list of ``StatementEntry`` out, in file order. Any problem
fails the whole file with a ``StatementError`` naming where it is, a CSV line (``line 7: ...``)
or an XML element path below ``BkToCstmrStmt`` (``Stmt[1]/Ntry[3]/Amt: ...``). Nothing is
returned from a file with an error, so a statement is never half imported. A ``bank_reference``
seen twice in one file is an error naming the second occurrence.

camt.053 (ISO 20022 BankToCustomerStatement, camt.053.001.02 to camt.053.001.13)
    Elements match on local names; the root must be ``Document`` in one of those namespaces,
    with a ``BkToCstmrStmt`` child. DTDs are refused, so entity expansion and external entities
    never run. Only booked credits are returned: an ``Ntry`` whose ``CdtDbtInd`` is ``DBIT``, or
    whose ``Sts`` (``Sts/Cd`` from version 08) is anything but ``BOOK`` (``PDNG``, ``INFO``,
    ``FUTR``), is skipped. Reversals (``RvslInd``) are credits like any other.

    * ``bank_reference``: ``Ntry/AcctSvcrRef``, else ``Ntry/NtryRef``, else the transaction's
      ``Refs/AcctSvcrRef``.
    * ``amount_minor``, ``currency``: ``Ntry/Amt`` and its ``Ccy`` attribute.
    * ``value_date``: ``ValDt/Dt`` (or the date of ``ValDt/DtTm``), else ``BookgDt``.
    * From the entry's ``NtryDtls/TxDtls``: ``RltdPties/CdtrAcct/Id/IBAN`` (``creditor_iban``) or
      ``/Othr/Id`` (``creditor_account``), ``RltdPties/Dbtr/Nm`` or ``Dbtr/Pty/Nm``
      (``sender_name``), ``RltdPties/DbtrAcct/Id/IBAN`` (``sender_iban``), and
      ``RmtInf/Strd/CdtrRefInf/Ref``, else the ``RmtInf/Ustrd`` lines joined without a separator,
      since banks cut long remittance text at fixed widths (``reference``).

    A batch-booked entry with several ``TxDtls`` becomes one entry per transaction: each needs
    its own ``Refs/AcctSvcrRef`` and amount (``TxDtls/Amt`` or ``AmtDtls/TxAmt/Amt``) in the
    entry's currency, and the amounts must add up to the entry's. Runs of XML whitespace
    (pretty-printing, wrapped lines) in text become one space.

CSV (Corridor's own format)
    UTF-8 text, a byte order mark allowed, comma separated, RFC 4180 quoting, one entry per
    record. Line 1 is exactly this header, in this order::

        bank_reference,value_date,amount,currency,creditor_iban,creditor_account,sender_name,sender_iban,reference

    * ``bank_reference``: required, unique in the file, at most 64 characters.
    * ``value_date``: ``YYYY-MM-DD``.
    * ``amount``: a positive decimal in major units with at most the currency's decimals, no sign,
      exponent or thousands separator: ``1250.00``, ``1250``, ``0.5``.
    * ``currency``: an ISO 4217 code such as ``EUR``.
    * ``creditor_iban`` (the virtual IBAN credited) or ``creditor_account`` (local account details,
      at most 64 characters): exactly one of the two.
    * ``sender_name``, ``sender_iban``, ``reference``: optional; names and references at most 140
      characters.

    An empty field is absent (``None``). IBANs are written without spaces. No field may hold
    control characters, so a record is one line; blank lines are ignored. ``source_line`` is the
    record's line number, the header being line 1.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from payments.currency import Currency, currency
from payments.errors import InvalidInput
from payments.money import format_amount, parse_amount
from payments.text import check_text

if TYPE_CHECKING:
    from _csv import Reader

entries_max = 100_000
file_bytes_max = 50 * 1024 * 1024
bank_reference_length_max = 64
account_length_max = 64
name_length_max = 140
reference_length_max = 140
camt053_namespaces = frozenset(
    f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version:02d}" for version in range(2, 14)
)
csv_columns = ("bank_reference", "value_date", "amount", "currency", "creditor_iban",
               "creditor_account", "sender_name", "sender_iban", "reference")

_iban_pattern = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}")
_date_pattern = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# xs:date may carry a time zone and xs:dateTime a time; the bank's calendar date comes first.
_xml_date_pattern = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:T.*|Z|[+-][0-9]{2}:[0-9]{2})?",
                               re.DOTALL)
_xml_space = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class StatementEntry:
    bank_reference: str
    creditor_iban: str | None
    creditor_account: str | None
    amount_minor: int
    currency: str
    sender_name: str | None
    sender_iban: str | None
    reference: str | None
    value_date: date
    source_line: int | None


class StatementError(InvalidInput):
    """A statement file that cannot be imported; ``where`` is the CSV line or XML element path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}", field="statement")
        self.where = where


# Field checks, shared by both formats. Each raises InvalidInput naming the entry's field.


def _checked(raw: Mapping[str, str | None], source_line: int | None) -> StatementEntry:
    bank_reference = check_text(_required(raw["bank_reference"], "bank_reference"),
                                "bank_reference", bank_reference_length_max)
    value_date = _date(_required(raw["value_date"], "value_date"))
    amount_minor, cur = _money(raw["amount"], raw["currency"])
    return StatementEntry(
        bank_reference=bank_reference,
        creditor_iban=_iban(raw["creditor_iban"], "creditor_iban"),
        creditor_account=_optional(raw["creditor_account"], "creditor_account",
                                   account_length_max),
        amount_minor=amount_minor,
        currency=cur.code,
        sender_name=_optional(raw["sender_name"], "sender_name", name_length_max),
        sender_iban=_iban(raw["sender_iban"], "sender_iban"),
        reference=_optional(raw["reference"], "reference", reference_length_max),
        value_date=value_date,
        source_line=source_line,
    )


def _required(value: str | None, field: str) -> str:
    if not value:
        raise InvalidInput(f"{field} is missing", field)
    return value


def _optional(value: str | None, field: str, length_max: int) -> str | None:
    return check_text(value, field, length_max) if value else None


def _iban(value: str | None, field: str) -> str | None:
    if not value:
        return None
    if _iban_pattern.fullmatch(value) is None:
        raise InvalidInput(f"{field} {value[:40]!r} is not an IBAN such as "
                           "'DE89370400440532013000' (capitals and digits, no spaces)", field)
    return value


def _date(text: str) -> date:
    try:
        if _date_pattern.fullmatch(text) is not None:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidInput(f"value_date {text[:40]!r} is not a date YYYY-MM-DD", "value_date")


def _money(amount: str | None, code: str | None) -> tuple[int, Currency]:
    text = _required(amount, "amount")
    cur = currency(_required(code, "currency"), "currency")
    return parse_amount(text, cur, "amount"), cur


def _remember(entry: StatementEntry, where: str, seen: dict[str, str]) -> None:
    first = seen.setdefault(entry.bank_reference, where)
    if first != where:
        raise StatementError(where, f"duplicate bank_reference {entry.bank_reference!r}, "
                                    f"first at {first}")


def _check_size(size_bytes: int) -> None:
    if size_bytes > file_bytes_max:
        raise StatementError("file", f"is larger than {file_bytes_max} bytes")


# CSV.


def parse_csv(text: str) -> list[StatementEntry]:
    """The entries of a statement in Corridor's CSV format (see the module docstring)."""
    # Characters never outnumber UTF-8 bytes, so only a long text needs encoding to be measured.
    if len(text) > file_bytes_max // 4:
        _check_size(len(text.encode("utf-8", "surrogatepass")))
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        return _csv_entries(reader)
    except csv.Error as error:
        raise StatementError(f"line {reader.line_num}", f"malformed CSV: {error}") from None


def _csv_entries(reader: Reader) -> list[StatementEntry]:
    header = next(reader, None)
    if not header:
        raise StatementError("line 1", f"the file is empty; it starts with the header "
                                       f"{','.join(csv_columns)}")
    if tuple(header) != csv_columns:
        raise StatementError("line 1", f"the header must be exactly {','.join(csv_columns)}")
    entries: list[StatementEntry] = []
    seen: dict[str, str] = {}
    line = 2
    for row in reader:
        where = f"line {line}"
        line_start, line = line, reader.line_num + 1
        if not row:
            continue
        if len(entries) == entries_max:
            raise StatementError(where, f"more than {entries_max} entries in one file")
        try:
            entry = _csv_entry(row, line_start)
        except InvalidInput as error:
            raise StatementError(where, error.message) from None
        _remember(entry, where, seen)
        entries.append(entry)
    return entries


def _csv_entry(row: list[str], line: int) -> StatementEntry:
    if len(row) != len(csv_columns):
        raise InvalidInput(f"expected {len(csv_columns)} columns, got {len(row)}")
    raw = dict(zip(csv_columns, row, strict=True))
    if bool(raw["creditor_iban"]) == bool(raw["creditor_account"]):
        raise InvalidInput("exactly one of creditor_iban and creditor_account must be set")
    return _checked(raw, line)


# camt.053.

# A value found in the XML, and the path of the element it came from (or would have).
_Found = tuple[str | None, str]


def parse_camt053(data: bytes) -> list[StatementEntry]:
    """The booked credits of a camt.053 statement file (see the module docstring)."""
    _check_size(len(data))
    statements = _children(_statement_root(data), "Stmt")
    if not statements:
        raise StatementError("BkToCstmrStmt", "has no Stmt element")
    entries: list[StatementEntry] = []
    seen: dict[str, str] = {}
    ntry_count = 0
    for i, stmt in enumerate(statements, 1):
        for j, ntry in enumerate(_children(stmt, "Ntry"), 1):
            where = f"Stmt[{i}]/Ntry[{j}]"
            for entry, ref_where in _ntry_entries(ntry, where):
                _remember(entry, ref_where, seen)
                entries.append(entry)
            ntry_count += 1
            if max(ntry_count, len(entries)) > entries_max:
                raise StatementError(where, f"more than {entries_max} entries in one file")
    return entries


def _statement_root(data: bytes) -> Element:
    try:
        root = safe_xml.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as error:
        raise StatementError("Document", f"DTDs and entities are not allowed in a statement "
                                         f"({type(error).__name__})") from None
    except ParseError as error:
        raise StatementError("Document", f"not well-formed XML: {error}") from None
    namespace, _, local = root.tag.removeprefix("{").rpartition("}")
    if local != "Document" or namespace not in camt053_namespaces:
        raise StatementError("Document", f"the root element is {root.tag[:120]!r}, not a Document "
                                         "of camt.053.001.02 to camt.053.001.13")
    body = root.find("{*}BkToCstmrStmt")
    if body is None:
        raise StatementError("Document", "has no BkToCstmrStmt element")
    return body


def _ntry_entries(ntry: Element, where: str) -> list[tuple[StatementEntry, str]]:
    """The booked credits of one Ntry with the path of each one's bank reference."""
    indicator, indicator_where = _value(ntry, "CdtDbtInd", where)
    if indicator not in ("CRDT", "DBIT"):
        raise StatementError(indicator_where, f"must be CRDT or DBIT, got {indicator!r}")
    if indicator != "CRDT" or _status(ntry, where) != "BOOK":
        return []
    amount = _amount(ntry, "Amt", where)
    common = {
        "amount": amount[0], "currency": amount[1],
        "value_date": _xml_date(_first(ntry, ("ValDt/Dt", "ValDt/DtTm", "BookgDt/Dt",
                                              "BookgDt/DtTm"), where)),
    }
    txs = [(f"{where}/NtryDtls[{k}]/TxDtls[{m}]", tx)
           for k, details in enumerate(_children(ntry, "NtryDtls"), 1)
           for m, tx in enumerate(_children(details, "TxDtls"), 1)]
    if len(txs) <= 1:
        tx_where, tx = txs[0] if txs else (where, None)
        ref = _first(ntry, ("AcctSvcrRef", "NtryRef"), where)
        tx_ref = _value(tx, "Refs/AcctSvcrRef", tx_where)
        if ref[0] is None and tx_ref[0] is not None:
            ref = tx_ref
        return [_xml_entry({**common, **_parties(tx, tx_where), "bank_reference": ref})]
    parts = [_xml_entry({**common, **_parties(tx, tx_where), **_tx_amount(tx, tx_where),
                         "bank_reference": _value(tx, "Refs/AcctSvcrRef", tx_where)})
             for tx_where, tx in txs]
    _check_batch(ntry, where, parts)
    return parts


def _check_batch(ntry: Element, where: str, parts: list[tuple[StatementEntry, str]]) -> None:
    amount, code = _amount(ntry, "Amt", where)
    total_minor, cur = _xml_money(amount, code)
    for entry, _ref_where in parts:
        if entry.currency != cur.code:
            raise StatementError(f"{where}/NtryDtls", f"a transaction in {entry.currency} "
                                                      f"inside an entry in {cur.code}")
    parts_minor = sum(entry.amount_minor for entry, _ref_where in parts)
    if parts_minor != total_minor:
        raise StatementError(amount[1], f"the entry's {format_amount(total_minor, cur)} is not "
                                           f"the sum of its transactions, "
                                           f"{format_amount(parts_minor, cur)}")


def _xml_entry(found: dict[str, _Found]) -> tuple[StatementEntry, str]:
    raw = {field: value for field, (value, _) in found.items()}
    try:
        entry = _checked(raw, None)
    except InvalidInput as error:
        raise StatementError(found[error.field or "bank_reference"][1], error.message) from None
    return entry, found["bank_reference"][1]


def _xml_money(amount: _Found, code: _Found) -> tuple[int, Currency]:
    try:
        return _money(amount[0], code[0])
    except InvalidInput as error:
        raise StatementError(code[1] if error.field == "currency" else amount[1],
                             error.message) from None


def _xml_date(found: _Found) -> _Found:
    text, where = found
    match = None if text is None else _xml_date_pattern.fullmatch(text)
    return (text if match is None else match.group(1)), where


def _status(ntry: Element, where: str) -> str:
    status, status_where = _first(ntry, ("Sts/Cd", "Sts/Prtry", "Sts"), where)
    if not status:
        raise StatementError(status_where, "the entry has no status")
    return status


def _tx_amount(tx: Element, where: str) -> dict[str, _Found]:
    indicator, indicator_where = _value(tx, "CdtDbtInd", where)
    if indicator not in (None, "CRDT"):
        raise StatementError(indicator_where, "a credit entry may hold only credit transactions")
    path = "Amt" if tx.find("{*}Amt") is not None else "AmtDtls/TxAmt/Amt"
    amount, code = _amount(tx, path, where)
    return {"amount": amount, "currency": code}


def _parties(tx: Element | None, where: str) -> dict[str, _Found]:
    return {
        "creditor_iban": _value(tx, "RltdPties/CdtrAcct/Id/IBAN", where),
        "creditor_account": _value(tx, "RltdPties/CdtrAcct/Id/Othr/Id", where),
        "sender_name": _first(tx, ("RltdPties/Dbtr/Pty/Nm", "RltdPties/Dbtr/Nm"), where),
        "sender_iban": _value(tx, "RltdPties/DbtrAcct/Id/IBAN", where),
        "reference": _reference(tx, where),
    }


def _reference(tx: Element | None, where: str) -> _Found:
    structured = _value(tx, "RmtInf/Strd/CdtrRefInf/Ref", where)
    lines = [] if tx is None else tx.findall(_path("RmtInf/Ustrd"))
    if structured[0] is not None or not lines:
        return structured
    return _collapse("".join(line.text or "" for line in lines)), f"{where}/RmtInf/Ustrd"


def _amount(el: Element, path: str, where: str) -> tuple[_Found, _Found]:
    amount, amount_where = _value(el, path, where)
    found = el.find(_path(path))
    code = None if found is None else found.get("Ccy")
    return (amount, amount_where), (code, f"{amount_where}/@Ccy")


def _first(el: Element | None, paths: tuple[str, ...], where: str) -> _Found:
    for path in paths:
        found = _value(el, path, where)
        if found[0] is not None:
            return found
    return None, f"{where}/{paths[0]}"


def _value(el: Element | None, path: str, where: str) -> _Found:
    found = None if el is None else el.find(_path(path))
    text = None if found is None else _collapse(found.text or "")
    return text, f"{where}/{path}"


def _collapse(text: str) -> str | None:
    return _xml_space.sub(" ", text).strip(" ") or None


def _path(path: str) -> str:
    return "/".join(f"{{*}}{name}" for name in path.split("/"))


def _children(el: Element, name: str) -> list[Element]:
    return el.findall(f"{{*}}{name}")
