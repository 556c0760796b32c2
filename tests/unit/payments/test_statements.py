"""Bank statement parsing: the shipped samples field by field, every error naming its place, and
a CSV round trip over generated entries."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments import statements
from payments.currency import all_currencies, currency
from payments.errors import InvalidInput
from payments.money import amount_minor_max, format_amount
from payments.statements import StatementEntry, StatementError, parse_camt053, parse_csv

samples = Path(statements.__file__).parent / "samples"
header = ",".join(statements.csv_columns)
ns08 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
ns02 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def entry(**fields: object) -> StatementEntry:
    defaults: dict[str, object] = {
        "bank_reference": "R1", "creditor_iban": "DE89370400440532013000",
        "creditor_account": None, "amount_minor": 1000, "currency": "EUR",
        "sender_name": None, "sender_iban": None, "reference": None,
        "value_date": date(2024, 6, 14), "source_line": None,
    }
    return StatementEntry(**{**defaults, **fields})  # type: ignore[arg-type]


def ntry(*, amt: str = '<Amt Ccy="EUR">10.00</Amt>', ind: str = "CRDT",
         sts: str = "<Sts><Cd>BOOK</Cd></Sts>", ref: str = "<AcctSvcrRef>R1</AcctSvcrRef>",
         dates: str = "<ValDt><Dt>2024-06-14</Dt></ValDt>", details: str | None = None) -> str:
    if details is None:
        details = tx()
    return (f"<Ntry>{amt}<CdtDbtInd>{ind}</CdtDbtInd>{sts}{dates}{ref}"
            f"<NtryDtls>{details}</NtryDtls></Ntry>")


def tx(*, refs: str = "", amt: str = "", parties: str | None = None, rmt: str = "") -> str:
    if parties is None:
        parties = "<CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct>"
    return f"<TxDtls>{refs}{amt}<RltdPties>{parties}</RltdPties>{rmt}</TxDtls>"


def camt(*entries: str, ns: str = ns08, statement_count: int = 1) -> bytes:
    stmt = f"<Stmt><Id>S</Id>{''.join(entries)}</Stmt>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{ns}"><BkToCstmrStmt>'
            f"<GrpHdr><MsgId>M</MsgId></GrpHdr>{stmt * statement_count}"
            "</BkToCstmrStmt></Document>").encode()


def camt_error(data: bytes) -> str:
    with pytest.raises(StatementError) as raised:
        parse_camt053(data)
    return raised.value.message


def csv_error(text: str) -> str:
    with pytest.raises(StatementError) as raised:
        parse_csv(text)
    return raised.value.message


# The samples.


def test_camt053_sample_returns_the_three_booked_credits() -> None:
    parsed = parse_camt053((samples / "camt053-sample.xml").read_bytes())
    assert parsed == [
        StatementEntry(
            bank_reference="2024061405318447", creditor_iban="DE89370400440532013000",
            creditor_account=None, amount_minor=125_000, currency="EUR",
            sender_name="Müller Maschinenbau GmbH", sender_iban="DE12500105170648489890",
            reference="Invoice 2024-0612 order 7781", value_date=date(2024, 6, 14),
            source_line=None,
        ),
        StatementEntry(
            bank_reference="2024061405318448", creditor_iban="DE88370400440532013018",
            creditor_account=None, amount_minor=8_990, currency="EUR",
            sender_name="Jean Dupont", sender_iban="FR7630003036200002000123479",
            reference="RF18539007547034", value_date=date(2024, 6, 14), source_line=None,
        ),
        StatementEntry(
            bank_reference="2024061405318451", creditor_iban="DE66370400440532013026",
            creditor_account=None, amount_minor=1_500_000, currency="EUR",
            sender_name="Example Trading B.V.", sender_iban="NL20INGB0001234567",
            reference="Prefunding June 2024 contract CT-2024-118", value_date=date(2024, 6, 13),
            source_line=None,
        ),
    ]


def test_csv_sample() -> None:
    parsed = parse_csv((samples / "statement-sample.csv").read_text(encoding="utf-8"))
    assert parsed == [
        StatementEntry(
            bank_reference="BR-20240614-0001", creditor_iban="DE89370400440532013000",
            creditor_account=None, amount_minor=125_000, currency="EUR",
            sender_name="Müller Maschinenbau GmbH", sender_iban="DE12500105170648489890",
            reference="Invoice 2024-0612 order 7781", value_date=date(2024, 6, 14),
            source_line=2,
        ),
        StatementEntry(
            bank_reference="BR-20240614-0002", creditor_iban="DE88370400440532013018",
            creditor_account=None, amount_minor=8_990, currency="EUR",
            sender_name="Dupont, Jean", sender_iban="FR7630003036200002000123479",
            reference="RF18539007547034", value_date=date(2024, 6, 14), source_line=3,
        ),
        StatementEntry(
            bank_reference="BR-20240614-0003", creditor_iban=None,
            creditor_account="483920175516", amount_minor=25_000_000, currency="USD",
            sender_name="Acme Widgets, Inc.", sender_iban=None,
            reference='PO "7781", second tranche', value_date=date(2024, 6, 14), source_line=4,
        ),
        StatementEntry(
            bank_reference="BR-20240615-0001", creditor_iban="DE66370400440532013026",
            creditor_account=None, amount_minor=1_500_000, currency="EUR", sender_name=None,
            sender_iban=None, reference=None, value_date=date(2024, 6, 15), source_line=5,
        ),
    ]


# camt.053 versions and field sources.


def test_camt053_001_02_shapes() -> None:
    """Version 02: plain-text Sts, Dbtr/Nm, AmtDtls, and a ValDt/DtTm."""
    parties = ("<Dbtr><Nm>Anna Schmidt</Nm></Dbtr>"
               "<DbtrAcct><Id><IBAN>DE12500105170648489890</IBAN></Id></DbtrAcct>"
               "<CdtrAcct><Id><Othr><Id>483920175516</Id></Othr></Id></CdtrAcct>")
    data = camt(
        ntry(sts="<Sts>BOOK</Sts>", dates="<ValDt><DtTm>2024-06-14T09:30:00+02:00</DtTm></ValDt>",
             details=tx(parties=parties, rmt="<RmtInf><Ustrd>Rent June</Ustrd></RmtInf>")),
        ntry(sts="<Sts>PDNG</Sts>", ref="<AcctSvcrRef>R2</AcctSvcrRef>"),
        ns=ns02,
    )
    assert parse_camt053(data) == [
        entry(creditor_iban=None, creditor_account="483920175516", sender_name="Anna Schmidt",
              sender_iban="DE12500105170648489890", reference="Rent June"),
    ]


@pytest.mark.parametrize("version", range(2, 14))
def test_camt053_every_namespace_version(version: int) -> None:
    data = camt(ntry(), ns=f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version:02d}")
    assert parse_camt053(data) == [entry()]


@pytest.mark.parametrize(
    ("ref", "details", "expected"),
    [
        ("<NtryRef>N1</NtryRef>", tx(), "N1"),
        ("<NtryRef>N1</NtryRef><AcctSvcrRef>A1</AcctSvcrRef>", tx(), "A1"),
        ("", tx(refs="<Refs><AcctSvcrRef>T1</AcctSvcrRef></Refs>"), "T1"),
    ],
)
def test_camt053_bank_reference_sources(ref: str, details: str, expected: str) -> None:
    assert parse_camt053(camt(ntry(ref=ref, details=details)))[0].bank_reference == expected


def test_camt053_booking_date_when_no_value_date_and_no_details() -> None:
    data = camt(ntry(dates="<BookgDt><Dt>2024-06-15</Dt></BookgDt>", details=""))
    assert parse_camt053(data) == [entry(creditor_iban=None, value_date=date(2024, 6, 15))]


def test_camt053_structured_reference_wins_and_whitespace_collapses() -> None:
    rmt = ("<RmtInf><Ustrd>free text</Ustrd><Strd><CdtrRefInf><Ref>RF18539007547034</Ref>"
           "</CdtrRefInf></Strd></RmtInf>")
    parties = ("<Dbtr><Pty><Nm>\n   Jean\n   Dupont  </Nm></Pty></Dbtr>"
               "<CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct>")
    parsed = parse_camt053(camt(ntry(details=tx(parties=parties, rmt=rmt))))
    assert parsed == [entry(sender_name="Jean Dupont", reference="RF18539007547034")]


def test_camt053_batch_entry_splits_into_transactions() -> None:
    def part(ref: str, amount: str, iban: str) -> str:
        return tx(refs=f"<Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>",
                  amt=f'<Amt Ccy="EUR">{amount}</Amt>',
                  parties=f"<CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct>")

    details = (part("T1", "7.50", "DE89370400440532013000")
               + part("T2", "2.50", "DE88370400440532013018"))
    assert parse_camt053(camt(ntry(details=details))) == [
        entry(bank_reference="T1", amount_minor=750),
        entry(bank_reference="T2", amount_minor=250, creditor_iban="DE88370400440532013018"),
    ]
    mismatch = part("T1", "7.50", "DE89370400440532013000") + part("T2", "2.00",
                                                                    "DE88370400440532013018")
    assert camt_error(camt(ntry(details=mismatch))) == (
        "Stmt[1]/Ntry[1]/Amt: the entry's 10.00 is not the sum of its transactions, 9.50")
    no_ref = part("T1", "7.50", "DE89370400440532013000") + tx(amt='<Amt Ccy="EUR">2.50</Amt>')
    assert camt_error(camt(ntry(details=no_ref))) == (
        "Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[2]/Refs/AcctSvcrRef: bank_reference is missing")


def test_camt053_skips_debits_and_unbooked_entries_without_checking_them() -> None:
    data = camt(
        ntry(ind="DBIT", amt='<Amt Ccy="EUR">oops</Amt>'),
        ntry(sts="<Sts><Cd>PDNG</Cd></Sts>", amt=""),
        ntry(sts="<Sts><Cd>INFO</Cd></Sts>"),
        ntry(sts="<Sts><Prtry>HELD</Prtry></Sts>"),
    )
    assert parse_camt053(data) == []


# camt.053 errors, each naming the element.


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amt": '<Amt Ccy="EUR">12.345</Amt>'},
         "Stmt[1]/Ntry[1]/Amt: EUR allows 2 decimal places, '12.345' has 3"),
        ({"amt": '<Amt Ccy="EUR">12,50</Amt>'},
         "Stmt[1]/Ntry[1]/Amt: amount '12,50' is not a decimal number such as \"10.50\""),
        ({"amt": ""}, "Stmt[1]/Ntry[1]/Amt: amount is missing"),
        ({"amt": "<Amt>10.00</Amt>"}, "Stmt[1]/Ntry[1]/Amt/@Ccy: currency is missing"),
        ({"amt": '<Amt Ccy="XYZ">10.00</Amt>'}, "Stmt[1]/Ntry[1]/Amt/@Ccy: unknown currency 'XYZ'"),
        ({"amt": '<Amt Ccy="EUR">-10.00</Amt>'}, "Stmt[1]/Ntry[1]/Amt: amount must be positive"),
        ({"dates": "<ValDt><Dt>2024-13-01</Dt></ValDt>"},
         "Stmt[1]/Ntry[1]/ValDt/Dt: value_date '2024-13-01' is not a date YYYY-MM-DD"),
        ({"dates": ""}, "Stmt[1]/Ntry[1]/ValDt/Dt: value_date is missing"),
        ({"ind": "CRED"}, "Stmt[1]/Ntry[1]/CdtDbtInd: must be CRDT or DBIT, got 'CRED'"),
        ({"sts": ""}, "Stmt[1]/Ntry[1]/Sts/Cd: the entry has no status"),
        ({"ref": ""}, "Stmt[1]/Ntry[1]/AcctSvcrRef: bank_reference is missing"),
        ({"details": tx(parties="<DbtrAcct><Id><IBAN>de12 5001</IBAN></Id></DbtrAcct>")},
         "Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]/RltdPties/DbtrAcct/Id/IBAN: sender_iban "
         "'de12 5001' is not an IBAN such as 'DE89370400440532013000' (capitals and digits, "
         "no spaces)"),
        ({"details": tx(parties="<Dbtr><Nm>Bell\x7f</Nm></Dbtr>")},
         "Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]/RltdPties/Dbtr/Nm: sender_name contains a "
         "control or invalid character (U+007F)"),
    ],
)
def test_camt053_entry_errors_name_the_element(kwargs: dict[str, str], message: str) -> None:
    assert camt_error(camt(ntry(**kwargs))) == message


def test_camt053_error_in_a_later_statement_fails_the_whole_file() -> None:
    good = ntry()
    bad = ntry(ref="<AcctSvcrRef>R2</AcctSvcrRef>", amt='<Amt Ccy="JPY">10.5</Amt>')
    data = camt(good, bad, statement_count=2)
    assert camt_error(data) == "Stmt[1]/Ntry[2]/Amt: JPY allows 0 decimal places, '10.5' has 1"


def test_camt053_duplicate_reference_names_the_second() -> None:
    data = camt(ntry(), ntry(ref="<AcctSvcrRef>R2</AcctSvcrRef>"), statement_count=2)
    assert camt_error(data) == ("Stmt[2]/Ntry[1]/AcctSvcrRef: duplicate bank_reference 'R1', "
                                "first at Stmt[1]/Ntry[1]/AcctSvcrRef")


def test_camt053_truncated() -> None:
    data = camt(ntry())
    message = camt_error(data[: len(data) // 2])
    assert message.startswith("Document: not well-formed XML: ")


@pytest.mark.parametrize(
    "data",
    [
        b"<Statement/>",
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08"/>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.14"/>',
        b"<Document><BkToCstmrStmt/></Document>",
    ],
)
def test_camt053_wrong_root(data: bytes) -> None:
    assert camt_error(data).startswith("Document: the root element is ")


def test_camt053_structure_errors() -> None:
    assert camt_error(f'<Document xmlns="{ns08}"/>'.encode()) == (
        "Document: has no BkToCstmrStmt element")
    assert camt_error(f'<Document xmlns="{ns08}"><BkToCstmrStmt/></Document>'.encode()) == (
        "BkToCstmrStmt: has no Stmt element")


billion_laughs = b"""<?xml version="1.0"?>
<!DOCTYPE Document [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&lol4;</Document>"""
external_entity = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&xxe;</Document>"""


@pytest.mark.parametrize("data", [billion_laughs, external_entity])
def test_camt053_refuses_dtds_and_entities(data: bytes) -> None:
    assert camt_error(data) == ("Document: DTDs and entities are not allowed in a statement "
                                "(DTDForbidden)")


def test_camt053_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    data = camt(ntry(), ntry(ref="<AcctSvcrRef>R2</AcctSvcrRef>"))
    monkeypatch.setattr(statements, "entries_max", 1)
    assert camt_error(data) == "Stmt[1]/Ntry[2]: more than 1 entries in one file"
    monkeypatch.setattr(statements, "file_bytes_max", 100)
    assert camt_error(data) == "file: is larger than 100 bytes"


def test_statement_error_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_camt053(b"")
    assert isinstance(raised.value, StatementError)
    assert raised.value.where == "Document"
    assert raised.value.field == "statement"


# CSV.


def row(**fields: str) -> str:
    values = {"bank_reference": "R1", "value_date": "2024-06-14", "amount": "10.00",
              "currency": "EUR", "creditor_iban": "DE89370400440532013000", **fields}
    return ",".join(values.get(column, "") for column in statements.csv_columns)


def test_csv_bom_crlf_blank_lines_and_header_only() -> None:
    text = f"\ufeff{header}\r\n{row()}\r\n\r\n{row(bank_reference='R2')}\r\n"
    assert parse_csv(text) == [entry(source_line=2), entry(bank_reference="R2", source_line=4)]
    assert parse_csv(header) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty; it starts with the header " + header),
        ("\ufeff\n", "line 1: the file is empty; it starts with the header " + header),
        (header.replace("amount,currency", "currency,amount"),
         "line 1: the header must be exactly " + header),
        (f"{header},extra", "line 1: the header must be exactly " + header),
        (f"{header}\n{row()}\n{row(bank_reference='R2')},", "line 3: expected 9 columns, got 10"),
        (f"{header}\nR1,2024-06-14,10.00,EUR", "line 2: expected 9 columns, got 4"),
        (f'{header}\n{row(sender_name=chr(34) + "Acme" + chr(34) + "x")}',
         "line 2: malformed CSV: ',' expected after '\"'"),
        (f'{header}\n{row(reference=chr(34) + "never closed")}\n',
         "line 2: malformed CSV: unexpected end of data"),
        (f"{header}\n{row(sender_name='Acme' + chr(7))}",
         "line 2: sender_name contains a control or invalid character (U+0007)"),
        (f"{header}\n{row(reference='a' + chr(0) + 'b')}",
         "line 2: reference contains a control or invalid character (U+0000)"),
        (f"{header}\n{row(creditor_account='483920175516')}",
         "line 2: exactly one of creditor_iban and creditor_account must be set"),
        (f"{header}\n{row(creditor_iban='')}",
         "line 2: exactly one of creditor_iban and creditor_account must be set"),
        (f"{header}\n{row(value_date='14.06.2024')}",
         "line 2: value_date '14.06.2024' is not a date YYYY-MM-DD"),
        (f"{header}\n{row(value_date='2024-02-30')}",
         "line 2: value_date '2024-02-30' is not a date YYYY-MM-DD"),
        (f"{header}\n{row(amount=chr(34) + '1,000.00' + chr(34))}",
         "line 2: amount '1,000.00' is not a decimal number such as \"10.50\""),
        (f"{header}\n{row(amount='-5')}", "line 2: amount must be positive"),
        (f"{header}\n{row(amount='0.00')}", "line 2: amount must be greater than zero"),
        (f"{header}\n{row(currency='EURO')}",
         "line 2: currency must be a three-letter ISO 4217 code, got 'EURO'"),
        (f"{header}\n{row(currency='XYZ')}", "line 2: unknown currency 'XYZ'"),
        (f"{header}\n{row(bank_reference='')}", "line 2: bank_reference is missing"),
        (f"{header}\n{row(bank_reference='x' * 65)}",
         "line 2: bank_reference must be 0 to 64 characters"),
        (f"{header}\n{row(sender_name='x' * 141)}",
         "line 2: sender_name must be 0 to 140 characters"),
        (f"{header}\n{row(creditor_iban='DE89 3704 0044 0532 0130 00')}",
         "line 2: creditor_iban 'DE89 3704 0044 0532 0130 00' is not an IBAN such as "
         "'DE89370400440532013000' (capitals and digits, no spaces)"),
        (f"{header}\n{row()}\n{row(bank_reference='R2')}\n{row()}",
         "line 4: duplicate bank_reference 'R1', first at line 2"),
    ],
)
def test_csv_errors_name_the_line(text: str, message: str) -> None:
    assert csv_error(text) == message


