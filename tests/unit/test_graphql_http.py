"""The GraphQL endpoint's pure decisions: Accept negotiation, error codes, request errors.
(Over HTTP, against a real server: tests/e2e/test_graphql_http_conformance.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.graphql_http import (
    accepted_ranges,
    error_code,
    graphql_response_json,
    is_request_error,
    response_media_type,
)

JSON = "application/json"
served = {graphql_response_json, JSON, None}


@pytest.mark.parametrize(("accept", "expected"), [
    (None, JSON), ("", JSON), ("  ", JSON), ("*/*", JSON), ("application/*", JSON),
    (graphql_response_json, graphql_response_json),
    (f"{graphql_response_json}, {JSON};q=0.9", graphql_response_json),
    (f"{JSON};q=0.9, {graphql_response_json}", graphql_response_json),
    (f"{JSON}, {graphql_response_json};q=0.9", JSON),
    (f"{graphql_response_json};q=0, */*", JSON),
    (f"{graphql_response_json};q=0.2, application/*;q=0.1", graphql_response_json),
    (f"application/*;q=0.3, {JSON};q=0", graphql_response_json),
    ("text/html", None), (f"{JSON};q=0", None), (f"{JSON};q=", None), (f"{JSON};q=1.5", None),
    (f"{JSON};q=nan", None), (f"{JSON};q=-0.5", None), ("*/*;q=0", None), (",,;", None),
    (f"{JSON.upper()} ; Q=0.5", JSON),
])
def test_response_media_type(accept: str | None, expected: str | None) -> None:
    assert response_media_type(accept) == expected


def test_accepted_ranges_reads_qualities_and_leaves_out_the_unreadable() -> None:
    assert accepted_ranges("text/html;level=1, application/json;q=0.5;charset=utf-8, "
                           "a/b;q=x, c/d;q=0") == {"text/html": 1.0, "application/json": 0.5,
                                                   "c/d": 0.0}


@given(st.text(max_size=200))
def test_any_accept_header_gets_an_answer(accept: str) -> None:
    assert response_media_type(accept) in served


@given(st.text(alphabet=st.sampled_from("abcjson/*+;=q., 0123456789"), max_size=80))
def test_a_wildcard_fallback_makes_json_acceptable(accept: str) -> None:
    """Whatever the client asked for first, a trailing */* with some quality keeps the answer
    in a type we serve, and never falls to 406."""
    assert response_media_type(f"{accept}, */*;q=0.001") in {graphql_response_json, JSON}


@pytest.mark.parametrize(("error", "code"), [
    ({"message": "Syntax Error: Expected Name, found <EOF>."}, "GRAPHQL_PARSE_FAILED"),
    ({"message": "Cannot query field 'nope' on type 'Viewer'."}, "GRAPHQL_VALIDATION_FAILED"),
    ({"message": "Variable '$id' has invalid value."}, "GRAPHQL_VALIDATION_FAILED"),
    ({"message": "Cannot return null for non-nullable field Query.viewer.", "path": ["viewer"]},
     "INTERNAL_SERVER_ERROR"),
])
def test_error_code_of_errors_graphql_raised(error: dict[str, Any], code: str) -> None:
    assert error_code(error) == code


def coded(code: str, **more: Any) -> dict[str, Any]:
    return {"message": "m", "extensions": {"code": code}, **more}


@pytest.mark.parametrize(("data", "errors", "expected"), [
    (None, [coded("GRAPHQL_PARSE_FAILED")], True),
    (None, [coded("GRAPHQL_VALIDATION_FAILED"), coded("GRAPHQL_VALIDATION_FAILED")], True),
    (None, [coded("OPERATION_RESOLUTION_FAILURE")], True),
    (None, [], False),
    (None, [coded("TIMEOUT")], False),
    (None, [coded("GRAPHQL_VALIDATION_FAILED"), coded("TIMEOUT")], False),
    (None, [coded("GRAPHQL_VALIDATION_FAILED", path=["viewer"])], False),
    (None, [coded("FORBIDDEN", path=["auditEvents"])], False),
    ({"viewer": None}, [coded("GRAPHQL_VALIDATION_FAILED")], False),
])
def test_is_request_error(data: object, errors: list[dict[str, Any]], expected: bool) -> None:
    assert is_request_error(data, errors) is expected
