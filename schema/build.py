"""The schema: Query and Mutation assembled from the feature modules, with hardening on."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from regions.txn import RetriesExhausted
from schema import accounts as acc
from schema import errors
from schema import transfers as trf
from schema import viewer as vw

query_depth_max = 10
query_tokens_max = 2_000
query_aliases_max = 15
document_cache_entries_max = 1_000

_log = logging.getLogger(__name__)


@strawberry.type
class Query:
    viewer: vw.Viewer = vw.viewer_field
    regions: list[vw.Region] = vw.regions_field
    account: acc.AccountResult = acc.account_field
    accounts: acc.Connection[acc.Account] = acc.accounts_field
    transfer: trf.TransferResult = trf.transfer_field
    transfers: trf.Connection[trf.Transfer] = trf.transfers_field


@strawberry.type
class Mutation:
    create_account: acc.CreateAccountResult = acc.create_account_field
    create_transfer: trf.CreateTransferResult = trf.create_transfer_field
    create_transfer_batch: trf.CreateTransferBatchResult = trf.create_transfer_batch_field


class PublicMaskErrors(MaskErrors):
    """Masks unexpected failures (logging them) and gives each top-level error a code."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        _log.error("unexpected error in %s", error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": errors.internal_error_code}
        return masked

    def _process_errors(self, errs: list[GraphQLError]) -> list[GraphQLError]:
        out = super()._process_errors(errs)
        for error in out:
            if isinstance(error.original_error, RetriesExhausted):
                error.extensions = {"code": errors.conflict_error_code}
            elif not error.extensions or "code" not in error.extensions:
                error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
        return out


def build_schema(*, production: bool) -> strawberry.Schema:
    extensions: list[SchemaExtension | type[SchemaExtension]] = [
        ParserCache(maxsize=document_cache_entries_max),
        ValidationCache(maxsize=document_cache_entries_max),
        MaxTokensLimiter(max_token_count=query_tokens_max),
        MaxAliasesLimiter(max_alias_count=query_aliases_max),
        QueryDepthLimiter(max_depth=query_depth_max),
        PublicMaskErrors(should_mask_error=lambda e: not errors.is_public(e)),
    ]
    if production:
        extensions.append(DisableIntrospection())
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)
