"""Bank details: the virtual accounts Corridor issues, and validation of partners' accounts.

The oracles are written here, independently of schwifty: ISO 7064 mod-97-10 over the rearranged
IBAN, IBAN lengths from SWIFT's registry, the national check digits of DE (Commerzbank's method
13), FR (RIB key), ES and BE, and the ABA 3-7-1 checksum. Every refusal names its input field.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.bank_details import (
    AccountDetails,
    BankDetails,
    aba_checksum_ok,
    iban_countries,
    issuable_countries,
    issue_details,
    issue_digits_count_min,
    local_countries,
    mask,
    validate_bank_details,
)
from payments.errors import InvalidInput

iban_lengths = {"DE": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "BE": 16, "IE": 22, "GB": 22}
account_lengths = {"DE": 10, "FR": 11, "NL": 10, "ES": 10, "IT": 12, "BE": 7, "IE": 8, "GB": 8,
                   "US": 12, "SG": 10, "HK": 12, "CN": 19}
local_schemes = {"US": "ABA", "SG": "SG_LOCAL", "HK": "HK_LOCAL", "CN": "CNAPS"}
local_bank_code_lengths = {"US": 9, "SG": 4, "HK": 3, "CN": 12}
de_check_digit_index = 7  # Commerzbank's method 13: the 8th of the 10 account digits
digits_st = st.text(alphabet="0123456789", min_size=issue_digits_count_min, max_size=40)

valid_de = "DE89370400440532013000"
valid_fr = "FR1420041010050500013M02606"
valid_gb = "GB29NWBK60161331926819"


def free_digits_count(country: str) -> int:
    """How many of the caller's digits an issued account uses."""
    return account_lengths[country] - (country == "DE")


def numeric(text: str) -> int:
    """Letters to numbers, A=10 .. Z=35, as ISO 13616 does, then read as one integer."""
    return int("".join(str(int(char, 36)) for char in text))


def mod97_ok(iban: str) -> bool:
    return numeric(iban[4:] + iban[:4]) % 97 == 1


def with_check_digits(country: str, bban: str) -> str:
    """An IBAN whose ISO 7064 check digits are right, whatever the BBAN holds."""
    return f"{country}{98 - numeric(bban + country + '00') % 97:02d}{bban}"


def aba_oracle(routing: str) -> bool:
    weights = [3, 7, 1] * 3
    return sum(int(d) * w for d, w in zip(routing, weights, strict=True)) % 10 == 0


def de_method_13_ok(bban: str) -> bool:
    account = bban[8:]
    total = 0
    for weight, digit in zip([2, 1, 2, 1, 2, 1], reversed(account[1:7]), strict=True):
        product = weight * int(digit)
        total += product // 10 + product % 10
    return int(account[de_check_digit_index]) == (10 - total % 10) % 10


def fr_rib_key_ok(bban: str) -> bool:
    bank, branch, account, key = bban[:5], bban[5:10], bban[10:21], bban[21:]
    return int(key) == 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97


def es_check_digits_ok(bban: str) -> bool:
    weights = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]

    def digit(ten: str) -> str:
        value = 11 - sum(int(d) * w for d, w in zip(ten, weights, strict=True)) % 11
        return str({11: 0, 10: 1}.get(value, value))

    return bban[8:10] == digit("00" + bban[:8]) + digit(bban[10:])


def be_check_digits_ok(bban: str) -> bool:
    return int(bban[10:]) == (int(bban[:10]) % 97 or 97)


national_oracles = {"DE": de_method_13_ok, "FR": fr_rib_key_ok, "ES": es_check_digits_ok,
                    "BE": be_check_digits_ok}


def validate(country: str, *, iban: str | None = None, bic: str | None = None,
             account_number: str | None = None, bank_code: str | None = None) -> BankDetails:
    return validate_bank_details(country, iban=iban, bic=bic, account_number=account_number,
                                 bank_code=bank_code)


def refused_field(country: str, **fields: str | None) -> str | None:
    with pytest.raises(InvalidInput) as raised:
        validate(country, **fields)  # type: ignore[arg-type]
    return raised.value.field


def test_country_sets() -> None:
    assert iban_countries == set(iban_lengths)
    assert local_countries == set(local_schemes)
    assert issuable_countries == set(account_lengths)
    assert max(account_lengths.values()) <= issue_digits_count_min


