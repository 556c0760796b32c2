"""The GraphQL documents the bank test's clients send (names from ``schema.graphql``)."""

from __future__ import annotations

_errors = "... on Error { code message }"
_transfer = "id fromAccountId toAccountId amount { amount currency } status"

CREATE_ACCOUNT = ("mutation($i: CreateAccountInput!) { createAccount(input: $i) { __typename "
                  f"... on Account {{ id currency }} {_errors} }} }}")
ISSUE_IBAN = ("mutation($i: IssueVirtualIbanInput!) { issueVirtualIban(input: $i) { "
              "__typename ... on VirtualIban { id iban country bankCode branchCode "
              "accountNumber accountId } "
              f"{_errors} }} }}")
SIMULATE_INCOMING = (
    "mutation($i: SimulateIncomingPaymentInput!) { simulateIncomingPayment(input: $i) { "
    f"__typename ... on IncomingPayment {{ id status suspenseReason accountId "
    f"amount {{ amount currency }} }} "
    f"{_errors} }} }}")
CREATE_BENEFICIARY = (
    "mutation($i: CreateBeneficiaryInput!) { createBeneficiary(input: $i) { __typename "
    f"... on Beneficiary {{ id currency country }} {_errors} }} }}")
TRANSFER = ("mutation($i: CreateTransferInput!) { createTransfer(input: $i) { __typename "
            f"... on Transfer {{ {_transfer} }} {_errors} }} }}")
BATCH = ("mutation($i: CreateTransferBatchInput!) { createTransferBatch(input: $i) { "
         "__typename ... on TransferBatch { id atomic itemCount succeeded failed items { "
         f"index transfer {{ {_transfer} }} error {{ code }} }} }} "
         f"... on TransferBatchRejected {{ index reasonCode }} {_errors} }} }}")
QUOTE = ("mutation($i: CreateFxQuoteInput!) { createFxQuote(input: $i) { __typename "
         "... on FxQuote { id rate sell { amount currency } buy { amount currency } } "
         f"{_errors} }} }}")
EXECUTE = ("mutation($i: ExecuteFxQuoteInput!) { executeFxQuote(input: $i) { __typename "
           "... on Conversion { id quoteId rate sell { amount currency } buy { amount currency } "
           f"sellTransfer {{ {_transfer} }} buyTransfer {{ {_transfer} }} }} {_errors} }} }}")
PAYOUT = ("mutation($i: CreatePayoutInput!) { createPayout(input: $i) { __typename "
          "... on Payout { id amount { amount currency } fee { amount currency } accountId "
          f"beneficiaryId rail }} {_errors} }} }}")
PAYOUT_BATCH = (
    "mutation($i: CreatePayoutBatchInput!) { createPayoutBatch(input: $i) { __typename "
    "... on PayoutBatch { id accountId itemCount rejected { index code } items(first: 100) { "
    "edges { node { id amount { amount currency } fee { amount currency } accountId } } } } "
    f"... on PayoutBatchRejected {{ index reasonCode }} {_errors} }} }}")
ACCOUNTS = ("query($after: String) { accounts(first: 100, after: $after) { edges { node { "
            "id currency balance { posted { amount } pending { amount } available { amount } } "
            "} } pageInfo { hasNextPage endCursor } } }")
FX_RATES = '{ fxRates(base: "EUR") { quote stale } }'

fields = {TRANSFER: "createTransfer", BATCH: "createTransferBatch", QUOTE: "createFxQuote",
          EXECUTE: "executeFxQuote", PAYOUT: "createPayout", PAYOUT_BATCH: "createPayoutBatch",
          CREATE_ACCOUNT: "createAccount",
          ISSUE_IBAN: "issueVirtualIban", SIMULATE_INCOMING: "simulateIncomingPayment",
          CREATE_BENEFICIARY: "createBeneficiary", ACCOUNTS: "accounts", FX_RATES: "fxRates"}
"""The top-level field each document answers in."""
