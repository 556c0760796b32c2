"""Bank account details: the virtual accounts Corridor issues, and the accounts partners give us.

``issue_details`` builds a virtual account at one of our partner banks from random digits that
the caller draws from ``secrets``, so this module stays pure and its output reproducible. Issued
accounts are random rather than sequential, so a number reveals nothing about how many exist, but
they are not unique by construction: some spaces are small (a Belgian bank has 10 million account
numbers), so the caller stores ``routing_key`` under a unique constraint and draws again on a
conflict.

``validate_bank_details`` checks a beneficiary's or a sender's account and returns it canonical,
or raises ``InvalidInput`` naming the input field. IBANs are required where schwifty's registry
has an IBAN format, except "aspirational" formats that banks may reject (Morocco, Algeria, ...).
Territories that use a parent's format (Jersey, Guadeloupe, Åland) use the parent's IBAN prefix
(GB, FR, FI), and that prefix is what we require.
"""

from __future__ import annotations

from dataclasses import dataclass

from schwifty import BIC, IBAN, registry
from schwifty.checksum import algorithms
from schwifty.exceptions import InvalidCountryCode, SchwiftyException

from payments.errors import InvalidInput
from payments.text import check_text

iban_countries = frozenset({"DE", "FR", "NL", "ES", "IT", "BE", "IE", "GB"})
local_countries = frozenset({"US", "SG", "HK", "CN"})
issuable_countries = iban_countries | local_countries
issue_digits_count_min = 20
input_length_max = 64
iban_length_max = 34
mask_visible_count = 4
_mask_hidden = "••••"
_aba_weights = (3, 7, 1, 3, 7, 1, 3, 7, 1)
# ISO 3166-1 alpha-2, plus XK (Kosovo): user-assigned, but SWIFT and the IBAN registry use it.
# A word list reads better here than 250 quoted strings.
_iso_countries = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH
ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT
HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS
LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI
NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG
SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW""".split())  # noqa: SIM905


@dataclass(frozen=True, slots=True)
class _PartnerBank:
    scheme: str
    bank_code: str
    branch_code: str
    account_length: int
    # Where the bank's national method puts a check digit inside the account code, if it does.
    check_digit_index: int | None = None


# Sandbox issuing banks, one per country: real codes that schwifty's registry knows, so the BIC
# resolves. For IBANs, account_length is the national account code length of the IBAN format.
_partner_banks: dict[str, _PartnerBank] = {
    "DE": _PartnerBank("IBAN", "37040044", "", 10, check_digit_index=7),  # Commerzbank, method 13
    "FR": _PartnerBank("IBAN", "20041", "01005", 11),  # La Banque Postale
    "NL": _PartnerBank("IBAN", "ABNA", "", 10),  # ABN AMRO
    "ES": _PartnerBank("IBAN", "2100", "0418", 10),  # CaixaBank
    "IT": _PartnerBank("IBAN", "05428", "11101", 12),  # Banca Popolare di Bergamo
    "BE": _PartnerBank("IBAN", "310", "", 7),  # ING België
    "IE": _PartnerBank("IBAN", "AIBK", "931152", 8),  # AIB
    "GB": _PartnerBank("IBAN", "NWBK", "601613", 8),  # NatWest
    "US": _PartnerBank("ABA", "021000021", "", 12),  # JPMorgan Chase
    "SG": _PartnerBank("SG_LOCAL", "7171", "001", 10),  # DBS
    "HK": _PartnerBank("HK_LOCAL", "004", "", 12),  # HSBC
    "CN": _PartnerBank("CNAPS", "102100099996", "", 19),  # ICBC
}
# In these IBANs the national clearing code is the sort code, in the IBAN's branch position.
_sort_code_countries = frozenset({"GB", "IE"})


@dataclass(frozen=True, slots=True)
class _LocalFormat:
    """Length ranges of the bank code and the account number, in digits unless letters_ok."""

    bank_code_lengths: tuple[int, int]
    account_number_lengths: tuple[int, int]
    letters_ok: bool = False


_local_formats: dict[str, _LocalFormat] = {
    "GB": _LocalFormat((6, 6), (8, 8)),  # sort code
    "US": _LocalFormat((9, 9), (4, 17)),  # ABA routing number
    "SG": _LocalFormat((4, 4), (6, 20)),
    "HK": _LocalFormat((3, 3), (6, 16)),
    "CN": _LocalFormat((12, 12), (8, 30)),  # CNAPS code
}
# Countries without IBANs and without a rule of their own: loose, since formats vary widely.
_generic_format = _LocalFormat((1, 20), (1, 34), letters_ok=True)


@dataclass(frozen=True, slots=True)
class AccountDetails:
    """A virtual account Corridor issued. ``account_number`` is the account code of the IBAN
    where there is one, without national check digits kept in separate fields (FR, ES, IT, BE)."""

    country: str
    scheme: str
    iban: str | None
    bic: str | None
    bank_code: str | None
    branch_code: str | None
    account_number: str

    @property
    def routing_key(self) -> str:
        """The address incoming money is matched on: the IBAN, else country:bank:branch:account."""
        if self.iban is not None:
            return self.iban
        parts = (self.country, self.bank_code, self.branch_code, self.account_number)
        return ":".join(part for part in parts if part)

    @property
    def masked(self) -> str:
        """The account number as ``mask`` shows it, for statements and dashboards."""
        return mask(self.account_number)


@dataclass(frozen=True, slots=True)
class BankDetails:
    """A validated account: either ``iban`` is set, or ``bank_code`` and ``account_number``."""

    country: str
    iban: str | None
    bic: str | None
    bank_code: str | None
    account_number: str | None


def aba_checksum_ok(routing: str) -> bool:
    """Whether a US routing number has 9 digits whose 3-7-1 weighted sum is a multiple of 10."""
    if len(routing) != 9 or not (routing.isascii() and routing.isdigit()):
        return False
    return sum(w * int(d) for w, d in zip(_aba_weights, routing, strict=True)) % 10 == 0


def mask(value: str) -> str:
    """``••••`` then the last 4 characters: enough to recognise an account, and never its
    length. Values of 4 characters or fewer would be shown whole, so they are fully hidden."""
    return _mask_hidden + (value[-mask_visible_count:] if len(value) > mask_visible_count else "")


def issue_details(country: str, account_number_digits: str) -> AccountDetails:
    """Corridor's virtual account in ``country`` from random decimal digits drawn by the caller.

    Only the leading digits the format needs are used, so distinct leading digits give distinct
    accounts; the result is a pure function of the digits.
    """
    bank = _partner_banks.get(country)
    if bank is None:
        raise InvalidInput("Corridor issues account details only in "
                           f"{', '.join(sorted(issuable_countries))}", "country")
    digits = account_number_digits
    assert len(digits) >= issue_digits_count_min, len(digits)
    assert digits.isascii(), "account_number_digits must be ASCII digits"
    assert digits.isdigit(), "account_number_digits must be ASCII digits"
    if bank.scheme != "IBAN":
        return AccountDetails(country, bank.scheme, None, None, bank.bank_code,
                              bank.branch_code or None, digits[: bank.account_length])
    free_count = bank.account_length - (bank.check_digit_index is not None)
    account_code = _with_check_digit(country, bank, digits[:free_count])
    iban = IBAN.generate(country, bank_code=bank.bank_code, branch_code=bank.branch_code,
                         account_code=account_code)
    bic = iban.bic
    sort_code = country in _sort_code_countries
    return AccountDetails(country, "IBAN", str(iban), None if bic is None else str(bic),
                          iban.branch_code if sort_code else iban.bank_code,
                          None if sort_code else iban.branch_code or None, iban.account_code)


def _with_check_digit(country: str, bank: _PartnerBank, free_digits: str) -> str:
    """The account code with the check digit the bank's national method requires.

    ``IBAN.generate`` fills national check digits that have a BBAN field of their own (FR, ES,
    IT, BE) but not those inside the account code, as German banks have: without this, 9 in 10
    issued German IBANs would fail ``validate_bban``. The digit is inserted rather than written
    over a drawn one, so that distinct digits still give distinct accounts.
    """
    index = bank.check_digit_index
    if index is None:
        return free_digits
    entry = max(registry.get_banks_by_code(country, bank.bank_code), key=lambda b: b.primary)
    solved = algorithms[f"{country}:{entry.checksum_algo}"].solve(
        [free_digits[:index] + "0" + free_digits[index:]])
    assert solved is not None, free_digits
    [account_code] = solved
    assert account_code[:index] + account_code[index + 1:] == free_digits, account_code
    return account_code


def validate_bank_details(country: str, *, iban: str | None, bic: str | None,
                          account_number: str | None, bank_code: str | None,
                          field_prefix: str = "") -> BankDetails:
    """A beneficiary's or a sender's account, checked and canonical, or ``InvalidInput``.

    Every field is stripped of surrounding whitespace, and a blank one counts as absent. Where
    IBANs are used, the IBAN is required and local details are refused, except in GB, where a
    sort code and account number may stand instead. ``field_prefix`` is prepended verbatim to
    the field names in errors (``"beneficiary."`` gives ``"beneficiary.iban"``).
    """
    code = _clean(country, field_prefix + "country")
    if code is None or code not in _iso_countries:
        raise InvalidInput(f"{field_prefix}country must be an ISO 3166 alpha-2 code such as DE",
                           field_prefix + "country")
    iban_text = _clean(iban, field_prefix + "iban")
    bank_text = _clean(bank_code, field_prefix + "bankCode")
    account_text = _clean(account_number, field_prefix + "accountNumber")
    prefix = _iban_prefix(code)
    gb_local = code == "GB" and iban_text is None and (bank_text or account_text) is not None
    if prefix is not None and not gb_local:
        _refuse(bank_text, field_prefix + "bankCode", f"{code} accounts are given by IBAN")
        _refuse(account_text, field_prefix + "accountNumber", f"{code} accounts are given by IBAN")
        canonical_iban = _valid_iban(iban_text, code, prefix, field_prefix + "iban")
        local: tuple[str | None, str | None] = (None, None)
    else:
        _refuse(iban_text, field_prefix + "iban", f"{code} accounts are given by local details")
        canonical_iban = None
        local = _valid_local(code, bank_text, account_text, field_prefix)
    bic_countries = {code, prefix or code}
    canonical_bic = _valid_bic(_clean(bic, field_prefix + "bic"), bic_countries,
                               field_prefix + "bic")
    return BankDetails(code, canonical_iban, canonical_bic, *local)


def _clean(value: str | None, field: str) -> str | None:
    """Bounded, free of control characters, ASCII and stripped; None when absent or blank."""
    if value is None:
        return None
    stripped = check_text(value, field, input_length_max).strip()
    if not stripped.isascii():
        raise InvalidInput(f"{field} must contain only ASCII letters, digits and spaces", field)
    return stripped or None


def _refuse(value: str | None, field: str, reason: str) -> None:
    if value is not None:
        raise InvalidInput(f"{field} must be absent: {reason}", field)


def _iban_prefix(country: str) -> str | None:
    """The prefix of IBANs of accounts in ``country``, or None where IBANs are not used."""
    try:
        spec = registry.get_iban_spec(country)
    except InvalidCountryCode:
        return None
    return None if spec.aspirational else spec.iban_spec[:2]


def _valid_iban(text: str | None, country: str, prefix: str, field: str) -> str:
    """The IBAN in electronic form, its national check digits verified where schwifty has the
    method; elsewhere schwifty accepts them with a ``NationalChecksumNotVerified`` warning."""
    if text is None:
        alternative = " (or bankCode and accountNumber)" if country == "GB" else ""
        raise InvalidInput(f"{field} is required for {country}{alternative}", field)
    compact = text.replace(" ", "").upper()
    if len(compact) > iban_length_max:
        raise InvalidInput(f"{field} must be at most {iban_length_max} characters", field)
    if compact[:2] != prefix:
        raise InvalidInput(f"{field} must be an IBAN starting with {prefix} for {country}", field)
    try:
        return str(IBAN(compact, validate_bban=True))
    except SchwiftyException as error:
        raise InvalidInput(f"{field} is not a valid IBAN: {error}", field) from error


def _valid_bic(text: str | None, countries: set[str], field: str) -> str | None:
    if text is None:
        return None
    try:
        bic = BIC(text.replace(" ", "").upper())
    except SchwiftyException as error:
        raise InvalidInput(f"{field} is not a valid BIC: {error}", field) from error
    if bic.country_code not in countries:
        raise InvalidInput(f"{field} is a BIC of {bic.country_code}, not of "
                           f"{' or '.join(sorted(countries))}", field)
    return str(bic)


def _valid_local(country: str, bank_code: str | None, account_number: str | None,
                 field_prefix: str) -> tuple[str, str]:
    rule = _local_formats.get(country, _generic_format)
    bank = _match(bank_code, rule.bank_code_lengths, rule.letters_ok, field_prefix + "bankCode")
    if country == "US" and not aba_checksum_ok(bank):
        raise InvalidInput(f"{field_prefix}bankCode is not an ABA routing number: its check "
                           "digit is wrong", field_prefix + "bankCode")
    account = _match(account_number, rule.account_number_lengths, rule.letters_ok,
                     field_prefix + "accountNumber")
    return bank, account


def _match(value: str | None, lengths: tuple[int, int], letters_ok: bool, field: str) -> str:
    if value is None:
        raise InvalidInput(f"{field} is required", field)
    canonical = value.upper()
    length_min, length_max = lengths
    ok = canonical.isalnum() if letters_ok else canonical.isdigit()
    if not ok or not length_min <= len(canonical) <= length_max:
        count = f"{length_min}" if length_min == length_max else f"{length_min} to {length_max}"
        raise InvalidInput(f"{field} must be {count} {'letters or ' * letters_ok}digits", field)
    return canonical