@pytest.mark.parametrize("country", sorted(iban_countries))
@given(digits=digits_st)
def test_issued_iban_is_valid(country: str, digits: str) -> None:
    details = issue_details(country, digits)
    iban = details.iban
    assert iban is not None
    assert (details.country, details.scheme) == (country, "IBAN")
    assert iban.startswith(country)
    assert len(iban) == iban_lengths[country]
    assert iban.isascii() and iban.isalnum() and iban == iban.upper()  # noqa: PT018
    assert mod97_ok(iban)
    if country in national_oracles:
        assert national_oracles[country](iban[4:])
    assert details.bic is not None
    assert details.bic[4:6] == country
    assert details.routing_key == iban
    assert details.account_number in iban
    assert len(details.account_number) == account_lengths[country]


@pytest.mark.parametrize("country", sorted(local_countries))
@given(digits=digits_st)
def test_issued_local_details_are_valid(country: str, digits: str) -> None:
    details = issue_details(country, digits)
    assert (details.country, details.scheme, details.iban) == (country, local_schemes[country],
                                                               None)
    assert details.bank_code is not None
    assert details.bank_code.isdigit()
    assert len(details.bank_code) == local_bank_code_lengths[country]
    assert details.account_number == digits[: account_lengths[country]]
    parts = [country, details.bank_code, details.branch_code, details.account_number]
    assert details.routing_key == ":".join(p for p in parts if p is not None)
    if country == "US":
        assert aba_oracle(details.bank_code)


@pytest.mark.parametrize("country", sorted(issuable_countries))
@given(digits=digits_st)
def test_issued_details_validate_and_use_only_leading_digits(country: str, digits: str) -> None:
    details = issue_details(country, digits)
    used = free_digits_count(country)
    account = details.account_number
    if country == "DE":
        account = account[:de_check_digit_index] + account[de_check_digit_index + 1:]
    assert account == digits[:used]
    assert issue_details(country, digits[:used] + "0" * issue_digits_count_min) == details
    accepted = validate(country, iban=details.iban, bic=details.bic,
                        account_number=None if details.iban else details.account_number,
                        bank_code=None if details.iban else details.bank_code)
    assert accepted.iban == details.iban
    assert accepted.bic == details.bic


@pytest.mark.parametrize("country", sorted(issuable_countries))
@settings(max_examples=50)
@given(data=st.data())
def test_routing_keys_are_unique(country: str, data: st.DataObject) -> None:
    used = free_digits_count(country)
    samples = data.draw(st.lists(digits_st, min_size=2, max_size=40,
                                 unique_by=lambda digits: digits[:used]))
    keys = [issue_details(country, digits).routing_key for digits in samples]
    assert len(set(keys)) == len(keys)
    assert all(key == key.upper() and " " not in key for key in keys)


def test_routing_keys_are_unique_in_the_smallest_space() -> None:
    """Belgium has 7 account digits; every one of a run of them gives its own IBAN."""
    keys = {issue_details("BE", f"{n:07d}" + "0" * 13).routing_key for n in range(0, 10**7, 997)}
    assert len(keys) == len(range(0, 10**7, 997))


def test_issue_refuses_other_countries() -> None:
    with pytest.raises(InvalidInput) as raised:
        issue_details("FI", "1" * issue_digits_count_min)
    assert raised.value.field == "country"


def test_issued_details_mask_the_account_number() -> None:
    details = issue_details("GB", "12345678" + "0" * 12)
    assert details == AccountDetails("GB", "IBAN", details.iban, "NWBKGB2LXXX", "601613", None,
                                     "12345678")
    assert details.masked == "••••5678"


@pytest.mark.parametrize(
    ("value", "shown"),
    [("12345678", "••••5678"), ("12345", "••••2345"), ("1234", "••••"), ("1", "••••"),
     ("", "••••")],
)
def test_mask(value: str, shown: str) -> None:
    assert mask(value) == shown


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_aba_checksum_has_one_check_digit(first_eight: str) -> None:
    valid = [d for d in "0123456789" if aba_checksum_ok(first_eight + d)]
    assert len(valid) == 1
    assert aba_oracle(first_eight + valid[0])


