"""The bank test's own parts, without a cluster: which answers the client retries, what the
checker makes of a history, and the command line's bounds."""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.chaos import documents as doc
from tests.chaos.__main__ import parser
from tests.chaos.checker import effects, history_anomalies
from tests.chaos.client import Answer, Api, Attempt
from tests.chaos.history import History, Step

Handler = Callable[[httpx.Request], httpx.Response]
transfer = {"__typename": "Transfer", "id": "trf_eu-central_01M8XRE2339CYWAHZ22H9PJA2B",
            "fromAccountId": "acc_a", "toAccountId": "acc_b",
            "amount": {"amount": "10.50", "currency": "EUR"}, "status": "POSTED"}


def _api(responses: list[Any]) -> tuple[Api, list[str]]:
    """An Api over two fake processes answering ``responses`` in turn (an exception is
    raised as a transport error); the hosts asked, in order."""
    asked: list[str] = []
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        assert request.headers["authorization"] == "Bearer cor_test_x"
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item  # type: ignore[no-any-return]

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return Api(["http://one", "http://two"], http, time.monotonic()), asked


def _graphql(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body)


async def _call(api: Api) -> Answer:
    return await api.call("cor_test_x", doc.TRANSFER, {"i": {}}, random.Random(1))


async def test_retries_through_transport_errors_5xx_and_passing_codes_to_the_answer() -> None:
    api, asked = _api([
        httpx.ConnectError("refused"),
        _graphql(500, {"status_code": 500, "detail": "Internal Server Error"}),
        _graphql(200, {"data": None, "errors": [{"message": "x",
                                                 "extensions": {"code": "UNAVAILABLE"}}]}),
        _graphql(200, {"data": None, "errors": [
            {"message": "masked", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}),
        _graphql(200, {"data": {"createTransfer": transfer}})])
    answer = await _call(api)
    assert answer.data == transfer
    assert [a.outcome for a in answer.attempts] == [
        "transport:ConnectError", "http:500", "error:UNAVAILABLE", "error:INTERNAL_SERVER_ERROR",
        "answer"]
    assert answer.attempts[1].detail.startswith('{"status_code":500')
    assert answer.retries == 4
    # Each try goes to the other process: a client fails over.
    assert all(a != b for a, b in itertools.pairwise(asked))


@pytest.mark.parametrize("response", [
    _graphql(200, {"data": None, "errors": [{"message": "bad",
                                             "extensions": {"code": "BAD_USER_INPUT"}}]}),
    _graphql(401, {"errors": [{"message": "no", "extensions": {"code": "UNAUTHENTICATED"}}]}),
    _graphql(200, {"data": None, "errors": [{"message": "?"}]}),
    httpx.Response(200, text="not json"),
    _graphql(400, {"data": {"createTransfer": transfer}}),
])
async def test_an_answer_the_workload_never_expects_stops_the_retries(
        response: httpx.Response) -> None:
    api, _ = _api([response])
    answer = await _call(api)
    assert answer.data is None
    assert answer.unexpected is not None
    assert answer.unexpected.startswith("unexpected:")
    assert answer.typename == "unexpected"
    assert len(answer.attempts) == 1


async def test_a_business_error_is_a_definitive_answer() -> None:
    refused = {"__typename": "InsufficientFunds", "code": "INSUFFICIENT_FUNDS", "message": "no"}
    api, _ = _api([_graphql(200, {"data": {"createTransfer": refused}})])
    answer = await _call(api)
    assert (answer.typename, answer.retries) == ("InsufficientFunds", 0)


async def test_no_try_starts_after_the_give_up_time() -> None:
    api, asked = _api([httpx.ReadTimeout("slow")] * 3)
    api.give_up_at_s = time.monotonic() - 1
    answer = await _call(api)
    assert (answer.data, answer.attempts, asked) == (None, [], [])
    assert answer.typename == "indefinite"
    assert api.give_up_at_s < math.inf


def _op(history: History, step: Step, kind: str = "transfer") -> None:
    op = history.new_op(0, kind, "ten_x", "eu-central", 0.0)
    op.steps.append(step)


def _step(data: dict[str, Any] | None, *replays: dict[str, Any] | None,
          mutation: str = "createTransfer") -> Step:
    return Step(mutation, "chaos-1", {}, Answer(data, [Attempt(0.0, 0, "answer")]),
                [Answer(r, [Attempt(1.0, 1, "answer")]) for r in replays])


def test_the_checker_accepts_replays_equal_to_the_first_answer() -> None:
    history = History()
    later = {**transfer, "status": "POSTED"}
    _op(history, _step(transfer, later, transfer))
    _op(history, _step({"__typename": "InsufficientFunds", "code": "INSUFFICIENT_FUNDS"}))
    assert history_anomalies(history) == []


@pytest.mark.parametrize(("step", "found"), [
    (_step(transfer, {**transfer, "id": "trf_eu-central_01M8XRE2339CYWAHZ22H9PJA2C"}),
     "replay answered"),
    (_step(transfer, {**transfer, "amount": {"amount": "10.51", "currency": "EUR"}}),
     "replay answered"),
    (_step(transfer, None), "replay answered"),
    (_step({"__typename": "IdempotencyConflict", "code": "IDEMPOTENCY_CONFLICT"}),
     "unexpected answer"),
    (_step(None), "no definitive answer"),
])
def test_the_checker_names_a_bad_replay_an_unexpected_answer_and_a_missing_one(
        step: Step, found: str) -> None:
    history = History()
    _op(history, step)
    [anomaly] = history_anomalies(history)
    assert found in anomaly


def test_effects_of_transfers_batches_and_conversions_to_the_minor_unit() -> None:
    history = History()
    _op(history, _step(transfer))
    batch = {"__typename": "TransferBatch", "id": "jnl_1", "succeeded": 1, "failed": 1, "items": [
        {"index": 0, "transfer": {**transfer, "id": "trf_2", "fromAccountId": "acc_b",
                                  "toAccountId": "acc_a",
                                  "amount": {"amount": "0.50", "currency": "EUR"}},
         "error": None},
        {"index": 1, "transfer": None, "error": {"code": "INSUFFICIENT_FUNDS"}}]}
    _op(history, _step(batch, mutation="createTransferBatch"), "batch")
    conversion = {"__typename": "Conversion", "id": "jnl_2",
                  "sellTransfer": {"id": "trf_3", "fromAccountId": "acc_a",
                                   "toAccountId": "liq", "amount": {"amount": "1.00",
                                                                    "currency": "EUR"}},
                  "buyTransfer": {"id": "trf_4", "fromAccountId": "liq_jpy",
                                  "toAccountId": "acc_y", "amount": {"amount": "150",
                                                                     "currency": "JPY"}}}
    _op(history, _step(conversion, mutation="executeFxQuote"), "fx")
    _op(history, _step({"__typename": "InsufficientFunds"}))
    payout = {"__typename": "Payout", "id": "pay_1", "accountId": "acc_a",
              "amount": {"amount": "5.94", "currency": "EUR"},
              "fee": {"amount": "0.20", "currency": "EUR"}}
    _op(history, _step(payout, mutation="createPayout"), "payout")
    batch_of_payouts = {"__typename": "PayoutBatch", "id": "pbt_1", "rejected": [],
                        "items": {"edges": [{"node": {**payout, "id": "pay_2"}},
                                            {"node": {**payout, "id": "pay_3",
                                                      "accountId": "acc_b"}}]}}
    _op(history, _step(batch_of_payouts, mutation="createPayoutBatch"), "payout_batch")
    change, made, payouts = effects(history)
    assert change == {"acc_a": -10_50 + 50 - 1_00, "acc_b": 10_50 - 50, "liq": 1_00,
                      "liq_jpy": -150, "acc_y": 150}
    assert made == {transfer["id"], "trf_2", "trf_3", "trf_4"}
    # Payouts move their account by their final status, read from the database.
    assert payouts == {"pay_1": (5_94, 20, "acc_a"), "pay_2": (5_94, 20, "acc_a"),
                       "pay_3": (5_94, 20, "acc_b")}


@pytest.mark.parametrize("args", [["--clients", "0"], ["--clients", "65"],
                                  ["--duration", "0"], ["--duration", "x"],
                                  ["--tenants-per-region", "9"], ["--seed", "1.5"]])
def test_the_command_line_refuses_out_of_bounds_options(
        args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(args)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


def test_the_command_line_defaults_and_options() -> None:
    args = parser().parse_args(["--duration", "600", "--clients", "16", "--seed", "42",
                                "--self-test"])
    assert (args.duration, args.clients, args.seed, args.self_test,
            args.tenants_per_region) == (600.0, 16, 42, True, 1)


def test_internal_errors_are_the_apis_own_failures_not_unavailability() -> None:
    history = History()
    answer = Answer(transfer, [Attempt(0.0, 0, "error:INTERNAL_SERVER_ERROR"),
                               Attempt(0.1, 1, "http:500", '{"status_code":500}'),
                               Attempt(0.2, 0, "http:503", "unavailable"),
                               Attempt(0.3, 1, "error:UNAVAILABLE"),
                               Attempt(0.4, 0, "http:502", "bad gateway"),
                               Attempt(0.5, 1, "transport:ConnectError"),
                               Attempt(0.6, 0, "answer")])
    _op(history, Step("createTransfer", "chaos-1", {}, answer,
                      [Answer(transfer, [Attempt(1.0, 1, "error:INTERNAL_SERVER_ERROR"),
                                         Attempt(1.1, 0, "answer")])]))
    assert history.internal_errors() == {"error:INTERNAL_SERVER_ERROR": 2,
                                         'http:500 {"status_code":500}': 1,
                                         "http:502 bad gateway": 1}
    assert history.retries()["http:503"] == 1
