"""Every settlement message kind and where it is applied: payouts paid for another region
(``regions.xr_payouts``) and netted batches (``regions.netting``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from regions import netting, xr, xr_payouts
from regions.sealing import Sealer


class UnknownMessage(ValueError):
    """A message kind this version does not know: its stream waits here until a version that
    does is deployed (skipping it could lose money)."""


async def apply(conn: AsyncConnection, sealer: Sealer, envelope: xr.Envelope) -> None:
    """Apply one settlement message in the receiving region, in the receiving transaction."""
    if envelope.kind in xr_payouts.kinds:
        await xr_payouts.apply(conn, sealer, envelope)
    elif envelope.kind == netting.batch_kind:
        await netting.apply_batch(conn, envelope)
    elif envelope.kind in (netting.confirmed_kind, netting.disputed_kind):
        await netting.apply_answer(conn, envelope)
    else:
        raise UnknownMessage(f"{envelope.id}: unknown kind {envelope.kind!r}")