@pytest.mark.parametrize(
    "routing",
    ["", "02100002", "0210000210", "02100002a", "\uff10\uff12\uff11\uff10\uff10\uff10021"],
)
def test_aba_checksum_refuses_malformed(routing: str) -> None:
    assert not aba_checksum_ok(routing)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [(valid_de, valid_de), ("de89 3704 0044 0532 0130 00", valid_de),
     ("  DE89 3704 0044 0532 0130 00\u00a0", valid_de), (valid_fr.lower(), valid_fr)],
)
def test_iban_accepted_in_any_case_and_spacing(text: str, canonical: str) -> None:
    assert validate(canonical[:2], iban=text) == BankDetails(canonical[:2], canonical, None, None,
                                                             None)


def test_bic_is_canonical_and_may_belong_to_a_parent_country() -> None:
    assert validate("GB", iban=valid_gb, bic="nwbk gb 2l").bic == "NWBKGB2L"
    # Jersey accounts have GB IBANs; Guadeloupe accounts have FR IBANs.
    assert validate("JE", iban=valid_gb, bic="NWBKGB2L").iban == valid_gb
    assert validate("GP", iban=valid_fr).iban == valid_fr


def test_local_details_accepted() -> None:
    assert validate("GB", bank_code="601613", account_number="31926819") == BankDetails(
        "GB", None, None, "601613", "31926819")
    assert validate("US", bank_code=" 021000021 ", account_number="1234") == BankDetails(
        "US", None, None, "021000021", "1234")
    assert validate("CN", bank_code="102100099996", account_number="6222021234567890123",
                    bic="ICBKCNBJ").bic == "ICBKCNBJ"
    # No IBAN and no rule of its own: the generic rule, upper-cased.
    assert validate("NG", bank_code="058", account_number="ab0123") == BankDetails(
        "NG", None, None, "058", "AB0123")
    # Morocco's IBAN format is only aspirational: banks give RIBs.
    assert validate("MA", bank_code="007", account_number="780000123456789").iban is None


def test_blank_fields_count_as_absent() -> None:
    assert validate("DE", iban=valid_de, account_number="  ", bank_code="").iban == valid_de


def test_field_prefix_names_the_nested_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_bank_details("DE", iban=None, bic=None, account_number=None, bank_code=None,
                              field_prefix="beneficiary.")
    assert raised.value.field == "beneficiary.iban"


bad_de_check_digits = "DE88" + valid_de[4:]
bad_fr_rib_key = with_check_digits("FR", valid_fr[4:-2] + "07")
de_too_long = with_check_digits("DE", valid_de[4:] + "1")
de_too_short = with_check_digits("DE", valid_de[4:-1])
control = "\x00"