def test_csv_line_numbers_follow_quoted_line_breaks_and_blank_lines() -> None:
    # A quoted line break is refused as a control character, on the record's first line.
    broken = row(bank_reference="R2", reference='"a' + chr(10) + 'b"')
    text = f"{header}\n\n{row()}\n{broken}"
    assert csv_error(text) == ("line 4: reference contains a control or invalid character "
                               "(U+000A)")


def test_csv_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    text = f"{header}\n{row()}\n{row(bank_reference='R2')}\n"
    monkeypatch.setattr(statements, "entries_max", 1)
    assert csv_error(text) == "line 3: more than 1 entries in one file"
    monkeypatch.setattr(statements, "file_bytes_max", 40)
    assert csv_error(text) == "file: is larger than 40 bytes"


# Round trip: entries rendered with the csv module parse back equal.

text_alphabet = st.characters(exclude_categories=("Cc", "Cs"))


def text_st(length_max: int) -> st.SearchStrategy[str]:
    return st.text(text_alphabet, min_size=1, max_size=length_max)


iban_st = st.from_regex(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", fullmatch=True)


@st.composite
def entry_st(draw: st.DrawFn) -> StatementEntry:
    cur = draw(st.sampled_from(all_currencies()))
    by_iban = draw(st.booleans())
    return StatementEntry(
        bank_reference=draw(text_st(statements.bank_reference_length_max)),
        creditor_iban=draw(iban_st) if by_iban else None,
        creditor_account=None if by_iban else draw(text_st(statements.account_length_max)),
        amount_minor=draw(st.integers(min_value=1, max_value=amount_minor_max)),
        currency=cur.code,
        sender_name=draw(st.none() | text_st(statements.name_length_max)),
        sender_iban=draw(st.none() | iban_st),
        reference=draw(st.none() | text_st(statements.reference_length_max)),
        value_date=draw(st.dates()),
        source_line=None,
    )


def render_csv(entries: list[StatementEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(statements.csv_columns)
    for e in entries:
        writer.writerow([
            e.bank_reference, e.value_date.isoformat(),
            format_amount(e.amount_minor, currency(e.currency)), e.currency,
            e.creditor_iban or "", e.creditor_account or "", e.sender_name or "",
            e.sender_iban or "", e.reference or "",
        ])
    return out.getvalue()


@settings(max_examples=200)
@given(st.lists(entry_st(), max_size=8, unique_by=lambda e: e.bank_reference))
def test_csv_round_trip(entries: list[StatementEntry]) -> None:
    parsed = parse_csv(render_csv(entries))
    assert parsed == [replace(e, source_line=line) for line, e in enumerate(entries, 2)]
