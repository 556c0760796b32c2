"""Beneficiaries: ``createBeneficiary``, ``beneficiaries`` and ``beneficiary``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from payments.bank_details import validate_bank_details
from payments.currency import currency as lookup_currency
from payments.errors import NotFound
from payments.text import check_text
from regions import beneficiaries as store
from regions import erasure
from regions.idempotency import check_key
from regions.ledger_queries import Page
from schema import errors
from schema.access import only
from schema.accounts import not_found, own_id, utc
from schema.pagination import Connection, connection, page_args
from schema.permissions import principal


@strawberry.type(description="Someone a tenant pays. Name, account and address are encrypted "
                             "at rest; the account is shown masked (last 4).")
class Beneficiary:
    id: strawberry.ID
    status: str = strawberry.field(description="ACTIVE, or ERASED once its personal data was "
                                               "crypto-shredded (name and address read null).")
    name: str | None
    country: str
    currency: str
    bic: str | None
    bank_code: str | None
    account_number_masked: str
    address: str | None
    created_at: datetime


def beneficiary_from(b: store.Beneficiary) -> Beneficiary:
    return Beneficiary(
        id=strawberry.ID(b.id), status=b.status, name=b.name, country=b.country,
        currency=b.currency, bic=b.bic, bank_code=b.bank_code,
        account_number_masked=b.account_mask, address=b.address,
        created_at=utc(b.created_at))


BeneficiaryResult = Annotated[Beneficiary | errors.NotFound,
                              strawberry.union("BeneficiaryResult")]


async def load_beneficiary(info: Info[Any, Any], ben_id: str) -> Beneficiary | None:
    who = principal(info)
    owned = own_id(who.region, ben_id, "ben", "id")
    if owned is None:
        return None
    sealer = info.context.keys()

    async def body(conn: AsyncConnection) -> store.Beneficiary | None:
        row = await store.beneficiary_row(conn, who.region, who.tenant.id, owned)
        return await store.open_row(conn, sealer, row) if row is not None else None

    found = await info.context.router.read(who.region, body)
    return beneficiary_from(found) if found is not None else None


async def resolve_beneficiary(info: Info[Any, Any], id: strawberry.ID) -> BeneficiaryResult:
    found = await load_beneficiary(info, str(id))
    return found if found is not None else not_found("beneficiary", str(id))


async def resolve_beneficiaries(info: Info[Any, Any], first: int | None = None,
                                after: str | None = None) -> Connection[Beneficiary]:
    """The tenant's beneficiaries, newest first."""
    who = principal(info)
    limit, after_id = page_args(first, after, "ben")
    sealer = info.context.keys()

    async def body(conn: AsyncConnection) -> Page[store.Beneficiary]:
        return await store.beneficiary_page(conn, sealer, who.region, who.tenant.id, limit,
                                            after_id)

    page = await info.context.router.read(who.region, body)
    return connection([beneficiary_from(b) for b in page.items], [b.id for b in page.items],
                      "ben", page.has_next)


@strawberry.input
class CreateBeneficiaryInput:
    name: str
    country: str = strawberry.field(description="ISO 3166 alpha-2 country of the account.")
    currency: str
    iban: str | None = strawberry.field(default=None, description=(
        "Required where IBANs exist (in GB, bankCode + accountNumber may be given instead)."))
    bic: str | None = None
    account_number: str | None = None
    bank_code: str | None = strawberry.field(default=None, description=(
        "GB sort code, US ABA routing number, SG/HK bank code, CN CNAPS code."))
    address: str | None = None
    idempotency_key: str


CreateBeneficiaryResult = Annotated[
    Beneficiary | errors.ValidationError | errors.IdempotencyConflict,
    strawberry.union("CreateBeneficiaryResult"),
]


def parse_create(data: CreateBeneficiaryInput) -> store.CreateBeneficiary:
    key = check_key(data.idempotency_key)
    name = check_text(data.name.strip(), "name", store.name_length_max, length_min=1)
    cur = lookup_currency(data.currency)
    if data.address is not None:
        check_text(data.address, "address", store.address_length_max)
    details = validate_bank_details(data.country, iban=data.iban, bic=data.bic,
                                    account_number=data.account_number,
                                    bank_code=data.bank_code)
    return store.CreateBeneficiary(name, cur.code, details, data.address, key)


@errors.typed_errors
async def create_beneficiary(info: Info[Any, Any],
                             input: CreateBeneficiaryInput) -> CreateBeneficiaryResult:
    who = principal(info)
    cmd = parse_create(input)
    sealer = info.context.keys()
    response = await info.context.router.run(
        who.region, lambda conn: store.create_beneficiary_txn(conn, who, sealer, cmd))
    found = await load_beneficiary(info, response["id"])
    assert found is not None, response
    return found


@strawberry.input
class EraseBeneficiaryInput:
    beneficiary_id: strawberry.ID
    idempotency_key: str


EraseBeneficiaryResult = Annotated[
    Beneficiary | errors.NotFound | errors.ErasureRefused | errors.ValidationError
    | errors.IdempotencyConflict,
    strawberry.union("EraseBeneficiaryResult"),
]


@errors.typed_errors
async def erase_beneficiary(info: Info[Any, Any],
                            input: EraseBeneficiaryInput) -> EraseBeneficiaryResult:
    """GDPR erasure by crypto-shredding: the beneficiary's data key is destroyed, so its name,
    account and address read null everywhere, backups included; payouts keep their amounts."""
    who = principal(info)
    cmd = erasure.EraseBeneficiary(str(input.beneficiary_id), check_key(input.idempotency_key))
    owned = own_id(who.region, cmd.beneficiary_id, "ben", "beneficiaryId")
    if owned is None:
        raise NotFound("beneficiary", cmd.beneficiary_id)
    response = await info.context.router.run(
        who.region, lambda conn: erasure.erase_beneficiary_txn(conn, who, cmd))
    info.context.keys().forget([response["data_key_id"]])
    found = await load_beneficiary(info, response["id"])
    assert found is not None, response
    return found


erase_beneficiary_field = strawberry.mutation(resolver=erase_beneficiary,
                                              permission_classes=[only("eraseBeneficiary")])
beneficiary_field = strawberry.field(resolver=resolve_beneficiary,
                                     permission_classes=[only("beneficiary")])
beneficiaries_field = strawberry.field(resolver=resolve_beneficiaries,
                                       permission_classes=[only("beneficiaries")])
create_beneficiary_field = strawberry.mutation(resolver=create_beneficiary,
                                               permission_classes=[only("createBeneficiary")])