@pytest.mark.parametrize(
    ("country", "fields", "field"),
    [
        ("DE", {"iban": bad_de_check_digits}, "iban"),
        ("FR", {"iban": bad_fr_rib_key}, "iban"),
        ("DE", {"iban": with_check_digits("DE", "370400440532013100")}, "iban"),  # method 13
        ("DE", {"iban": de_too_long}, "iban"),
        ("DE", {"iban": de_too_short}, "iban"),
        ("DE", {"iban": "DE89" + "0" * 31}, "iban"),  # longer than any IBAN
        ("DE", {"iban": valid_de + " " * 60}, "iban"),  # longer than any input
        ("DE", {"iban": valid_fr}, "iban"),
        ("JE", {"iban": "JE" + valid_gb[2:]}, "iban"),
        ("DE", {"iban": "DE89\uff13\uff17" + valid_de[6:]}, "iban"),  # full-width digits
        ("IE", {"iban": "\u0131e29a\u0131bk93115212345678"}, "iban"),  # dotless i, upper "I"
        ("DE", {"iban": "DE89-3704-0044-0532-0130-00"}, "iban"),
        ("DE", {"iban": valid_de[:12] + control + valid_de[12:]}, "iban"),
        ("DE", {"iban": valid_de + "\n"}, "iban"),
        ("DE", {}, "iban"),
        ("DE", {"iban": "   "}, "iban"),
        ("DE", {"iban": valid_de, "account_number": "0532013000"}, "accountNumber"),
        ("DE", {"iban": valid_de, "bank_code": "37040044"}, "bankCode"),
        ("GB", {"iban": valid_gb, "bank_code": "601613"}, "bankCode"),
        ("GB", {"bank_code": "601613"}, "accountNumber"),
        ("GB", {"account_number": "31926819"}, "bankCode"),
        ("GB", {"bank_code": "60-16-13", "account_number": "31926819"}, "bankCode"),
        ("GB", {"bank_code": "601613", "account_number": "3192681"}, "accountNumber"),
        ("DE", {"iban": valid_de, "bic": "COBADEF"}, "bic"),
        ("DE", {"iban": valid_de, "bic": "COBADEFFXX"}, "bic"),
        ("DE", {"iban": valid_de, "bic": "COBA1EFF"}, "bic"),
        ("DE", {"iban": valid_de, "bic": "NWBKGB2L"}, "bic"),
        ("DE", {"iban": valid_de, "bic": "COBADE" + control + "FF"}, "bic"),
        ("US", {"iban": valid_de, "bank_code": "021000021", "account_number": "1234"}, "iban"),
        ("US", {"bank_code": "021000022", "account_number": "1234"}, "bankCode"),
        ("US", {"bank_code": "02100002", "account_number": "1234"}, "bankCode"),
        ("US", {"account_number": "1234"}, "bankCode"),
        ("US", {"bank_code": "021000021"}, "accountNumber"),
        ("US", {"bank_code": "021000021", "account_number": "123"}, "accountNumber"),
        ("US", {"bank_code": "021000021", "account_number": "1" * 18}, "accountNumber"),
        ("US", {"bank_code": "021000021", "account_number": "1234ABCD"}, "accountNumber"),
        ("US", {"bank_code": "021000021", "account_number": "12 34"}, "accountNumber"),
        ("US", {"bank_code": "021000021", "account_number": "12\t34"}, "accountNumber"),
        ("US", {"bank_code": "021000021", "account_number": "\u0661\u0662\u0663\u0664"},
         "accountNumber"),
        ("US", {"bank_code": "021000021", "account_number": "1" * 65}, "accountNumber"),
        ("SG", {"bank_code": "717", "account_number": "1234567890"}, "bankCode"),
        ("SG", {"bank_code": "7171", "account_number": "12345A7890"}, "accountNumber"),
        ("HK", {"bank_code": "04", "account_number": "123456789012"}, "bankCode"),
        ("HK", {"bank_code": "004", "account_number": "1" * 17}, "accountNumber"),
        ("CN", {"bank_code": "10210009999", "account_number": "6222021234567890123"},
         "bankCode"),
        ("CN", {"bank_code": "102100099996", "account_number": "1234567"}, "accountNumber"),
        ("CN", {"bank_code": "102100099996", "account_number": "62220212345678X"},
         "accountNumber"),
        ("CN", {"bank_code": "102100099996", "account_number": "6222021234567890",
                "bic": "NWBKGB2L"}, "bic"),
        ("NG", {"bank_code": "0" * 21, "account_number": "1"}, "bankCode"),
        ("NG", {"bank_code": "058", "account_number": "1" * 35}, "accountNumber"),
        ("NG", {"bank_code": "058", "account_number": "01-23"}, "accountNumber"),
        ("MA", {"iban": "MA64011519000001205000534921"}, "iban"),
    ],
)
def test_refused_with_field(country: str, fields: dict[str, str], field: str) -> None:
    assert refused_field(country, **fields) == field


@pytest.mark.parametrize("country", ["de", "DEU", "XX", "ZZ", "", "  ", "D\x00", "\u0130T"])
def test_country_must_be_iso_alpha_2(country: str) -> None:
    assert refused_field(country, iban=valid_de) == "country"


def test_every_iso_country_is_accepted() -> None:
    import pycountry  # installed with schwifty, which validates BIC countries with it
    for code in [c.alpha_2 for c in pycountry.countries] + ["XK"]:
        with pytest.raises(InvalidInput) as raised:
            validate(code)
        assert raised.value.field != "country", code


text_or_none_st = st.none() | st.text(max_size=70) | st.from_regex(r"[A-Za-z0-9 ]{0,40}",
                                                                   fullmatch=True)


@given(country=st.sampled_from(["DE", "FR", "GB", "BE", "US", "SG", "NG", "XK", "JE", "se"]),
       iban=text_or_none_st, bic=text_or_none_st, account_number=text_or_none_st,
       bank_code=text_or_none_st)
def test_any_input_is_accepted_or_refused_as_invalid_input(
        country: str, iban: str | None, bic: str | None, account_number: str | None,
        bank_code: str | None) -> None:
    field: str | None = None
    try:
        details = validate(country, iban=iban, bic=bic, account_number=account_number,
                           bank_code=bank_code)
    except InvalidInput as error:
        field = error.field
    else:
        assert (details.iban is None) != (details.account_number is None)
    assert field in {None, "country", "iban", "bic", "accountNumber", "bankCode"}
