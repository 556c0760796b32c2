"""The bank test's short version (``docs/reliability.md``; the long one is
``python -m tests.chaos``): concurrent clients move money over the real HTTP API of two
``corridor serve`` processes, among tenants of eu-central and ap-southeast, whose clusters are
on two PostgreSQL servers, while the injector SIGKILLs an API process and a worker, restarts
RabbitMQ, terminates the database backends and stops ap-southeast's server. Every kind of fault
happens, every kind of operation is acknowledged, and the checker finds nothing wrong.
"""

from __future__ import annotations

from pathlib import Path

from tests import rabbit
from tests.chaos.__main__ import summary
from tests.chaos.faults import kinds
from tests.chaos.history import success
from tests.chaos.run import Options, run

duration_s = 20.0
clients = 6
seed = 13


async def test_money_is_conserved_and_every_operation_lands_once_under_faults(
        tmp_path: Path) -> None:
    rabbit.require_rabbitmq()
    report = await run(Options(duration_s=duration_s, clients=clients, seed=seed,
                               self_test=True, report=tmp_path / "report.json",
                               workdir=tmp_path / "logs"))
    shown = summary(report)
    assert report["anomalies"] == [], shown
    assert {k: report["faults"][k] > 0 for k in kinds} == dict.fromkeys(kinds, True), shown
    assert {k: report["acknowledged"].get(k, 0) > 0 for k in success} == dict.fromkeys(
        success, True), shown
    # The faults reached the clients, and the answers were put to the test.
    assert sum(report["retries"].values()) > 0, shown
    assert report["replays"] > 0, shown
    assert report["replayed_at_end"] == sum(report["acknowledged"].values()), shown
    assert report["reads"]["db"] > 0, shown
    assert report["reads"]["api"] > 0, shown
    # The checker is not blind: each break made on purpose afterwards was reported.
    assert report["self_test"] == dict.fromkeys(report["self_test"], True), shown
    assert len(report["self_test"]) == 5, shown
