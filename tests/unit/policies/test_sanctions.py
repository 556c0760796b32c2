"""Sanctions list files parse to exactly the entries they hold, or are refused whole, naming
where. The expected entries are written out from the sample files by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import sanctions
from policies.sanctions import SanctionsEntry, SanctionsFileError, detect_format, formats, parse

samples = Path(sanctions.__file__).parent / "samples"
data = Path(__file__).parent / "data"
ofac_csv = (samples / "ofac_sdn.csv").read_bytes()
ofac_xml = (samples / "ofac_sdn.xml").read_bytes()
eu_xml = (samples / "eu_consolidated.xml").read_bytes()
uk_xml = (samples / "uk_sanctions_list.xml").read_bytes()
russia, ukraine = "RUSSIA-EO14024", "UKRAINE-EO13661"
uk_russia = "The Russia (Sanctions) (EU Exit) Regulations 2019"


def ofac(entry_id: str, kind: str, names: tuple[str, ...], dobs: tuple[str, ...],
         programs: tuple[str, ...]) -> SanctionsEntry:
    return SanctionsEntry("ofac", entry_id, kind, names, dobs, programs)


ofac_csv_entries = [
    ofac("90001", "individual", ("TESTOVSKIY, Pavel Ivanovich", "PASHA TEST"), ("1960-01-12",),
         (russia, ukraine)),
    ofac("90002", "individual", ("AL-MITHALI, Khalid Omar", "ABU OMAR AL-MITHALI",
                                 "AL-MITHALY, Khaled", "MITHALI, Khalid Umar"),
         ("1971", "1972"), ("SDGT",)),
    ofac("90003", "entity", ("NORTHWIND EXAMPLE TRADING LLC", "NORTHWIND TRADING",
                             "SEVERNY VETER EXAMPLE TRADE"), (), (russia,)),
    ofac("90004", "vessel", ("SAMPLE STAR",), (), (russia,)),
    ofac("90005", "individual", ("HUAN, Shiyan", "HUAN, Shi Yan"), ("1985-03-03", "1984"),
         ("NPWMD", "IFSR")),
    ofac("90006", "individual", ("QUILLFEATHER, Marta Elena",), ("1965",), ("GLOMAG",)),
    ofac("90007", "entity", ("BLUE HERON FICTITIOUS SHIPPING CO., LTD.",), (), ("DPRK3",)),
    ofac("90008", "aircraft", ("UR-XMPL",), (), (russia,)),
    ofac("90009", "individual", ("KOVAL-PRIMER, Yuriy",), ("1958", "1959", "1960"),
         ("CYBER2",)),
]


def test_ofac_csv_sample() -> None:
    assert parse("ofac", ofac_csv) == ofac_csv_entries


def test_ofac_xml_sample_adds_the_strong_aliases_csv_keeps_in_alt_csv() -> None:
    strong_aliases = {
        "90001": ("TESTOVSKIY, Pavel Ivanovich", "TESTOVSKY, Pavel", "PASHA TEST"),
        "90002": ("AL-MITHALI, Khalid Omar", "AL-MITHALI, Khalid Omar Abd al-Karim",
                  "ABU OMAR AL-MITHALI", "AL-MITHALY, Khaled", "MITHALI, Khalid Umar"),
        "90003": ("NORTHWIND EXAMPLE TRADING LLC",
                  "OBSHCHESTVO S OGRANICHENNOI OTVETSTVENNOSTYU NORTHWIND EXAMPLE TRADING",
                  "NORTHWIND TRADING", "SEVERNY VETER EXAMPLE TRADE"),
    }
    expected = [SanctionsEntry(e.list_name, e.entry_id, e.kind,
                               strong_aliases.get(e.entry_id, e.names), e.dates_of_birth,
                               e.programs) for e in ofac_csv_entries]
    assert parse("ofac", ofac_xml) == expected


def test_eu_sample() -> None:
    assert parse("eu", eu_xml) == [
        SanctionsEntry("eu", "190001", "individual",
                       ("Pavel Ivanovich TESTOVSKIY", "Pavel Ivanovich TESTOVSKY",
                        "Павел Иванович Тестовский"), ("1960-01-12",), ("UKR",)),
        SanctionsEntry("eu", "190002", "entity",
                       ("Northwind Example Trading LLC",
                        "Общество с ограниченной ответственностью «Нортвинд Экзампл Трейдинг»",  # noqa: RUF001
                        "Northwind Trading"), (), ("RUS",)),
        SanctionsEntry("eu", "190003", "individual", ("Marta Elena QUILLFEATHER",), ("1965",),
                       ("EUGHR",)),
        SanctionsEntry("eu", "190004", "individual", ("Yuriy KOVAL-PRIMER",),
                       ("1958", "1959", "1960"), ("CYB",)),
        SanctionsEntry("eu", "190005", "individual",
                       ("Jürgen Beispiel-Müller", "Juergen BEISPIEL MUELLER", "Jurgen BEISPIEL"),
                       ("1975-07-30", "1976-07-30"), ("SYR",)),
        SanctionsEntry("eu", "190006", "entity", ("Blue Heron Fictitious Shipping Co., Ltd.",),
                       (), ("PRK",)),
    ]


def test_uk_sample() -> None:
    assert parse("uk", uk_xml) == [
        SanctionsEntry("uk", "RUS9001", "individual",
                       ("Pavel Ivanovich TESTOVSKIY", "Pavel Ivanovich TESTOVSKY",
                        "Павел Иванович ТЕСТОВСКИЙ"), ("1960-01-12",), (uk_russia,)),
        SanctionsEntry("uk", "AQD9002", "individual",
                       ("KHALID OMAR AL-MITHALI", "Abu Omar", "Khaled Al-Mithaly",
                        "Khalid Umar Abd al-Karim Mithali", "خالد عمر المثالي"),
                       ("1971", "1972"),
                       ("The ISIL (Da'esh) and Al-Qaida (United Nations Sanctions) (EU Exit) "
                        "Regulations 2019",)),
        SanctionsEntry("uk", "RUS9003", "entity", ("NORTHWIND EXAMPLE TRADING LLC",
                                                   "NORTHWIND TRADING"), (), (uk_russia,)),
        SanctionsEntry("uk", "RUS9004", "vessel", ("SAMPLE STAR",), (), (uk_russia,)),
        SanctionsEntry("uk", "CHN9005", "individual", ("Shiyan HUAN", "桓试验"), ("1985-03-03",),
                       ("The Iran (Sanctions) (Nuclear) (EU Exit) Regulations 2019",)),
        SanctionsEntry("uk", "GHR9006", "individual", ("Marta Elena QUILLFEATHER",), ("1965",),
                       ("The Global Human Rights Sanctions Regulations 2020",)),
    ]


def test_formats() -> None:
    assert formats("ofac") == ("csv", "xml")
    assert formats("eu") == ("xml",)
    assert formats("uk") == ("xml",)
    with pytest.raises(SanctionsFileError, match="unknown list 'un'"):
        formats("un")


@pytest.mark.parametrize(("content", "expected"), [
    (ofac_csv, "csv"), (ofac_xml, "xml"), (eu_xml, "xml"), (uk_xml, "xml"),
    (b"\xef\xbb\xbf\r\n  <export/>", "xml"), (b'90001,"A",-0- ', "csv"),
])
def test_detect_format(content: bytes, expected: str) -> None:
    assert detect_format(content) == expected


@pytest.mark.parametrize("content", [b"", b"  \r\n", b"\xef\xbb\xbf"])
def test_detect_format_refuses_an_empty_file(content: bytes) -> None:
    with pytest.raises(SanctionsFileError, match="empty"):
        detect_format(content)


@pytest.mark.parametrize(("list_name", "file", "where"), [
    ("ofac", "ofac_sdn_wrong_field_count.csv", "ofac csv: line 3: 11 fields, expected 12"),
    ("ofac", "ofac_sdn_missing_uid.xml", "ofac xml: sdnEntry #2: uid None is not a number"),
    ("eu", "eu_duplicate_logical_id.xml",
     "eu xml: sanctionEntity #3 (logicalId 190101): duplicate id 190101 "
     "(first at sanctionEntity #1 (logicalId 190101))"),
    ("uk", "uk_entity_bomb.xml", "uk xml: refused a DTD or entity declaration (DTDForbidden)"),
])
def test_malformed_files_are_refused_naming_where(list_name: str, file: str, where: str) -> None:
    with pytest.raises(SanctionsFileError) as refused:
        parse(list_name, (data / file).read_bytes())
    assert str(refused.value) == where


def csv_row(ent_num: str = "90001", name: str = '"DOE-EXAMPLE, Jan"',
            sdn_type: str = '"individual"', remarks: str = "-0- ") -> str:
    return f'{ent_num},{name},{sdn_type},"SDGT",' + "-0- ," * 7 + remarks


@pytest.mark.parametrize(("content", "where"), [
    (csv_row(ent_num="ent_num").encode(), "line 1: ent_num 'ent_num' is not a number"),
    (csv_row(ent_num="-0- ").encode(), "line 1: ent_num None is not a number"),
    (csv_row(name="-0- ").encode(), "line 1: ent_num 90001 has no SDN_Name"),
    (f"{csv_row()}\r\n{csv_row(ent_num='2')}\r\n{csv_row()}\r\n".encode(),
     "line 3: duplicate id 90001 (first at line 1)"),
    (f'{csv_row()}\r\n90002,"UNCLOSED\r\n'.encode(), "line 2: unexpected end of data"),
    (f"{csv_row()}\r\n{csv_row(ent_num='2', name=chr(0x07) + 'BELL')}".encode(),
     "line 2: control character in the text"),
    (b"\x1a", "no entries"),
    (csv_row(name='"M\xc3\xbcLLER"').encode("latin-1") + b"\xff", "line 1: invalid UTF-8"),
    (csv_row(name='"M\x81LLER"').encode("latin-1"), "line 1: neither UTF-8 nor Windows-1252"),
])
def test_ofac_csv_refusals(content: bytes, where: str) -> None:
    with pytest.raises(SanctionsFileError, match=re.escape(where)):
        parse("ofac", content, "csv")


def test_ofac_csv_reads_windows_1252_and_utf8_alike() -> None:
    legacy = csv_row(name='"M\xdcLLER, J\xfcrgen"').encode("cp1252")
    modern = csv_row(name='"MÜLLER, Jürgen"').encode("utf-8")
    assert parse("ofac", legacy)[0].names == parse("ofac", modern)[0].names == (
        "MÜLLER, Jürgen",)


@pytest.mark.parametrize(("remarks", "dobs"), [
    ('"DOB 12 Jan 1960."', ("1960-01-12",)),
    ('"DOB 1 Feb 1961; alt. DOB 02 Feb 1961."', ("1961-02-01", "1961-02-02")),
    ('"DOB Mar 1962."', ("1962",)),
    ('"DOB circa 1963; alt. DOB circa 14 Apr 1964."', ("1963", "1964")),
    ('"DOB 1958 to 1960."', ("1958", "1959", "1960")),
    ('"DOB 1900 to 1999."', ()),
    ('"DOB 31 Feb 1970."', ("1970",)),
    ('"DOB unknown; POB Exampleville."', ()),
])
def test_ofac_date_of_birth_forms(remarks: str, dobs: tuple[str, ...]) -> None:
    assert parse("ofac", csv_row(remarks=remarks).encode())[0].dates_of_birth == dobs


def test_ofac_remark_aliases_quoted_or_not_and_with_inner_quotes() -> None:
    remarks = "\"a.k.a. 'ABU-'UMAR'; f.k.a. OLD NAME CO; n.k.a. 'NEW NAME CO'.\""
    assert parse("ofac", csv_row(remarks=remarks).encode())[0].names == (
        "DOE-EXAMPLE, Jan", "ABU-'UMAR", "OLD NAME CO", "NEW NAME CO")


def test_a_bad_row_anywhere_refuses_the_whole_file() -> None:
    content = ofac_csv.removesuffix(b"\x1a") + b'99999,"TOO FEW",-0- \r\n'
    with pytest.raises(SanctionsFileError, match="line 10: 3 fields"):
        parse("ofac", content)


@pytest.mark.parametrize(("list_name", "content", "fmt", "where"), [
    ("eu", ofac_xml, None, "eu xml: root element is {https://sanctionslistservice"),
    ("ofac", eu_xml, None, "ofac xml: root element is {http://eu.europa.ec/fpi/fsd/export}export"),
    ("uk", eu_xml, None, "uk xml: root element is"),
    ("uk", ofac_csv, None, "uk: no 'csv' format; this list is read from xml"),
    ("eu", eu_xml, "csv", "eu: no 'csv' format"),
    ("ofac", ofac_xml, "csv", "ofac csv: line 1: 1 fields, expected 12"),
    ("ofac", ofac_csv, "xml", "ofac xml: not well-formed XML at line 1, column 0"),
])
def test_a_file_of_another_list_or_format_is_refused(list_name: str, content: bytes,
                                                     fmt: str | None, where: str) -> None:
    with pytest.raises(SanctionsFileError, match=re.escape(where)):
        parse(list_name, content, fmt)


def test_xml_refusals() -> None:
    cases = {
        "ofac": [
            (ofac_xml.replace(b"<Record_Count>9<", b"<Record_Count>10<"),
             "Record_Count is 10 but the file has 9 sdnEntry elements"),
            (ofac_xml.replace(b"<lastName>SAMPLE STAR</lastName>", b""),
             r"sdnEntry #4 \(uid 90004\): a name without lastName"),
            (ofac_xml[:ofac_xml.index(b"<sdnEntry>")].replace(b">9<", b">0<") + b"</sdnList>",
             "the list has no entries"),
            (ofac_xml.replace(b"http://www.w3.org/2001/XMLSchema-instance", b"urn:x").replace(
                b"sanctionslistservice.ofac.treas.gov", b"example.com"), "root element is"),
        ],
        "eu": [
            (eu_xml.replace(b'logicalId="190003"', b""), "sanctionEntity #3 has no logicalId"),
            (eu_xml.replace("Jürgen".encode(), "Jürgen".encode("latin-1")),
             "not well-formed XML at line 75, column 31"),
            (eu_xml.replace(b'wholeName="Blue Heron Fictitious Shipping Co., Ltd."', b""),
             r"sanctionEntity #6 \(logicalId 190006\) has no nameAlias with a name"),
        ],
        "uk": [
            (uk_xml.replace(b"<UniqueID>RUS9004</UniqueID>", b""),
             "Designation #4 has no UniqueID"),
            (uk_xml.replace(b"<Name6>SAMPLE STAR</Name6>", b""),
             r"Designation #4 \(UniqueID RUS9004\) has no name"),
            (uk_xml[:-30], "not well-formed XML at line"),
            (b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://example.com/x.dtd"><Designations/>',
             "refused a DTD"),
        ],
    }
    for list_name, refusals in cases.items():
        for content, where in refusals:
            with pytest.raises(SanctionsFileError, match=where):
                parse(list_name, content)


def test_files_over_the_size_limit_are_refused_before_parsing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sanctions, "file_bytes_max", len(eu_xml) - 1)
    with pytest.raises(SanctionsFileError, match=f"has {len(eu_xml)} bytes, over the"):
        parse("eu", eu_xml)


def test_unknown_list() -> None:
    with pytest.raises(SanctionsFileError, match="unknown list 'un'; lists: ofac, eu, uk"):
        parse("un", eu_xml)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([("ofac", ofac_csv), ("ofac", ofac_xml), ("eu", eu_xml), ("uk", uk_xml)]),
       st.data())
def test_damaged_files_parse_or_are_refused_never_anything_else(
        sample: tuple[str, bytes], draw: st.DataObject) -> None:
    list_name, content = sample
    start = draw.draw(st.integers(0, len(content) - 1))
    end = draw.draw(st.integers(start, min(len(content), start + 40)))
    damaged = content[:start] + draw.draw(st.binary(max_size=8)) + content[end:]
    try:
        entries = parse(list_name, damaged)
    except SanctionsFileError:
        return
    assert entries
    assert len({e.entry_id for e in entries}) == len(entries)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["csv", "xml", None]))
def test_arbitrary_bytes_are_refused_cleanly(content: bytes, fmt: str | None) -> None:
    for list_name in ("ofac", "eu", "uk"):
        try:
            parse(list_name, content, fmt)
        except SanctionsFileError:
            continue
