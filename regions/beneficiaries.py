"""Beneficiaries: bank details of the people and businesses a tenant pays, sealed per field.

Name, IBAN, account number and address are personal data: sealed under a data key of the
beneficiary's own (so erasing one beneficiary shreds only its key). Country, currency, BIC,
bank code and the last four characters of the account are kept in clear: they identify a bank
or are needed to route and display, not a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from payments import ids
from payments.bank_details import BankDetails, mask
from payments.principal import Principal
from regions import idempotency
from regions.events import Event
from regions.ledger_queries import Page
from regions.sealing import Place, Sealer
from regions.tables import beneficiaries

name_length_max = 140
address_length_max = 280
table_name = "beneficiaries"

Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateBeneficiary:
    name: str
    currency: str
    details: BankDetails
    address: str | None
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """A beneficiary as the API shows it: personal fields opened, account masked."""

    id: str
    status: str
    name: str | None
    country: str
    currency: str
    bic: str | None
    bank_code: str | None
    account_mask: str
    address: str | None
    created_at: Any


def _request(cmd: CreateBeneficiary) -> dict[str, Any]:
    d = cmd.details
    return {"name": cmd.name, "currency": cmd.currency, "address": cmd.address,
            "country": d.country, "iban": d.iban, "bic": d.bic, "bankCode": d.bank_code,
            "accountNumber": d.account_number}


async def insert_beneficiary(conn: AsyncConnection, who: Principal, sealer: Sealer,
                             cmd: CreateBeneficiary) -> tuple[str, Event]:
    """The beneficiary row, sealed under a data key of its own; returns its id and event."""
    ben_id = ids.new_id("ben", who.region)
    d = cmd.details
    key = await sealer.new_key(conn, who.region, who.tenant.id, ben_id, seals=sum(
        v is not None for v in (cmd.name, d.iban, d.account_number, cmd.address)))
    place = Place(who.tenant.id, table_name, ben_id)
    await conn.execute(insert(beneficiaries).values(
        region=who.region, id=ben_id, tenant_id=who.tenant.id, country=d.country,
        currency=cmd.currency, bic=d.bic, bank_code=d.bank_code,
        account_mask=mask(d.iban or d.account_number or ""), data_key_id=key.id,
        name_sealed=sealer.seal(key.key, place, "name", cmd.name),
        iban_sealed=sealer.seal(key.key, place, "iban", d.iban),
        account_number_sealed=sealer.seal(key.key, place, "account_number", d.account_number),
        address_sealed=sealer.seal(key.key, place, "address", cmd.address)))
    return ben_id, Event("beneficiary.created", {
        "beneficiary_id": ben_id, "country": d.country, "currency": cmd.currency}, ben_id)


async def create_beneficiary_txn(
    conn: AsyncConnection, who: Principal, sealer: Sealer, cmd: CreateBeneficiary
) -> Response:
    async def effect() -> tuple[Response, list[Event]]:
        ben_id, event = await insert_beneficiary(conn, who, sealer, cmd)
        return {"type": "Beneficiary", "id": ben_id}, [event]

    return await idempotency.once(conn, who, cmd.idempotency_key, "createBeneficiary",
                                  _request(cmd), effect)


async def keys_of(conn: AsyncConnection, sealer: Sealer, region: str,
                  rows: Sequence[Row[Any]]) -> dict[str, bytes | None]:
    """The data keys of the beneficiaries, in one query for those not cached (None for an
    erased one)."""
    return await sealer.keys(conn, region, [r.data_key_id for r in rows])


async def open_row(conn: AsyncConnection, sealer: Sealer, row: Row[Any]) -> Beneficiary:
    """One beneficiary with its personal fields opened."""
    return opened(sealer, row, await sealer.key(conn, row.region, row.data_key_id))


def opened(sealer: Sealer, row: Row[Any], key: bytes | None) -> Beneficiary:
    """The beneficiary with its personal fields opened under its (fetched) data key."""
    place = Place(row.tenant_id, table_name, row.id)
    return Beneficiary(
        id=row.id, status=row.status, name=sealer.open(key, place, "name", row.name_sealed),
        country=row.country, currency=row.currency, bic=row.bic, bank_code=row.bank_code,
        account_mask=row.account_mask,
        address=sealer.open(key, place, "address", row.address_sealed),
        created_at=row.created_at)


def payee_details(sealer: Sealer, row: Row[Any], key: bytes | None) -> BankDetails:
    """The beneficiary's full bank details, opened for a rail instruction."""
    place = Place(row.tenant_id, table_name, row.id)
    return BankDetails(country=row.country,
                       iban=sealer.open(key, place, "iban", row.iban_sealed),
                       bic=row.bic, bank_code=row.bank_code,
                       account_number=sealer.open(key, place, "account_number",
                                                  row.account_number_sealed))


async def rows_by_id(conn: AsyncConnection, region: str, tenant_id: str,
                     ben_ids: Sequence[str]) -> dict[str, Row[Any]]:
    """Many rows, key-share locked in id order (as ``beneficiary_row``)."""
    rows = await conn.execute(select(beneficiaries).where(
        beneficiaries.c.region == region, beneficiaries.c.tenant_id == tenant_id,
        beneficiaries.c.id.in_(list(set(ben_ids)))).order_by(beneficiaries.c.id)
        .with_for_update(read=True, key_share=True))
    return {r.id: r for r in rows}


async def beneficiary_row(conn: AsyncConnection, region: str, tenant_id: str,
                          ben_id: str, *, lock: bool = False) -> Row[Any] | None:
    """The row; ``lock``: under a key-share lock, so a payout being created holds off the
    beneficiary's erasure (which locks it for update) until it commits, and erasure then sees
    the payout."""
    q = select(beneficiaries).where(
        beneficiaries.c.region == region, beneficiaries.c.tenant_id == tenant_id,
        beneficiaries.c.id == ben_id)
    if lock:
        q = q.with_for_update(read=True, key_share=True)
    return (await conn.execute(q)).first()


async def beneficiary_page(conn: AsyncConnection, sealer: Sealer, region: str, tenant_id: str,
                           first: int, after: str | None) -> Page[Beneficiary]:
    q = select(beneficiaries).where(beneficiaries.c.region == region,
                                    beneficiaries.c.tenant_id == tenant_id)
    if after is not None:
        q = q.where(beneficiaries.c.id < after)
    rows = (await conn.execute(q.order_by(beneficiaries.c.id.desc()).limit(first + 1))).all()
    keys = await keys_of(conn, sealer, region, rows[:first])
    return Page([opened(sealer, r, keys[r.data_key_id]) for r in rows[:first]],
                len(rows) > first)
