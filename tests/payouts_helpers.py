"""Shared by the payout tests: GraphQL snippets, the sandbox worker step, and ledger checks."""

from __future__ import annotations

from typing import Any

from regions.keyring import LocalKeyring
from regions.router import Router
from regions.sealing import Sealer
from tests.conftest import test_keyring_file
from tests.integration.helpers import rows

BENEFICIARY = """mutation($i: CreateBeneficiaryInput!) { createBeneficiary(input: $i) {
  __typename ... on Beneficiary { id name country currency accountNumberMasked address status }
  ... on Error { code message } ... on ValidationError { field } } }"""
PAYOUT_FIELDS = """id status amount { amount currency } fee { amount } accountId beneficiaryId
  rail failureCode failureMessage beneficiary { id name }"""
PAYOUT = ("mutation($i: CreatePayoutInput!) { createPayout(input: $i) { __typename "
          "... on Payout { " + PAYOUT_FIELDS + " } ... on Error { code message } "
          "... on ValidationError { field } ... on PolicyDenied { reasons } } }")
CANCEL = ("mutation($i: CancelPayoutInput!) { cancelPayout(input: $i) { __typename "
          "... on Payout { " + PAYOUT_FIELDS + " } ... on Error { code message } } }")
GET_PAYOUT = ("query($id: ID!) { payout(id: $id) { __typename ... on Payout { "
              + PAYOUT_FIELDS + " } } }")
BALANCE = """query($id: ID!) { account(id: $id) { ... on Account {
  balance { posted { amount } pending { amount } available { amount } } } } }"""

de_iban = "DE89370400440532013000"


def sandbox_sealer() -> Sealer:
    """A sealer on the test keyring, as the app and the workers have."""
    return Sealer(LocalKeyring(test_keyring_file, ["eu-central", "uk-south", "us-east",
                                                   "ap-southeast", "cn-east"]))


async def balances(router: Router, region: str, tenant_id: str) -> dict[str, Any]:
    [row] = await rows(router, region, """
        SELECT coalesce(sum(credits_posted - debits_posted), 0) AS posted,
               coalesce(sum(debits_pending), 0) AS held
        FROM accounts WHERE region = :r AND tenant_id = :tenant""",
        r=region, tenant=tenant_id)
    return {"posted": int(row.posted), "held": int(row.held)}


async def assert_ledger_consistent(router: Router, region: str, tenant_id: str = "") -> None:
    """Journals balance (per currency, posted and pending sum to zero over the region), every
    payout's hold is in the state its status implies, and the tenant's and the internal
    accounts' entries are dense (other tests may bend a sequence of their own on purpose)."""
    sums = await rows(router, region, """
        SELECT currency, sum(credits_posted - debits_posted) AS posted,
               sum(credits_pending - debits_pending) AS pending
        FROM accounts WHERE region = :r GROUP BY currency""", r=region)
    for s in sums:
        assert (s.posted, s.pending) == (0, 0), s
    expected = {"PENDING": "PENDING", "HELD_FOR_REVIEW": "PENDING", "PROCESSING": "PENDING",
                "COMPLETED": "POSTED", "RETURNED": "POSTED", "FAILED": "VOIDED",
                "CANCELLED": "VOIDED"}
    for p in await rows(router, region, """
            SELECT p.id, p.status, h.status AS hold, f.status AS fee, r.status AS ret
            FROM payouts p JOIN transfers h ON h.region = p.region AND h.id = p.hold_transfer_id
            LEFT JOIN transfers f ON f.region = p.region AND f.id = p.fee_transfer_id
            LEFT JOIN transfers r ON r.region = p.region AND r.id = p.return_transfer_id
            WHERE p.region = :r""", r=region):
        assert p.hold == expected[p.status], p
        assert p.fee in (None, expected[p.status]), p
        assert (p.ret == "POSTED") == (p.status == "RETURNED"), p
    entries = await rows(router, region, """
        SELECT a.id FROM accounts a
        WHERE a.region = :r AND (a.kind = 'internal' OR a.tenant_id = :t) AND a.entry_seq <> (
            SELECT count(*) FROM entries e WHERE e.region = a.region AND e.account_id = a.id)""",
        r=region, t=tenant_id)
    assert entries == [], entries
